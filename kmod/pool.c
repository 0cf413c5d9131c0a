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
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "spillway_internal.h"

/* Never movable, never CMA: long-term pins must not need a migration. */
#define SPILLWAY_GFP	(GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN | __GFP_NORETRY)

static struct spillway_pool *const pool = &spillway.pool;

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

static unsigned long spillway_chunk_held(struct spillway_chunk *chunk)
{
	return (1UL << chunk->order) - chunk->gone;
}

/* Pages still missing for @target; the pool may have shrunk meanwhile. */
static unsigned long spillway_pool_missing(unsigned long target)
{
	unsigned long have;

	mutex_lock(&pool->lock);
	have = pool->nr_pages;
	mutex_unlock(&pool->lock);
	return target > have ? target - have : 0;
}

/*
 * Adds chunks until the pool holds @target pages.  Called under
 * @resize_lock, so no other resize runs; pressure (the watchdog at the
 * critical level, the OOM notifier) and pages lost to pins at buffer release
 * may still shrink the pool meanwhile, so the deficit is read again before
 * each chunk.  Stops short, without error, when allocations fail, when the
 * level is critical (the watchdog would give the chunk back at its next
 * sample) or when MemAvailable would fall under the warn watermark: the pool
 * must never itself push the system towards OOM.
 */
static void spillway_pool_grow(unsigned long target)
{
	unsigned long reserve = READ_ONCE(spillway.wd.warn) >> PAGE_SHIFT;
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
		if (READ_ONCE(spillway.wd.level) == SPILLWAY_LEVEL_CRITICAL)
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
		mutex_lock(&pool->lock);
		list_add_tail(&chunk->node, &pool->chunks);
		pool->nr_pages += 1UL << order;
		mutex_unlock(&pool->lock);
		cond_resched();
	}
}

/*
 * Frees chunks that no buffer uses while the pool stays at or above
 * @target pages.  The newest chunks go first.  Returns the pages freed.
 */
static unsigned long spillway_pool_shrink_locked(unsigned long target)
{
	struct spillway_chunk *chunk, *tmp;
	unsigned long held, freed = 0;

	lockdep_assert_held(&pool->lock);
	list_for_each_entry_safe_reverse(chunk, tmp, &pool->chunks, node) {
		if (pool->nr_pages <= target)
			break;
		held = spillway_chunk_held(chunk);
		if (chunk->used || pool->nr_pages - held < target)
			continue;
		list_del(&chunk->node);
		spillway_chunk_free(chunk);
		pool->nr_pages -= held;
		freed += held;
	}
	return freed;
}

/* Returns the pool's size in pages afterwards. */
unsigned long spillway_pool_resize(unsigned long pages)
{
	unsigned long have, freed;

	mutex_lock(&pool->resize_lock);
	mutex_lock(&pool->lock);
	pool->requested_pages = pages;
	freed = spillway_pool_shrink_locked(pages);
	mutex_unlock(&pool->lock);

	spillway_pool_grow(pages);

	mutex_lock(&pool->lock);
	have = pool->nr_pages;
	mutex_unlock(&pool->lock);
	mutex_unlock(&pool->resize_lock);

	if (freed)
		pr_info("pool: released %lu MiB of free chunks\n",
			freed >> (20 - PAGE_SHIFT));
	if (have != pages)
		pr_warn("pool: asked for %lu KiB, holds %lu KiB%s\n",
			pages << (PAGE_SHIFT - 10), have << (PAGE_SHIFT - 10),
			have > pages ? " (only whole free chunks go)" : " (memory short)");
	return have;
}

/*
 * Gives free chunks back to the kernel down to the floor, under pressure.
 * @trylock: from the OOM notifier, which may run inside an allocation made
 * under @lock.  Returns the pages freed.
 */
unsigned long spillway_pool_release_free(bool trylock)
{
	unsigned long freed;

	if (trylock) {
		if (!mutex_trylock(&pool->lock))
			return 0;
	} else {
		mutex_lock(&pool->lock);
	}
	freed = spillway_pool_shrink_locked(pool->floor_pages);
	pool->released_pages += freed;
	mutex_unlock(&pool->lock);
	return freed;
}

static u64 spillway_pool_user_pages_locked(uid_t uid)
{
	struct spillway_buffer *buf;
	u64 pages = 0;

	list_for_each_entry(buf, &pool->buffers, node)
		if (buf->uid == uid)
			pages += buf->nr_pages;
	return pages;
}

