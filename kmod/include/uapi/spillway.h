/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * spillway: a reserved pool of system RAM handed out as dma-bufs, and a
 * memory-pressure watchdog.  This header is the one contract between the
 * kernel module, the CUDA shim and the spillway command: every ioctl number,
 * struct layout and constant is defined here and nowhere else.
 *
 * All structs have fixed sizes (checked by the module at build time), use
 * only fixed-width types and are little-endian on every supported machine.
 * Fields named "reserved" must be zero on input and are zero on output.
 */
#ifndef _UAPI_LINUX_SPILLWAY_H
#define _UAPI_LINUX_SPILLWAY_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* The misc device is /dev/SPILLWAY_DEVICE_NAME. */
#define SPILLWAY_DEVICE_NAME		"spillway"

/*
 * ABI version.  The major number changes when an existing struct or ioctl
 * changes meaning; the minor number when something is added.
 */
#define SPILLWAY_ABI_MAJOR		1
#define SPILLWAY_ABI_MINOR		3

/*
 * Every buffer's dma-buf is named SPILLWAY_DMABUF_NAME_PREFIX followed by its
 * id in decimal, so a mapping of it shows in /proc/PID/maps as
 * "/dmabuf:spillway:ID" (ABI 1.2).
 */
#define SPILLWAY_DMABUF_NAME_PREFIX	"spillway:"

/* Pressure levels, in increasing order of danger. */
#define SPILLWAY_LEVEL_OK		0
#define SPILLWAY_LEVEL_WARN		1
#define SPILLWAY_LEVEL_CRITICAL		2

/* Why the watchdog chose a level: a bitmask of the signals past a mark. */
#define SPILLWAY_REASON_MEM_AVAILABLE	0x01U /* MemAvailable below a watermark */
#define SPILLWAY_REASON_SWAP_FREE	0x02U /* free swap below its mark */
#define SPILLWAY_REASON_SWAP_RATE	0x04U /* swap-in + swap-out pages/s above its mark */
#define SPILLWAY_REASON_OOM		0x08U /* the OOM notifier ran */
#define SPILLWAY_REASON_RECOVERED	0x10U /* every signal back under its mark */

/* Event record types (struct spillway_event.type). */
#define SPILLWAY_EVENT_LEVEL		1 /* the level changed */
#define SPILLWAY_EVENT_OVERFLOW		2 /* this reader missed @count records */
#define SPILLWAY_EVENT_RELEASE		3 /* free pool memory went back to the kernel */
/* pages still referenced at release were not reused (ABI 1.1) */
#define SPILLWAY_EVENT_LOST		4

/**
 * struct spillway_event - one record read() from /dev/spillway
 * @seq:		sequence number, starting at 1, never reused while loaded
 * @type:		SPILLWAY_EVENT_*
 * @level:		level after the event (SPILLWAY_LEVEL_*)
 * @prev_level:		level before the event
 * @reason:		SPILLWAY_REASON_* bits that led to @level
 * @time_ns:		CLOCK_MONOTONIC time of the sample, in nanoseconds
 * @mem_available:	MemAvailable at the sample, bytes
 * @swap_free:		free swap at the sample, bytes
 * @swap_rate:		swap-in + swap-out rate at the sample, pages per second
 * @pool_free:		free bytes in the pool after the event
 * @count:		OVERFLOW: records this reader lost; RELEASE: bytes released;
 *			LOST: bytes the pool lost
 *
 * read() returns whole records only; a buffer smaller than one record gets
 * EINVAL.  Each open file has its own cursor.  A reader that falls more than
 * SPILLWAY_EVENT_QUEUE_LEN records behind first gets one OVERFLOW record.
 */
struct spillway_event {
	__u64 seq;
	__u32 type;
	__u32 level;
	__u32 prev_level;
	__u32 reason;
	__u64 time_ns;
	__u64 mem_available;
	__u64 swap_free;
	__u64 swap_rate;
	__u64 pool_free;
	__u64 count;
};

#define SPILLWAY_EVENT_SIZE		72
#define SPILLWAY_EVENT_QUEUE_LEN	256

/**
 * struct spillway_version - SPILLWAY_IOC_VERSION
 * @major:		SPILLWAY_ABI_MAJOR of the loaded module
 * @minor:		SPILLWAY_ABI_MINOR of the loaded module
 * @event_size:		sizeof(struct spillway_event)
 * @test_ioctls:	1 when the test-only ioctls exist (module parameter)
 * @reserved:		zero
 */
struct spillway_version {
	__u32 major;
	__u32 minor;
	__u32 event_size;
	__u32 test_ioctls;
	__u64 reserved[2];
};

