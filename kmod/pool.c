// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: the pool of reserved pages.
 *
 * The pool is a list of chunks, each one high-order allocation (order 9,
 * lower when memory is fragmented) split into order-0 pages so that each
 * page can be mapped and pinned on its own.  Buffers take pages from chunks
 * that are already in use first, so that whole chunks stay free and can be
 * given back to the kernel by a resize or under pressure.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/hashtable.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "spillway_internal.h"

/* Never movable, never CMA: long-term pins must not need a migration. */
#define SPILLWAY_GFP	(GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN | __GFP_NORETRY)

static struct spillway_pool *const pool = &spillway.pool;

/*
 * Pages handled per hold of the pool lock when a buffer goes back: a
 * release of many GiB takes and drops the lock many times, so the OOM
 * notifier and allocations wait for one batch at most.
 */
#define SPILLWAY_PUT_BATCH	SPILLWAY_CHUNK_PAGES

/*
 * Pages taken per hold when a buffer is filled.  Each batch walks the chunk
 * list from its head (the chunks in use first), so a batch is larger.
 */
#define SPILLWAY_TAKE_BATCH	(8 * SPILLWAY_CHUNK_PAGES)

void spillway_pool_lock(void)
{
	mutex_lock(&pool->lock);
	pool->locked_at = spillway_timing_start();
}

void spillway_pool_unlock(void)
{
	spillway_timing_end(&spillway.timing.pool_lock_max_ns, pool->locked_at);
	mutex_unlock(&pool->lock);
}

static struct spillway_chunk *spillway_chunk_alloc(unsigned int order)
{
	struct spillway_chunk *chunk;
	struct page *page;

	chunk = kzalloc(sizeof(*chunk), GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN);
	if (!chunk)
		return NULL;
	page = alloc_pages(SPILLWAY_GFP, order);
	if (!page) {
		kfree(chunk);
		return NULL;
	}
	if (order)
		split_page(page, order);
	chunk->first = page;
	chunk->order = order;
	return chunk;
}

/* Frees the pages the pool still holds; gone pages belong to the kernel. */
static void spillway_chunk_free(struct spillway_chunk *chunk)
{
	unsigned int i;

	for (i = 0; i < (1U << chunk->order); i++)
		if (!test_bit(i, chunk->busy))
			__free_page(chunk->first + i);
	kfree(chunk);
}

/* Frees chunks unlinked from the pool, outside the pool lock. */
static void spillway_chunks_free(struct list_head *list)
{
	struct spillway_chunk *chunk, *tmp;

	list_for_each_entry_safe(chunk, tmp, list, node) {
		list_del(&chunk->node);
		spillway_chunk_free(chunk);
		cond_resched();
	}
}

static unsigned long spillway_chunk_held(struct spillway_chunk *chunk)
{
	return (1UL << chunk->order) - chunk->gone;
}

/*
 * Pages still missing for @target; the pool may have shrunk meanwhile.
 * Lent pages count as held: they come back when their loans end.
 */
static unsigned long spillway_pool_missing(unsigned long target)
{
	unsigned long have;

	spillway_pool_lock();
	have = pool->nr_pages + pool->lent_pages;
	spillway_pool_unlock();
	return target > have ? target - have : 0;
}

/*
 * Adds chunks until the pool and its loans hold @target pages.  Called under
 * @resize_lock, so no other resize runs; pressure (the watchdog at the
 * critical level, the OOM notifier) and pages lost to pins at buffer release
 * may still shrink the pool meanwhile, so the deficit is read again before
 * each chunk.  Stops short, without error, when allocations fail, when
 * MemAvailable would fall under @reserve, or when the level reaches
 * @stop_level: the pool must never itself push the system towards OOM.
 */
