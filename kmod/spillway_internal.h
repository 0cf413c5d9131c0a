/* SPDX-License-Identifier: GPL-2.0 */
/*
 * spillway: state shared by the module's files.
 *
 * One struct (struct spillway) owns all state.  Lock order, outermost first:
 *   pool.resize_lock -> pool.lock
 *   wd.lock -> pool.lock (the watchdog's critical release)
 *   events.lock is a leaf (spinlock, taken under any of the above).
 */
#ifndef _SPILLWAY_INTERNAL_H
#define _SPILLWAY_INTERNAL_H

#include <linux/hashtable.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "include/uapi/spillway.h"

/* Pool chunks are order-9 (2 MiB on x86) unless memory is fragmented. */
#define SPILLWAY_CHUNK_ORDER	9
#define SPILLWAY_CHUNK_PAGES	BIT(SPILLWAY_CHUNK_ORDER)
#define SPILLWAY_CHUNK_BYTES	((u64)SPILLWAY_CHUNK_PAGES << PAGE_SHIFT)

/* Module parameters (main.c); read-only after load. */
extern unsigned int spillway_pool_mb;
extern unsigned int spillway_user_limit_mb;
extern unsigned int spillway_watchdog_ms;
extern unsigned int spillway_swap_warn_mb;
extern unsigned int spillway_swap_critical_mb;
extern unsigned int spillway_swap_rate_warn;
extern unsigned int spillway_swap_rate_critical;
extern unsigned int spillway_regrow_ms;
extern bool spillway_test_ioctls;

/**
 * struct spillway_chunk - one high-order allocation, split into order-0 pages
 * @node:	in spillway_pool.chunks
 * @first:	first page; the chunk is @first .. @first + (1 << @order) - 1
 *		(one buddy allocation: its struct pages are contiguous, so
 *		plain pointer arithmetic is right and nth_page() not needed)
 * @order:	allocation order
 * @used:	pages in live buffers
 * @gone:	pages given to the kernel at buffer release because someone
 *		else still held a reference (a pin); never reused
 * @busy:	bit set: page in a buffer or gone
 */
struct spillway_chunk {
	struct list_head node;
	struct page *first;
	unsigned int order;
	unsigned int used;
	unsigned int gone;
	DECLARE_BITMAP(busy, SPILLWAY_CHUNK_PAGES);
};

/**
 * struct spillway_pool - the reserved pages
 * @resize_lock:	serialises growing and shrinking; taken before @lock
 * @lock:		protects every other field, the chunks and the buffers
 * @chunks:		struct spillway_chunk list
 * @buffers:		live struct spillway_buffer list
 * @loans:		live struct spillway_lent list (loan.c)
 * @nr_pages:		pages held (in buffers or free)
 * @used_pages:		pages in live buffers
 * @lent_pages:		pages lent to GPU drivers: given back to the kernel,
 *			still counted against @requested_pages
 * @requested_pages:	pages last asked for (load or resize); the pool aims
 *			at @requested_pages - @lent_pages
 * @floor_pages:	pressure never shrinks the pool below this
 * @released_pages:	pages given back under pressure, in total
 * @lost_pages:		pages lost at buffer release (still referenced), in total
 * @nr_buffers:		live buffers
 * @users:		struct spillway_user by uid, for the per-user limit
 * @shares:		struct spillway_share_node by cgroup id (share.c)
 * @guaranteed:		the share nodes whose min_pages is not zero
 * @locked_at:		when @lock was taken (test-only timing), else 0
 * @next_loan_id:	the id of the last loan made
 * @growback_work:	grows the pool back after loans end (pool.c)
 *
 * Nothing allocates memory while holding @lock, so that the OOM notifier can
 * always take it: pages are zeroed and chunks freed outside it, and no
 * section under it grows with the size of a buffer.
 */