#define SPILLWAY_VERSION_SIZE		32

/**
 * struct spillway_info - SPILLWAY_IOC_INFO: the pool and watchdog at a glance
 * @pool_bytes:		bytes the pool holds now (used + free)
 * @requested_bytes:	bytes last asked for (load or resize); more than
 *			@pool_bytes when memory was short or was given back
 * @used_bytes:		bytes in live buffers
 * @free_bytes:		bytes in the pool not in any buffer
 * @floor_bytes:	pool_floor_mb: pressure never shrinks the pool below this
 * @released_bytes:	bytes given back to the kernel under pressure, in total
 * @user_limit_bytes:	per-user limit on live buffer bytes, 0 = none
 * @buffers:		live buffers
 * @events:		event records produced since load
 * @level:		current SPILLWAY_LEVEL_*
 * @reason:		SPILLWAY_REASON_* bits behind @level
 * @watermark_warn:	MemAvailable under this is WARN, bytes
 * @watermark_critical:	MemAvailable under this is CRITICAL, bytes
 * @mem_available:	MemAvailable at the last sample, bytes
 * @swap_total:		total swap, bytes
 * @swap_free:		free swap at the last sample, bytes
 * @swap_rate:		swap-in + swap-out pages per second at the last sample
 * @watchdog_ms:	sampling period
 * @reserved0:		zero
 * @lent_bytes:		pool capacity lent to GPU drivers (SPILLWAY_IOC_LEND)
 *			and not yet returned (ABI 1.3)
 * @lost_bytes:		bytes lost at buffer release because another holder
 *			still referenced them (a pin, a pipe), in total (ABI 1.1)
 * @reserved:		zero
 */
struct spillway_info {
	__u64 pool_bytes;
	__u64 requested_bytes;
	__u64 used_bytes;
	__u64 free_bytes;
	__u64 floor_bytes;
	__u64 released_bytes;
	__u64 user_limit_bytes;
	__u64 buffers;
	__u64 events;
	__u32 level;
	__u32 reason;
	__u64 watermark_warn;
	__u64 watermark_critical;
	__u64 mem_available;
	__u64 swap_total;
	__u64 swap_free;
	__u64 swap_rate;
	__u32 watchdog_ms;
	__u32 reserved0;
	__u64 lost_bytes;
	__u64 lent_bytes;
	__u64 reserved[5];
};

#define SPILLWAY_INFO_SIZE		192

/**
 * struct spillway_alloc - SPILLWAY_IOC_ALLOC: a buffer from the pool
 * @size:	in: bytes, > 0; rounded up to a whole page
 * @flags:	in: zero (no flags are defined yet)
 * @fd:		out: a dma-buf fd (O_CLOEXEC|O_RDWR); mmap it MAP_SHARED
 * @id:		out: the buffer's id, as in SPILLWAY_IOC_LIST_BUFFERS
 * @reserved:	zero
 *
 * Errors: EINVAL (size 0, or above both the pool and the size last asked
 * for; flags or reserved not zero), ENOMEM (the pool has too little free,
 * also when pressure shrank it under the request, or when the rest is
 * guaranteed to cgroups outside the opener's: struct spillway_share),
 * EDQUOT (the per-user limit, charged to the real uid of the process that
 * opened /dev/spillway; or, ABI 1.2, the max of that process's cgroup at
 * open() or of one of its ancestors).
 */
struct spillway_alloc {
	__u64 size;
	__u32 flags;
	__s32 fd;
	__u64 id;
	__u64 reserved[2];
};

#define SPILLWAY_ALLOC_SIZE		40

/**
 * struct spillway_resize - SPILLWAY_IOC_RESIZE: grow or shrink the pool
 * @pool_bytes:	in: the size wanted, bytes (rounded up to a page)
 * @flags:	in: zero
 * @reserved0:	zero
 * @result_bytes: out: the pool's size afterwards.  Growing stops short when
 *		memory is short; shrinking releases only chunks no buffer uses.
 *		Neither is an error: compare with @pool_bytes.
 * @reserved:	zero
 *
 * Needs CAP_SYS_ADMIN (EPERM).  EINVAL when @pool_bytes is above the
 * machine's RAM (MemTotal), or flags or reserved are not zero.
 */
struct spillway_resize {
	__u64 pool_bytes;
	__u32 flags;
	__u32 reserved0;
	__u64 result_bytes;
	__u64 reserved[2];
};

#define SPILLWAY_RESIZE_SIZE		40