static void spillway_pool_grow(unsigned long target, unsigned long reserve,
			       u32 stop_level)
{
	unsigned int order = SPILLWAY_CHUNK_ORDER;
	struct spillway_chunk *chunk;
	unsigned long missing;

	lockdep_assert_held(&pool->resize_lock);
	/* Allocate without @lock so that the OOM notifier can still run. */
	while ((missing = spillway_pool_missing(target))) {
		while (order && (1UL << order) > missing)
			order--;
		if (si_mem_available() < reserve + (1UL << order))
			break;
		if (spillway_watchdog_level() >= stop_level)
			break;
		if (fatal_signal_pending(current))
			break;
		chunk = spillway_chunk_alloc(order);
		if (!chunk) {
			if (!order)
				break;
			order--;
			continue;
		}
		spillway_pool_lock();
		list_add_tail(&chunk->node, &pool->chunks);
		pool->nr_pages += 1UL << order;
		spillway_pool_unlock();
		cond_resched();
	}
}

/*
 * Unlinks chunks that no buffer uses onto @out while the pool stays at or
 * above @target pages, until @want pages are unlinked; the caller frees them
 * after dropping the lock.  The newest chunks go first.  Returns the pages
 * unlinked.
 */
static unsigned long spillway_pool_unlink_free(unsigned long target,
					       unsigned long want,
					       struct list_head *out)
{
	struct spillway_chunk *chunk, *tmp;
	unsigned long held, freed = 0;

	lockdep_assert_held(&pool->lock);
	list_for_each_entry_safe_reverse(chunk, tmp, &pool->chunks, node) {
		if (pool->nr_pages <= target || freed >= want)
			break;
		held = spillway_chunk_held(chunk);
		/* used_pages may hold pages reserved and not yet taken. */
		if (chunk->used || pool->nr_pages - held < target ||
		    pool->nr_pages - held < pool->used_pages)
			continue;
		list_move(&chunk->node, out);
		pool->nr_pages -= held;
		freed += held;
	}
	return freed;
}

/* Returns the pool's size in pages afterwards. */
unsigned long spillway_pool_resize(unsigned long pages)
{
	unsigned long have, freed, lent, target;
	LIST_HEAD(unlinked);

	mutex_lock(&pool->resize_lock);
	spillway_pool_lock();
	WRITE_ONCE(pool->requested_pages, pages);
	/* What is lent is part of the request: the pool aims at the rest. */
	lent = pool->lent_pages;
	target = pages > lent ? pages - lent : 0;
	freed = spillway_pool_unlink_free(target, ULONG_MAX, &unlinked);
	spillway_pool_unlock();
	spillway_chunks_free(&unlinked);

	/*
	 * A resize stops at the warn mark, or at the critical level: the
	 * watchdog would give the chunk back at its next sample.
	 */
	spillway_pool_grow(pages, spillway_watchdog_warn_mark() >> PAGE_SHIFT,
			   SPILLWAY_LEVEL_CRITICAL);

	spillway_pool_lock();
	have = pool->nr_pages;
	lent = pool->lent_pages;
	spillway_pool_unlock();
	mutex_unlock(&pool->resize_lock);

	if (freed)
		pr_info("pool: released %lu MiB of free chunks\n",
			freed >> (20 - PAGE_SHIFT));
	/* A notice: the caller learns the outcome too (the ioctl's result, sysfs pool_bytes). */
	if (lent)
		pr_info("pool: %lu KiB of the request is lent\n",
			lent << (PAGE_SHIFT - 10));
	target = pages > lent ? pages - lent : 0;
	if (have != target)
		pr_notice("pool: asked for %lu KiB, holds %lu KiB%s\n",
			  target << (PAGE_SHIFT - 10), have << (PAGE_SHIFT - 10),
			  have > target ? " (only whole free chunks go)" : " (memory short)");
	return have;
}

/*
 * Grows the pool back toward the size last asked for, after pressure or
 * pages lost at release shrank it.  The watchdog calls it once the level
 * has been ok for regrow_ms.  It leaves MemAvailable at least the warn mark
 * plus its hysteresis band (so that growing does not itself change the
 * level), stops at any level above ok, and skips its turn while a resize
 * runs.  Returns the pages added.
 */