u64 spillway_pool_user_bytes(uid_t uid)
{
	u64 pages;

	mutex_lock(&pool->lock);
	pages = spillway_pool_user_pages_locked(uid);
	mutex_unlock(&pool->lock);
	return pages << PAGE_SHIFT;
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
					 unsigned long n)
{
	unsigned int i = 0, pages = 1U << chunk->order;

	while (n < buf->nr_pages) {
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
 * Fills @buf->pages with @buf->nr_pages pages, from chunks in use first.
 * Returns -EDQUOT over the per-user limit, -ENOMEM when the pool is short.
 */
int spillway_pool_take(struct spillway_buffer *buf)
{
	u64 limit = (u64)spillway_user_limit_mb << (20 - PAGE_SHIFT);
	struct spillway_chunk *chunk;
	unsigned long n = 0;
	int pass;

	mutex_lock(&pool->lock);
	if (limit && spillway_pool_user_pages_locked(buf->uid) + buf->nr_pages > limit) {
		mutex_unlock(&pool->lock);
		return -EDQUOT;
	}
	if (buf->nr_pages > pool->nr_pages - pool->used_pages) {
		mutex_unlock(&pool->lock);
		return -ENOMEM;
	}
	for (pass = 0; pass < 2 && n < buf->nr_pages; pass++) {
		list_for_each_entry(chunk, &pool->chunks, node) {
			/* Pass 0: chunks in use; pass 1: empty chunks. */
			if ((chunk->used > 0) != (pass == 0))
				continue;
			n = spillway_chunk_take(chunk, buf, n);
			if (n == buf->nr_pages)
				break;
		}
	}
	/* The free count above guarantees enough free pages. */
	WARN_ON_ONCE(n != buf->nr_pages);
	pool->used_pages += buf->nr_pages;
	pool->nr_buffers++;
	list_add_tail(&buf->node, &pool->buffers);
	mutex_unlock(&pool->lock);
	return 0;
}

/*
 * Returns @buf's pages to the pool, zeroed.  A page someone else still holds
 * (a pin that outlived every mapping) is never reused: the pool drops its
 * reference and the kernel gets the page when the last holder lets go.
 */
void spillway_pool_put(struct spillway_buffer *buf)
{
	struct spillway_chunk *chunk;
	struct page *page;
	unsigned long i;
	unsigned int idx;

	mutex_lock(&pool->lock);
	for (i = 0; i < buf->nr_pages; i++) {
		page = buf->pages[i];
		chunk = buf->chunks[i];
		chunk->used--;
		if (page_count(page) != 1) {
			chunk->gone++;
			pool->nr_pages--;
			put_page(page);
			pr_warn_ratelimited("pool: page still referenced at release, not reused\n");
		} else {
			clear_highpage(page);
			idx = page - chunk->first;
			__clear_bit(idx, chunk->busy);
		}
		if (!(i % SPILLWAY_CHUNK_PAGES))
			cond_resched();
	}
	pool->used_pages -= buf->nr_pages;
	pool->nr_buffers--;
	list_del(&buf->node);
	mutex_unlock(&pool->lock);
}

void spillway_pool_init(unsigned long pages)
{
	mutex_init(&pool->resize_lock);
	mutex_init(&pool->lock);
	INIT_LIST_HEAD(&pool->chunks);
	INIT_LIST_HEAD(&pool->buffers);
	if (pages)
		spillway_pool_resize(pages);
	pr_info("pool: %lu MiB reserved\n", pool->nr_pages >> (20 - PAGE_SHIFT));
}

void spillway_pool_exit(void)
{
	struct spillway_chunk *chunk, *tmp;

	/* Every dma-buf holds a module reference: no buffer can be live. */
	WARN_ON(pool->used_pages || !list_empty(&pool->buffers));
	list_for_each_entry_safe(chunk, tmp, &pool->chunks, node) {
		list_del(&chunk->node);
		spillway_chunk_free(chunk);
	}
	pool->nr_pages = 0;
}

/* Pool size in bytes, lockless: used to bound a request. */
u64 spillway_pool_bytes(void)
{
	return (u64)READ_ONCE(pool->nr_pages) << PAGE_SHIFT;
}

void spillway_pool_set_floor(unsigned long pages)
{
	mutex_lock(&pool->lock);
	pool->floor_pages = pages;
	mutex_unlock(&pool->lock);
}

void spillway_pool_fill_info(struct spillway_info *info)
{
	mutex_lock(&pool->lock);
	info->pool_bytes = (u64)pool->nr_pages << PAGE_SHIFT;
	info->requested_bytes = (u64)pool->requested_pages << PAGE_SHIFT;
	info->used_bytes = (u64)pool->used_pages << PAGE_SHIFT;
	info->free_bytes = (u64)(pool->nr_pages - pool->used_pages) << PAGE_SHIFT;
	info->floor_bytes = (u64)pool->floor_pages << PAGE_SHIFT;
	info->released_bytes = (u64)pool->released_pages << PAGE_SHIFT;
	info->buffers = pool->nr_buffers;
	mutex_unlock(&pool->lock);
}

/* Writes up to @capacity entries; returns the number of live buffers. */
u32 spillway_pool_list(struct spillway_buffer_info *out, u32 capacity)
{
	struct spillway_buffer *buf;
	u32 n = 0;

	mutex_lock(&pool->lock);
	list_for_each_entry(buf, &pool->buffers, node) {
		if (n < capacity) {
			out[n].id = buf->id;
			out[n].size = (u64)buf->nr_pages << PAGE_SHIFT;
			out[n].pid = buf->pid;
			out[n].uid = buf->uid;
			out[n].reserved = 0;
		}
		n++;
	}
	mutex_unlock(&pool->lock);
	return n;
}