/**
 * struct spillway_watermarks - SPILLWAY_IOC_SET_WATERMARKS
 * @warn:	MemAvailable under this is WARN, bytes
 * @critical:	MemAvailable under this is CRITICAL, bytes; <= @warn
 * @flags:	zero
 * @reserved0:	zero
 * @reserved:	zero
 *
 * Needs CAP_SYS_ADMIN (EPERM); EINVAL when @critical > @warn.
 */
struct spillway_watermarks {
	__u64 warn;
	__u64 critical;
	__u32 flags;
	__u32 reserved0;
	__u64 reserved[2];
};

#define SPILLWAY_WATERMARKS_SIZE	40

/**
 * struct spillway_buffer_info - one entry of SPILLWAY_IOC_LIST_BUFFERS
 * @id:		buffer id
 * @size:	bytes
 * @pid:	thread-group id of the process that allocated it
 * @uid:	the uid charged for it: the real uid of the process that opened
 *		the /dev/spillway it was allocated through, as seen from the
 *		initial user namespace
 * @cgroup_id:	the cgroup v2 charged for it: the one the process that opened
 *		the /dev/spillway it was allocated through was in at open()
 *		(ABI 1.2; 0 from older modules)
 */
struct spillway_buffer_info {
	__u64 id;
	__u64 size;
	__s32 pid;
	__u32 uid;
	__u64 cgroup_id;
};

#define SPILLWAY_BUFFER_INFO_SIZE	32

/**
 * struct spillway_list - SPILLWAY_IOC_LIST_BUFFERS
 * @entries:	in: user pointer to an array of struct spillway_buffer_info
 * @capacity:	in: entries the array holds (at most 65536)
 * @count:	out: live buffers in all; only min(@count, @capacity) are written
 *
 * A caller without CAP_SYS_ADMIN sees only the buffers charged to the real
 * uid that opened its /dev/spillway (ABI 1.1).
 * @reserved:	zero
 */
struct spillway_list {
	__u64 entries;
	__u32 capacity;
	__u32 count;
	__u64 reserved[2];
};

#define SPILLWAY_LIST_SIZE		32
#define SPILLWAY_LIST_MAX		65536

/**
 * struct spillway_share - SPILLWAY_IOC_SET_SHARE, and one entry of
 *			   SPILLWAY_IOC_LIST_SHARES: a cgroup's share of the pool
 * @cgroup_id:	the cgroup v2's id (the inode number of its directory in the
 *		cgroup2 filesystem).  SET: in when @cgroup_fd is -1 (else
 *		ignored); out always.
 * @cgroup_fd:	SET in: an fd open on the cgroup's directory, or -1 to name
 *		it by @cgroup_id.  LIST out: -1.
 * @flags:	zero
 * @max_bytes:	the live buffer and loan bytes charged to the cgroup and its
 *		descendants may not go above this (ALLOC and LEND fail with EDQUOT);
 *		0 = no limit.  Rounded up to a page (SET writes back the
 *		rounded value).
 * @min_bytes:	guaranteed: while the pool holds its requested size, buffers
 *		charged outside the cgroup's subtree can not take the unused
 *		part of it (ALLOC fails with ENOMEM).  0 = none.  Rounded up to
 *		a page (written back).  Only the guarantees none of whose
 *		ancestors has one are kept from others; one below another
 *		guarantee is not kept from its siblings.
 * @used_bytes:	out: live buffer bytes (and, ABI 1.3, loan bytes) charged to
 *		the cgroup and its descendants
 * @reserved:	zero
 *
 * Buffers are charged to the cgroup the process that opened /dev/spillway
 * was in at open(); limits and guarantees apply down the hierarchy as cgroup
 * v2 limits do.  SET needs CAP_SYS_ADMIN (EPERM); both limits 0 removes the
 * share (its usage is still listed while buffers are charged).  A share is
 * dropped when its cgroup is removed.  SET errors: EBADF (@cgroup_fd is not
 * an open fd), ENOTDIR (it is open but not on a cgroup v2 directory), ENOENT
 * (no live cgroup has @cgroup_id, or @cgroup_fd's cgroup was removed),
 * EINVAL (min above a non-zero max, flags or reserved not zero), ENOSPC (the
 * guarantees of cgroups none of whose ancestors has one would add up to more
 * than the pool's requested size; a SET that does not raise that sum is
 * never refused).  LIST_SHARES takes struct spillway_list, is open to
 * anyone with the fd, and lists every cgroup with a share or with buffers
 * charged to it, in no particular order.
 */
struct spillway_share {
	__u64 cgroup_id;
	__s32 cgroup_fd;
	__u32 flags;
	__u64 max_bytes;
	__u64 min_bytes;
	__u64 used_bytes;
	__u64 reserved[3];
};

#define SPILLWAY_SHARE_SIZE		64