static unsigned long spillway_pool_regrow_locked(void)
{
	unsigned long before, after;

	lockdep_assert_held(&pool->resize_lock);
	before = READ_ONCE(pool->nr_pages);
	spillway_pool_grow(READ_ONCE(pool->requested_pages),
			   spillway_watchdog_ok_mark() >> PAGE_SHIFT,
			   SPILLWAY_LEVEL_WARN);
	after = READ_ONCE(pool->nr_pages);
	return after > before ? after - before : 0;
}

unsigned long spillway_pool_regrow(void)
{
	unsigned long pages;

	if (!mutex_trylock(&pool->resize_lock))
		return 0;
	pages = spillway_pool_regrow_locked();
	mutex_unlock(&pool->resize_lock);
	return pages;
}

/*
 * Grows the pool back after loans ended, by the regrow rules.  It waits for
 * a resize or a LEND rather than skipping its turn: a loan's end comes once.
 * What it can not get now is a shortfall, which the watchdog's regrow
 * retries every regrow_ms while the level is ok.
 */
static void spillway_pool_growback_work(struct work_struct *work)
{
	unsigned long pages;

	mutex_lock(&pool->resize_lock);
	pages = spillway_pool_regrow_locked();
	mutex_unlock(&pool->resize_lock);
	if (pages)
		pr_debug("pool: grew back by %lu KiB after loans\n",
			 pages << (PAGE_SHIFT - 10));
}

/* Queues the grow-back after a loan ended. */
void spillway_pool_growback(void)
{
	queue_work(system_unbound_wq, &pool->growback_work);
}

/* Whether the pool and its loans hold less than was last asked for; lockless. */
bool spillway_pool_short(void)
{
	return READ_ONCE(pool->nr_pages) + READ_ONCE(pool->lent_pages) <
	       READ_ONCE(pool->requested_pages);
}

/*
 * Gives free chunks back to the kernel down to the floor, under pressure:
 * from the watchdog at the critical level and from the OOM notifier.  It
 * takes the pool lock and waits for it: nothing allocates under that lock
 * (so an allocation that ran out can not be holding it), and no hold of it
 * lasts longer than one batch of pages.  Returns the pages freed.
 */
unsigned long spillway_pool_release_free(void)
{
	unsigned long freed;
	LIST_HEAD(unlinked);

	spillway_pool_lock();
	freed = spillway_pool_unlink_free(pool->floor_pages, ULONG_MAX, &unlinked);
	pool->released_pages += freed;
	spillway_pool_unlock();
	spillway_chunks_free(&unlinked);
	return freed;
}

/*
 * Per-user accounting: one entry per uid with live buffers, in a hash, so
 * that the limit check does not walk every buffer under the lock.  Entries
 * are allocated before the lock is taken (nothing allocates under it).
 */
static struct spillway_user *spillway_user_find_locked(uid_t uid)
{
	struct spillway_user *user;

	hash_for_each_possible(pool->users, user, node, uid)
		if (user->uid == uid)
			return user;
	return NULL;
}

/*
 * -EDQUOT over the per-user limit or a cgroup's limit, -ENOMEM when the
 * pool has too little once other cgroups' guarantees are left aside.  The
 * limits count buffers and loans together.
 */
static int spillway_pool_check_locked(uid_t uid, struct spillway_share_node *share,
				      unsigned long nr_pages)
{
	u64 limit = (u64)spillway_user_limit_mb << (20 - PAGE_SHIFT);
	struct spillway_user *user = spillway_user_find_locked(uid);
	u64 charged = user ? user->pages : 0;

	lockdep_assert_held(&pool->lock);
	if (limit && charged + nr_pages > limit)
		return -EDQUOT;
	return spillway_share_check_locked(share, nr_pages);
}