struct spillway_pool {
	struct mutex resize_lock;	/* one resize at a time */
	struct mutex lock;		/* the pool's state; nothing allocates under it */
	struct list_head chunks;
	struct list_head buffers;
	struct list_head loans;
	unsigned long nr_pages;
	unsigned long used_pages;
	unsigned long lent_pages;
	unsigned long requested_pages;
	unsigned long floor_pages;
	unsigned long released_pages;
	unsigned long lost_pages;
	unsigned long nr_buffers;
	DECLARE_HASHTABLE(users, 6);
	DECLARE_HASHTABLE(shares, 6);
	struct list_head guaranteed;
	u64 locked_at;
	u64 next_loan_id;
	struct work_struct growback_work;
};

/**
 * struct spillway_user - live buffer and loan pages charged to one uid
 * @node:	in spillway_pool.users, under spillway_pool.lock
 * @uid:	real uid of the opener of /dev/spillway (initial user namespace)
 * @pages:	pages in that uid's live buffers and loans
 */
struct spillway_user {
	struct hlist_node node;
	uid_t uid;
	unsigned long pages;
};

/**
 * struct spillway_share_node - one cgroup v2 in the tree of shares (share.c)
 * @hash:	in spillway_pool.shares by @cgroup_id; on a free list once unlinked
 * @guaranteed:	in spillway_pool.guaranteed while @min_pages is not zero
 * @cgroup_id:	the cgroup's id (the inode number of its directory)
 * @cgrp:	the cgroup, referenced, so that its removal can be seen
 * @parent:	the parent cgroup's node, referenced; NULL for the root
 * @refs:	open files and buffers charged to this cgroup, and child nodes
 * @max_pages:	limit on @used_pages, 0 = none
 * @min_pages:	guarantee, 0 = none
 * @used_pages:	pages of live buffers charged to this cgroup and its
 *		descendants
 *
 * A node exists while it has references or a share (@max_pages or
 * @min_pages); its ancestors exist as long as it does.  Every field is
 * under spillway_pool.lock.
 */
struct spillway_share_node {
	struct hlist_node hash;
	struct list_head guaranteed;
	u64 cgroup_id;
	struct cgroup *cgrp;
	struct spillway_share_node *parent;
	unsigned long refs;
	u64 max_pages;
	u64 min_pages;
	unsigned long used_pages;
};

/**
 * struct spillway_events - the event ring every reader of the device shares
 * @lock:	protects @next_seq and @ring
 * @next_seq:	sequence number the next record gets; records
 *		max(1, @next_seq - QUEUE_LEN) .. @next_seq - 1 are in @ring
 * @ring:	record with sequence number s is at (s - 1) % QUEUE_LEN
 * @wait:	readers and pollers
 */
struct spillway_events {
	spinlock_t lock;	/* the ring and next_seq; taken from the OOM notifier */
	u64 next_seq;
	struct spillway_event ring[SPILLWAY_EVENT_QUEUE_LEN];
	wait_queue_head_t wait;
};

/**
 * struct spillway_watchdog - the pressure sampler
 * @wq:		ordered, freezable, WQ_MEM_RECLAIM workqueue (see watchdog.c)
 * @work:	the sampling work; requeues itself every watchdog_ms
 * @regrow_work: grows the pool back (system_unbound_wq)
 * @oom_nb:	OOM notifier
 * @lock:	protects the fields below; the critical release runs under it,
 *		so that it can not follow a watermark change
 * @stopping:	set at unload; nothing may queue @work afterwards
 * @warn:	MemAvailable watermark for WARN, bytes
 * @critical:	MemAvailable watermark for CRITICAL, bytes
 * @level:	current SPILLWAY_LEVEL_*
 * @reason:	SPILLWAY_REASON_* bits behind @level
 * @mem_available: last sample, bytes
 * @swap_free:	last sample, bytes
 * @swap_rate:	last sample, pages per second
 * @swap_events: PSWPIN + PSWPOUT at the last sample
 * @sample_ns:	CLOCK_MONOTONIC time of the last sample
 * @rate_ns:	CLOCK_MONOTONIC time of the last swap-rate measurement
 * @ok_since_ns: sample time since which the level has been ok (or of the
 *		last regrow); regrow_ms after it the pool grows back
 * @uevent_at:	jiffies of the last uevent
 * @uevent_pending: a level change whose uevent the rate limit held back
 * @vm_events:	scratch array for all_vm_events()
 */