/**
 * struct spillway_loan - SPILLWAY_IOC_LEND and SPILLWAY_IOC_RETURN (ABI 1.3)
 * @size:	LEND in: bytes a GPU driver is about to allocate from the
 *		kernel for this caller (host memory that can not come from a
 *		dma-buf, e.g. cuMemCreate on a host NUMA node); out: the size
 *		lent, rounded up to whole pool chunks.  RETURN: ignored.
 * @flags:	zero
 * @reserved0:	zero
 * @id:		LEND out: the loan's id (never 0); RETURN in: the loan to end
 * @reserved:	zero
 *
 * LEND shrinks the pool by @size (whole free chunks go back to the page
 * allocator) so that the driver's allocation takes capacity that was
 * reserved for GPU jobs, not memory of other processes; the loan is charged
 * like a buffer, to the opener's user limit and to its cgroup's share
 * (struct spillway_share), and belongs to the open file.
 * RETURN (or the release of the file) ends the loan and the pool grows back
 * by its size in the background.  LEND errors: EINVAL (size 0, or so large
 * that rounding it up wraps; flags or reserved not zero), EDQUOT (the user's
 * limit, or a cgroup's max), ENOMEM (fewer whole free chunks than @size, also
 * when the rest is guaranteed to cgroups outside the opener's, or the
 * pressure level is critical).  RETURN errors: EINVAL (no such loan on this
 * file).  Loans are listed by
 * SPILLWAY_IOC_LIST_LOANS (struct spillway_list of struct
 * spillway_buffer_info, the entry's @id the loan's), with the same
 * visibility rules as SPILLWAY_IOC_LIST_BUFFERS.
 */
struct spillway_loan {
	__u64 size;
	__u32 flags;
	__u32 reserved0;
	__u64 id;
	__u64 reserved[2];
};

#define SPILLWAY_LOAN_SIZE		40

/**
 * struct spillway_test_pin - SPILLWAY_IOC_TEST_PIN (test builds only)
 * @addr:	in: page-aligned user address of a mapping
 * @size:	in: bytes, page multiple, > 0, at most 1 GiB
 * @flags:	in: zero
 * @reserved0:	zero
 * @pinned:	out: pages that pin_user_pages_fast(FOLL_LONGTERM|FOLL_WRITE)
 *		pinned; they are unpinned before the ioctl returns
 * @reserved:	zero
 *
 * Exists only when the module was loaded with test_ioctls=1 (else ENOTTY):
 * it proves that a mapping can be pinned the way cuMemHostRegister pins it.
 */
struct spillway_test_pin {
	__u64 addr;
	__u64 size;
	__u32 flags;
	__u32 reserved0;
	__u64 pinned;
	__u64 reserved[2];
};

#define SPILLWAY_TEST_PIN_SIZE		48

#define SPILLWAY_IOC_MAGIC		0xB7

#define SPILLWAY_IOC_VERSION		_IOR(SPILLWAY_IOC_MAGIC, 0x00, struct spillway_version)
#define SPILLWAY_IOC_INFO		_IOR(SPILLWAY_IOC_MAGIC, 0x01, struct spillway_info)
#define SPILLWAY_IOC_ALLOC		_IOWR(SPILLWAY_IOC_MAGIC, 0x02, struct spillway_alloc)
#define SPILLWAY_IOC_RESIZE		_IOWR(SPILLWAY_IOC_MAGIC, 0x03, struct spillway_resize)
#define SPILLWAY_IOC_SET_WATERMARKS	_IOW(SPILLWAY_IOC_MAGIC, 0x04, struct spillway_watermarks)
#define SPILLWAY_IOC_LIST_BUFFERS	_IOWR(SPILLWAY_IOC_MAGIC, 0x05, struct spillway_list)
#define SPILLWAY_IOC_SET_SHARE		_IOWR(SPILLWAY_IOC_MAGIC, 0x06, struct spillway_share)
#define SPILLWAY_IOC_LIST_SHARES	_IOWR(SPILLWAY_IOC_MAGIC, 0x07, struct spillway_list)
#define SPILLWAY_IOC_LEND		_IOWR(SPILLWAY_IOC_MAGIC, 0x08, struct spillway_loan)
#define SPILLWAY_IOC_RETURN		_IOW(SPILLWAY_IOC_MAGIC, 0x09, struct spillway_loan)
#define SPILLWAY_IOC_LIST_LOANS		_IOWR(SPILLWAY_IOC_MAGIC, 0x0A, struct spillway_list)
#define SPILLWAY_IOC_TEST_PIN		_IOWR(SPILLWAY_IOC_MAGIC, 0x40, struct spillway_test_pin)

#endif /* _UAPI_LINUX_SPILLWAY_H */