/*
 * The checks of spillway_pool_take() before a buffer's page arrays are
 * allocated, so that a request that must fail allocates nothing.
 */
int spillway_pool_precheck(uid_t uid, struct spillway_share_node *share,
			   unsigned long nr_pages)
{
	int ret;

	spillway_pool_lock();
	ret = spillway_pool_check_locked(uid, share, nr_pages);
	spillway_pool_unlock();
	return ret;
}

/*
 * A lockless snapshot for event records: the OOM notifier must not wait for
 * the pool lock.  The two words may be from different moments; never negative.
 */
u64 spillway_pool_free_bytes(void)
{
	unsigned long held = READ_ONCE(pool->nr_pages);
	unsigned long used = READ_ONCE(pool->used_pages);

	return held > used ? (u64)(held - used) << PAGE_SHIFT : 0;
}

static unsigned long spillway_chunk_take(struct spillway_chunk *chunk,
					 struct spillway_buffer *buf,
					 unsigned long n, unsigned long max)
{
	unsigned int i = 0, pages = 1U << chunk->order;

	while (n < max) {
		i = find_next_zero_bit(chunk->busy, pages, i);
		if (i >= pages)
			break;
		__set_bit(i, chunk->busy);
		buf->pages[n] = chunk->first + i;
		buf->chunks[n] = chunk;
		chunk->used++;
		n++;
	}
	return n;
}

/*
 * Gives pages [@start, @end) of @buf back to their chunks, under the lock;
 * a NULL entry is a page the kernel has now (see spillway_buffer_scrub()).
 */
static void spillway_pool_put_locked(struct spillway_buffer *buf,
				     unsigned long start, unsigned long end)
{
	struct spillway_chunk *chunk;
	unsigned long i;

	lockdep_assert_held(&pool->lock);
	for (i = start; i < end; i++) {
		chunk = buf->chunks[i];
		chunk->used--;
		if (!buf->pages[i]) {
			/* Stays busy: the page is the kernel's now. */
			chunk->gone++;
			pool->nr_pages--;
			pool->lost_pages++;
		} else {
			__clear_bit(buf->pages[i] - chunk->first, chunk->busy);
		}
	}
	pool->used_pages -= end - start;
}

/*
 * Charges @nr_pages to @uid and @share, after spillway_pool_check_locked();
 * @spare becomes the uid's entry when it has none (and is then NULL).
 * Returns the uid's entry.
 */
static struct spillway_user *
spillway_charge_locked(uid_t uid, struct spillway_share_node *share,
		       unsigned long nr_pages, struct spillway_user **spare)
{
	struct spillway_user *user = spillway_user_find_locked(uid);

	lockdep_assert_held(&pool->lock);
	if (!user) {
		user = *spare;
		*spare = NULL;
		user->uid = uid;
		hash_add(pool->users, &user->node, user->uid);
	}
	user->pages += nr_pages;
	spillway_share_charge_locked(share, nr_pages);
	return user;
}

/*
 * Undoes spillway_charge_locked(); returns the user entry to free when it
 * is the last, and puts share nodes to free on @unlinked.
 */
static struct spillway_user *
spillway_uncharge_locked(struct spillway_user *user,
			 struct spillway_share_node *share,
			 unsigned long nr_pages, struct hlist_head *unlinked)
{
	lockdep_assert_held(&pool->lock);
	spillway_share_uncharge_locked(share, nr_pages, unlinked);
	user->pages -= nr_pages;
	if (user->pages)
		return NULL;
	hash_del(&user->node);
	return user;
}

static struct spillway_user *
spillway_buffer_uncharge_locked(struct spillway_buffer *buf,
				struct hlist_head *unlinked)
{
	return spillway_uncharge_locked(buf->user, buf->share, buf->nr_pages,
					unlinked);
}