struct spillway_watchdog {
	struct workqueue_struct *wq;
	struct delayed_work work;
	struct work_struct regrow_work;
	struct notifier_block oom_nb;
	struct mutex lock;	/* the marks, the level and the critical release */
	bool stopping;
	u64 warn;
	u64 critical;
	u32 level;
	u32 reason;
	u64 mem_available;
	u64 swap_free;
	u64 swap_rate;
	u64 swap_events;
	u64 sample_ns;
	u64 rate_ns;
	u64 ok_since_ns;
	unsigned long uevent_at;
	bool uevent_pending;
	unsigned long *vm_events;
};

/**
 * struct spillway_timing - test-only figures (timing.c), in nanoseconds
 * @dir:		debugfs directory, when test_ioctls=1
 * @pool_lock_max_ns:	longest hold of spillway_pool.lock
 * @release_max_ns:	longest buffer release, zeroing included
 * @mmap_max_ns:	longest mmap of a buffer (under the mmap lock)
 */
struct spillway_timing {
	struct dentry *dir;
	u64 pool_lock_max_ns;
	u64 release_max_ns;
	u64 mmap_max_ns;
};

struct spillway {
	struct miscdevice misc;
	struct spillway_pool pool;
	struct spillway_events events;
	struct spillway_watchdog wd;
	struct spillway_timing timing;
};

extern struct spillway spillway;

/**
 * struct spillway_buffer - a piece of the pool exported as one dma-buf
 * @node:	in spillway_pool.buffers, under spillway_pool.lock
 * @id:		unique id
 * @nr_pages:	pages
 * @pages:	the pages, in mapping order
 * @chunks:	the chunk each page came from
 * @pid:	allocating thread group
 * @uid:	the uid charged: the real uid of the opener of the /dev/spillway
 *		file it was allocated through (initial user namespace)
 * @user:	that uid's accounting entry
 * @share:	the cgroup charged: the opener's at open(), referenced
 * @lock:	protects @mappings
 * @mappings:	struct spillway_mapping of importers' DMA mappings
 */
struct spillway_buffer {
	struct list_head node;
	u64 id;
	unsigned long nr_pages;
	struct page **pages;
	struct spillway_chunk **chunks;
	pid_t pid;
	uid_t uid;
	struct spillway_user *user;
	struct spillway_share_node *share;
	struct mutex lock;	/* the importers' mappings */
	struct list_head mappings;
};

/**
 * struct spillway_lent - capacity the pool lent to a GPU driver (loan.c)
 * @node:	in spillway_pool.loans, under spillway_pool.lock
 * @owner:	the /dev/spillway file it belongs to; compared, never followed
 * @id:		unique id, never 0
 * @nr_pages:	pages the pool gave back to the kernel for it
 * @pid:	thread group that asked for it
 * @uid:	the uid charged, as for a buffer
 * @user:	that uid's accounting entry
 * @share:	the cgroup charged, as for a buffer, referenced
 */
struct spillway_lent {
	struct list_head node;
	const struct file *owner;
	u64 id;
	unsigned long nr_pages;
	pid_t pid;
	uid_t uid;
	struct spillway_user *user;
	struct spillway_share_node *share;
};

/* pool.c */
void spillway_pool_lock(void);
void spillway_pool_unlock(void);
void spillway_pool_init(unsigned long pages);
void spillway_pool_exit(void);
unsigned long spillway_pool_resize(unsigned long pages);
unsigned long spillway_pool_release_free(void);
unsigned long spillway_pool_regrow(void);
bool spillway_pool_short(void);
int spillway_pool_precheck(uid_t uid, struct spillway_share_node *share,
			   unsigned long nr_pages);
