/*
 * The driver's free VRAM per device, cached.  Asking the driver costs about 6 us (measured on
 * an H100), more than the rest of an allocation; our own allocations and frees move the cached
 * figure by their size (stats_vram calls vram_free_note), so it only goes stale through memory
 * we do not see: other processes, the driver's own.  policy_free_cached_ok decides when the
 * cached figure may stand in for the driver's: when it is recent and far from the request.
 *
 * Lock-free: each field is an atomic of its own.  A reader may see a figure and a time stamp
 * from two different refreshes; either is at most FREE_CACHE_MAX_AGE_NS old, and a wrong
 * "fits" ends as the driver's OUT_OF_MEMORY, which alloc.c turns into a spill.
 */
#include "shim.h"

struct free_cache {
	_Atomic int64_t free;		/* driver's figure at the last query, less our growth since */
	_Atomic uint64_t total;		/* the card's total, 0 until the first query */
	_Atomic uint64_t stamp_ns;	/* when the driver was last asked, 0 = never */
};

static struct free_cache caches[MAX_DEVICES];

void vram_free_note(int dev, int64_t delta)
{
	if (dev >= 0 && dev < MAX_DEVICES)
		atomic_fetch_sub_explicit(&caches[dev].free, delta, memory_order_relaxed);
}

uint64_t vram_free(const struct spw_config *c, int dev, uint64_t size, uint64_t *total)
{
	real_cuMemGetInfo_v2_t get_info = REAL(cuMemGetInfo_v2);
	struct free_cache *f;
	size_t free_b, total_b;
	uint64_t stamp, now;
	int64_t cached;
	CUcontext ctx;
	int cur;

	*total = 0;
	if (dev < 0 || dev >= MAX_DEVICES)
		return UINT64_MAX;
	f = &caches[dev];
	stamp = atomic_load_explicit(&f->stamp_ns, memory_order_acquire);
	cached = atomic_load_explicit(&f->free, memory_order_relaxed);
	*total = atomic_load_explicit(&f->total, memory_order_relaxed);
	now = now_coarse_ns();
	if (stamp && cached > 0 &&
	    policy_free_cached_ok(c, size, (uint64_t)cached, *total, sat_sub(now, stamp))) {
		stats_count(CNT_free_cached);
		return (uint64_t)cached;
	}
	/* cuMemGetInfo answers for the current context's device only. */
	if (!get_info || ctx_current_dev(&ctx, &cur) != 0 || cur != dev ||
	    get_info(&free_b, &total_b) != CUDA_SUCCESS)
		return UINT64_MAX;
	stats_count(CNT_free_queries);
	atomic_store_explicit(&f->free, (int64_t)free_b, memory_order_relaxed);
	atomic_store_explicit(&f->total, total_b, memory_order_relaxed);
	atomic_store_explicit(&f->stamp_ns, now ? now : 1, memory_order_release);
	*total = total_b;
	return free_b;
}