/*
 * Fills @buf->pages[@n ..] from the chunks in use first, then from empty
 * ones, at most @max pages; under the lock.  Returns the new fill count.
 */
static unsigned long spillway_pool_fill_locked(struct spillway_buffer *buf,
					       unsigned long n, unsigned long max)
{
	struct spillway_chunk *chunk;
	int pass;

	lockdep_assert_held(&pool->lock);
	for (pass = 0; pass < 2 && n < max; pass++) {
		list_for_each_entry(chunk, &pool->chunks, node) {
			/* Pass 0: chunks in use; pass 1: empty chunks. */
			if (!chunk->used == !pass)
				continue;
			n = spillway_chunk_take(chunk, buf, n, max);
			if (n == max)
				break;
		}
	}
	return n;
}

/*
 * Fills @buf->pages with @buf->nr_pages pages, from chunks in use first.
 * Returns -EDQUOT over the per-user limit, -ENOMEM when the pool is short.
 *
 * The pages are reserved first (used_pages, which a shrink never goes
 * under), then taken in batches, each under one short hold of the lock, so
 * that a buffer of many GiB does not keep the OOM notifier waiting.  The
 * buffer is listed once it is complete.
 */
int spillway_pool_take(struct spillway_buffer *buf)
{
	struct spillway_user *spare, *user;
	unsigned long n = 0, end, filled;
	HLIST_HEAD(unlinked);
	int ret;

	spare = kzalloc(sizeof(*spare), GFP_KERNEL_ACCOUNT);
	if (!spare)
		return -ENOMEM;
	spillway_pool_lock();
	ret = spillway_pool_check_locked(buf->uid, buf->share, buf->nr_pages);
	if (ret) {
		spillway_pool_unlock();
		kfree(spare);
		return ret;
	}
	buf->user = spillway_charge_locked(buf->uid, buf->share, buf->nr_pages,
					   &spare);
	pool->used_pages += buf->nr_pages;
	spillway_pool_unlock();
	kfree(spare);

	while (n < buf->nr_pages) {
		end = min(n + SPILLWAY_TAKE_BATCH, buf->nr_pages);
		spillway_pool_lock();
		filled = spillway_pool_fill_locked(buf, n, end);
		spillway_pool_unlock();
		/* The reservation guarantees enough free pages. */
		if (WARN_ON_ONCE(filled == n))
			break;
		n = filled;
		cond_resched();
	}

	spillway_pool_lock();
	if (n != buf->nr_pages) {
		spillway_pool_put_locked(buf, 0, n);
		pool->used_pages -= buf->nr_pages - n;
		user = spillway_buffer_uncharge_locked(buf, &unlinked);
		spillway_pool_unlock();
		kfree(user);
		spillway_share_free(&unlinked);
		return -ENOMEM;
	}
	pool->nr_buffers++;
	list_add_tail(&buf->node, &pool->buffers);
	spillway_pool_unlock();
	return 0;
}

/*
 * Zeroes @buf's pages for reuse, without the pool lock: they are still
 * @buf's (busy in their chunks), so nothing else in the pool touches them.
 * A page someone else still holds (a pin that outlived every mapping) is
 * never reused: the pool drops its reference now, the kernel gets the page
 * when the last holder lets go, and its entry becomes NULL.  Returns the
 * number of such pages.
 */
static unsigned long spillway_buffer_scrub(struct spillway_buffer *buf)
{
	unsigned long i, lost = 0;

	for (i = 0; i < buf->nr_pages; i++) {
		if (page_count(buf->pages[i]) == 1) {
			clear_highpage(buf->pages[i]);
		} else {
			put_page(buf->pages[i]);
			buf->pages[i] = NULL;
			lost++;
		}
		if (!((i + 1) % SPILLWAY_PUT_BATCH))
			cond_resched();
	}
	return lost;
}