int spillway_pool_take(struct spillway_buffer *buf);
void spillway_pool_put(struct spillway_buffer *buf);
u64 spillway_pool_free_bytes(void);
u64 spillway_pool_bytes(void);
u64 spillway_pool_requested_bytes(void);
void spillway_pool_set_floor(unsigned long pages);
void spillway_pool_fill_info(struct spillway_info *info);
u32 spillway_pool_list(struct spillway_buffer_info *out, u32 capacity,
		       bool filter, uid_t only_uid);
int spillway_pool_lend(struct spillway_lent *loan, struct spillway_user *spare);
struct spillway_user *spillway_pool_end_loan_locked(struct spillway_lent *loan,
						    struct hlist_head *unlinked);
void spillway_pool_growback(void);

/* loan.c */
long spillway_loan_lend(struct file *file, struct spillway_loan *req);
long spillway_loan_return(struct file *file, struct spillway_loan *req);
void spillway_loan_release(struct file *file);
u32 spillway_loan_list(struct spillway_buffer_info *out, u32 capacity,
		       bool filter, uid_t only_uid);

/* share.c */
void spillway_share_init(void);
void spillway_share_exit(void);
struct spillway_share_node *spillway_share_open(void);
void spillway_share_close(struct spillway_share_node *node);
int spillway_share_check_locked(struct spillway_share_node *node,
				unsigned long nr_pages);
void spillway_share_charge_locked(struct spillway_share_node *node,
				  unsigned long nr_pages);
void spillway_share_uncharge_locked(struct spillway_share_node *node,
				    unsigned long nr_pages,
				    struct hlist_head *unlinked);
void spillway_share_free(struct hlist_head *unlinked);
long spillway_share_set(struct spillway_share *req);
u32 spillway_share_list(struct spillway_share *out, u32 capacity);

/* buffer.c */
struct dma_buf *spillway_buffer_export(u64 size, uid_t uid,
				       struct spillway_share_node *share, u64 *id);

/* events.c */
void spillway_events_init(void);
void spillway_event_queue(struct spillway_event *ev);
u64 spillway_events_produced(void);
u64 spillway_events_cursor(void);
ssize_t spillway_events_read(u64 *cursor, char __user *ubuf, size_t len,
			     bool nonblock);
bool spillway_events_pending(u64 cursor);

/* watchdog.c */
int spillway_watchdog_init(unsigned int warn_mb, unsigned int critical_mb);
int spillway_watchdog_start(void);
void spillway_watchdog_stop(void);
void spillway_watchdog_exit(void);
int spillway_watchdog_set_marks(u64 warn, u64 critical);
int spillway_watchdog_set_warn_mark(u64 bytes);
int spillway_watchdog_set_critical_mark(u64 bytes);
void spillway_watchdog_fill_event(struct spillway_event *ev, u32 type);
void spillway_watchdog_report(u32 type, u32 reason, u64 count);
u32 spillway_watchdog_level(void);
u64 spillway_watchdog_warn_mark(void);
u64 spillway_watchdog_ok_mark(void);
void spillway_watchdog_fill_info(struct spillway_info *info);
const char *spillway_level_name(u32 level);

/* timing.c */
u64 spillway_timing_start(void);
void spillway_timing_end(u64 *max, u64 start);
void spillway_timing_init(void);
void spillway_timing_exit(void);

/* dev.c, ioctl.c, sysfs.c */
extern const struct file_operations spillway_fops;
struct spillway_share_node *spillway_file_share(struct file *file);
uid_t spillway_file_uid(struct file *file);
long spillway_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
extern const struct attribute_group *spillway_groups[];
void spillway_info_fill(struct spillway_info *info);
int spillway_set_pool_bytes(u64 bytes, u64 *result);

#endif /* _SPILLWAY_INTERNAL_H */
