/*
 * What this process uses: VRAM and spilled bytes per device with their peaks, managed bytes,
 * the atomic take of the VRAM budget, and a cache of the driver's free VRAM figure.
 * Per-device atomics, no lock; peaks are kept with compare-and-swap.
 *
 * The free figure: asking the driver costs about 6 us (measured on
 * an H100), more than the rest of an allocation; our own allocations and frees move the cached
 * figure by their size (account_vram calls free_cache_note), so it only goes stale through memory
 * we do not see: other processes, the driver's own.  policy_free_cached_ok decides when the
 * cached figure may stand in for the driver's: when it is recent and far from the request.
 *
 * Lock-free: each field is an atomic of its own.  A reader may see a figure and a time stamp
 * from two different refreshes; either is at most FREE_CACHE_MAX_AGE_NS old, and a wrong
 * "fits" ends as the driver's OUT_OF_MEMORY, which placement.c turns into a spill.
 */
#include "core.h"

struct dev_usage {
	_Atomic uint64_t vram_used, vram_peak;
	_Atomic uint64_t spill_used, spill_peak;
	_Atomic int seen;
};

static struct dev_usage devs[MAX_DEVICES];
static _Atomic uint64_t spill_now[SPILL_KINDS], spill_ever[SPILL_KINDS];
static _Atomic uint64_t spill_total_now, spill_total_peak, managed_now;
static _Atomic uint64_t lent_now, lent_peak;

struct free_cache {
	_Atomic int64_t free;	   /* driver's figure at the last query, less our growth since */
	_Atomic uint64_t total;	   /* the card's total, 0 until the first query */
	_Atomic uint64_t stamp_ns; /* when the driver was last asked, 0 = never */
};

static struct free_cache caches[MAX_DEVICES];

/* Our VRAM on @dev grew by @delta: the driver's free figure shrank by as much. */
static void free_cache_note(int dev, int64_t delta)
{
	if (dev >= 0 && dev < MAX_DEVICES)
		atomic_fetch_sub_explicit(&caches[dev].free, delta, memory_order_relaxed);
}

static void raise_peak(_Atomic uint64_t *peak, uint64_t value)
{
	uint64_t old = atomic_load_explicit(peak, memory_order_relaxed);

	while (value > old && !atomic_compare_exchange_weak(peak, &old, value))
		;
}

static void add(_Atomic uint64_t *v, int64_t delta, _Atomic uint64_t *peak)
{
	uint64_t now = atomic_fetch_add(v, (uint64_t)delta) + (uint64_t)delta;

	if (peak && delta > 0)
		raise_peak(peak, now);
}

void account_vram(int dev, int64_t delta)
{
	if (dev < 0 || dev >= MAX_DEVICES)
		return;
	devs[dev].seen = 1;
	add(&devs[dev].vram_used, delta, &devs[dev].vram_peak);
	free_cache_note(dev, delta);
}

int account_vram_take(int dev, uint64_t size, uint64_t ceiling)
{
	uint64_t old;

	if (dev < 0 || dev >= MAX_DEVICES)
		return 1;
	devs[dev].seen = 1;
	old = atomic_load(&devs[dev].vram_used);
	do {
		if (sat_add(old, size) > ceiling)
			return 0;
	} while (!atomic_compare_exchange_weak(&devs[dev].vram_used, &old, old + size));
	raise_peak(&devs[dev].vram_peak, old + size);
	free_cache_note(dev, (int64_t)size);
	return 1;
}

void account_spill(int dev, enum spill_kind kind, int64_t delta)
{
	if (dev >= 0 && dev < MAX_DEVICES) {
		devs[dev].seen = 1;
		add(&devs[dev].spill_used, delta, &devs[dev].spill_peak);
	}
	add(&spill_now[kind], delta, NULL);
	if (delta > 0)
		atomic_fetch_add(&spill_ever[kind], (uint64_t)delta);
	add(&spill_total_now, delta, &spill_total_peak);
}

void account_managed(int64_t delta)
{
	add(&managed_now, delta, NULL);
}

void account_lent(int64_t delta)
{
	add(&lent_now, delta, &lent_peak);
}

uint64_t account_vram_used(int dev)
{
	return dev >= 0 && dev < MAX_DEVICES ? atomic_load(&devs[dev].vram_used) : 0;
}

uint64_t account_spill_used(void)
{
	return atomic_load(&spill_total_now);
}

int account_device(int dev, struct account_device *out)
{
	struct dev_usage *u;

	if (dev < 0 || dev >= MAX_DEVICES || !atomic_load(&devs[dev].seen))
		return 0;
	u = &devs[dev];
	out->vram_used = atomic_load(&u->vram_used);
	out->vram_peak = atomic_load(&u->vram_peak);
	out->spill_used = atomic_load(&u->spill_used);
	out->spill_peak = atomic_load(&u->spill_peak);
	return 1;
}

void account_totals(struct account_totals *out)
{
	out->spill_used = atomic_load(&spill_total_now);
	out->spill_peak = atomic_load(&spill_total_peak);
	out->managed = atomic_load(&managed_now);
	out->lent = atomic_load(&lent_now);
	out->lent_peak = atomic_load(&lent_peak);
	for (int k = 0; k < SPILL_KINDS; k++) {
		out->spill_now[k] = atomic_load(&spill_now[k]);
		out->spill_ever[k] = atomic_load(&spill_ever[k]);
	}
}

uint64_t account_vram_free(const struct spw_config *c, int dev, uint64_t size, uint64_t *total)
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
		counter_inc(CNT_free_cached);
		return (uint64_t)cached;
	}
	/* cuMemGetInfo answers for the current context's device only. */
	if (!get_info || ctx_current_dev(&ctx, &cur) != 0 || cur != dev ||
	    get_info(&free_b, &total_b) != CUDA_SUCCESS)
		return UINT64_MAX;
	counter_inc(CNT_free_queries);
	atomic_store_explicit(&f->free, (int64_t)free_b, memory_order_relaxed);
	atomic_store_explicit(&f->total, total_b, memory_order_relaxed);
	atomic_store_explicit(&f->stamp_ns, now ? now : 1, memory_order_release);
	*total = total_b;
	return free_b;
}

const char *spill_kind_name(enum spill_kind kind)
{
	static const char *const names[SPILL_KINDS] = { "pool", "host", "host_numa" };

	return kind < SPILL_KINDS ? names[kind] : "?";
}