/*
 * Returns @buf's pages to the pool, zeroed.  The buffer leaves the list
 * first; its pages are zeroed outside the lock and go back in batches, so
 * that the OOM notifier can give back what is free while a buffer of many
 * GiB is being released.
 */
void spillway_pool_put(struct spillway_buffer *buf)
{
	unsigned long start, end, lost;
	u64 t0 = spillway_timing_start();
	struct spillway_user *user;
	HLIST_HEAD(unlinked);

	spillway_pool_lock();
	list_del(&buf->node);
	pool->nr_buffers--;
	user = spillway_buffer_uncharge_locked(buf, &unlinked);
	spillway_pool_unlock();
	kfree(user);
	spillway_share_free(&unlinked);

	lost = spillway_buffer_scrub(buf);
	for (start = 0; start < buf->nr_pages; start = end) {
		end = min(start + SPILLWAY_PUT_BATCH, buf->nr_pages);
		spillway_pool_lock();
		spillway_pool_put_locked(buf, start, end);
		spillway_pool_unlock();
		cond_resched();
	}
	if (lost) {
		spillway_watchdog_report(SPILLWAY_EVENT_LOST, 0,
					 (u64)lost << PAGE_SHIFT);
		pr_warn_ratelimited("pool: %lu pages still referenced at release, not reused\n",
				    lost);
	}
	spillway_timing_end(&spillway.timing.release_max_ns, t0);
}

void spillway_pool_init(unsigned long pages)
{
	mutex_init(&pool->resize_lock);
	mutex_init(&pool->lock);
	INIT_LIST_HEAD(&pool->chunks);
	INIT_LIST_HEAD(&pool->buffers);
	INIT_LIST_HEAD(&pool->loans);
	INIT_WORK(&pool->growback_work, spillway_pool_growback_work);
	hash_init(pool->users);
	spillway_share_init();
	if (pages)
		spillway_pool_resize(pages);
	pr_info("pool: %lu MiB reserved\n", pool->nr_pages >> (20 - PAGE_SHIFT));
}

void spillway_pool_exit(void)
{
	/*
	 * Every dma-buf and open file holds a module reference: no buffer
	 * and no loan can be live; a grow-back may still be queued.
	 */
	cancel_work_sync(&pool->growback_work);
	WARN_ON(pool->used_pages || !list_empty(&pool->buffers));
	WARN_ON(pool->lent_pages || !list_empty(&pool->loans));
	spillway_share_exit();
	spillway_chunks_free(&pool->chunks);
	pool->nr_pages = 0;
}

/* Pool size in bytes, lockless: used to bound a request. */
u64 spillway_pool_bytes(void)
{
	return (u64)READ_ONCE(pool->nr_pages) << PAGE_SHIFT;
}

/* The size last asked for, lockless: used to judge a request. */
u64 spillway_pool_requested_bytes(void)
{
	return (u64)READ_ONCE(pool->requested_pages) << PAGE_SHIFT;
}

void spillway_pool_set_floor(unsigned long pages)
{
	spillway_pool_lock();
	pool->floor_pages = pages;
	spillway_pool_unlock();
}

void spillway_pool_fill_info(struct spillway_info *info)
{
	spillway_pool_lock();
	info->pool_bytes = (u64)pool->nr_pages << PAGE_SHIFT;
	info->requested_bytes = (u64)pool->requested_pages << PAGE_SHIFT;
	info->used_bytes = (u64)pool->used_pages << PAGE_SHIFT;
	info->free_bytes = (u64)(pool->nr_pages - pool->used_pages) << PAGE_SHIFT;
	info->floor_bytes = (u64)pool->floor_pages << PAGE_SHIFT;
	info->released_bytes = (u64)pool->released_pages << PAGE_SHIFT;
	info->lost_bytes = (u64)pool->lost_pages << PAGE_SHIFT;
	info->lent_bytes = (u64)pool->lent_pages << PAGE_SHIFT;
	info->buffers = pool->nr_buffers;
	spillway_pool_unlock();
}

/*
 * Writes up to @capacity entries and returns the number of live buffers;
 * with @only_uid, only the buffers charged to that uid.
 */
u32 spillway_pool_list(struct spillway_buffer_info *out, u32 capacity,
		       bool filter, uid_t only_uid)
{
	struct spillway_buffer *buf;
	u32 n = 0;

	spillway_pool_lock();
	list_for_each_entry(buf, &pool->buffers, node) {
		if (filter && buf->uid != only_uid)
			continue;
		if (n < capacity) {
			out[n].id = buf->id;
			out[n].size = (u64)buf->nr_pages << PAGE_SHIFT;
			out[n].pid = buf->pid;
			out[n].uid = buf->uid;
			out[n].cgroup_id = buf->share->cgroup_id;
		}
		n++;
	}
	spillway_pool_unlock();
	return n;
}

/**
 * spillway_pool_lend - give whole free chunks back to the kernel for a loan
 * @loan:	asks for @loan->nr_pages (whole chunks) for @loan->uid and
 *		@loan->share; on success holds the pages lent (more when the
 *		free chunks that were there do not add up exactly), is charged,
 *		has its id and is listed
 * @spare:	a zeroed user entry, used when the uid has none; freed here
 *
 * Takes the resize mutex, as a resize does, so that loans and resizes come
 * one after the other.  The pages are freed, not zeroed: they are zeroed
 * when they come back into the pool.
 *
 * Return: 0, -EDQUOT (the user's or a cgroup's limit), -ENOMEM (at the
 * critical level, or fewer free chunks than asked for once other cgroups'
 * guarantees are left aside), -EINTR (a fatal signal while waiting).
 */
int spillway_pool_lend(struct spillway_lent *loan, struct spillway_user *spare)
{
	unsigned long freed;
	LIST_HEAD(unlinked);
	int ret;

	if (mutex_lock_killable(&pool->resize_lock)) {
		kfree(spare);
		return -EINTR;
	}
	spillway_pool_lock();
	ret = spillway_pool_check_locked(loan->uid, loan->share, loan->nr_pages);
	/* The driver's allocation would be the next one the OOM killer sees. */
	if (!ret && spillway_watchdog_level() >= SPILLWAY_LEVEL_CRITICAL)
		ret = -ENOMEM;
	if (ret)
		goto out;
	freed = spillway_pool_unlink_free(0, loan->nr_pages, &unlinked);
	/* Counted as held again until the loan is sure; nothing is freed yet. */
	pool->nr_pages += freed;
	if (freed < loan->nr_pages)
		ret = -ENOMEM;
	else if (freed > loan->nr_pages)	/* chunks of a lower order */
		ret = spillway_pool_check_locked(loan->uid, loan->share, freed);
	if (ret) {
		list_splice_tail_init(&unlinked, &pool->chunks);
		goto out;
	}
	pool->nr_pages -= freed;
	loan->nr_pages = freed;
	loan->user = spillway_charge_locked(loan->uid, loan->share, freed, &spare);
	loan->id = ++pool->next_loan_id;
	pool->lent_pages += freed;
	list_add_tail(&loan->node, &pool->loans);
out:
	spillway_pool_unlock();
	spillway_chunks_free(&unlinked);
	mutex_unlock(&pool->resize_lock);
	kfree(spare);
	return ret;
}

/*
 * Ends @loan: unlists and uncharges it; the caller queues the grow-back.
 * Returns the user entry to free, and puts share nodes to free on @unlinked.
 */
struct spillway_user *spillway_pool_end_loan_locked(struct spillway_lent *loan,
						    struct hlist_head *unlinked)
{
	lockdep_assert_held(&pool->lock);
	list_del(&loan->node);
	pool->lent_pages -= loan->nr_pages;
	return spillway_uncharge_locked(loan->user, loan->share, loan->nr_pages,
					unlinked);
}
