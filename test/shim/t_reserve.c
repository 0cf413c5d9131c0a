/*
 * The reserve through the shim, on the fake driver, with its defaults (SPILLWAY_RESERVE a tenth
 * of the budget, SPILLWAY_LARGE 32M): "weights" of 64 MiB fill the budget less the reserve, then
 * spill; "activations" of 20 MiB still get VRAM from the reserve until the budget is full; the
 * budget is never passed.  Then the cached free figure: the driver is asked once for a run of
 * allocations far from its free memory, and at every allocation close to it.
 *
 * Card: 4 GiB (FAKE_CUDA_VRAM). Budget: 640 MiB, so the reserve is 64 MiB. Headroom: 16 MiB.
 */
#include "shim_test.h"

#include <cuda.h>
#include <unistd.h>

typedef void (*take_fn)(int, int64_t);

/* Allocations that outlive the first case; all freed at the end of the second. */
static CUdeviceptr w[10], a[4], tiny;

TEST(reserve_keeps_room_for_small_requests)
{
	CUdeviceptr x, y;
	long queries;
	int in_vram = 0;

	queries = fake_calls("cuMemGetInfo_v2");
	for (int i = 0; i < 9; i++)
		in_vram += cuMemAlloc_v2(&w[i], 64 * MiB) == CUDA_SUCCESS &&
			   fake_vram_used(0) == (uint64_t)(i + 1) * 64 * MiB;
	ok(in_vram == 9, "nine 64 MiB weights fill 576 MiB = budget - reserve, in VRAM (%d)",
	   in_vram);
	ok(fake_calls("cuMemGetInfo_v2") - queries <= 3,
	   "far from the card's free memory the driver was asked %ld times for 9 allocations",
	   fake_calls("cuMemGetInfo_v2") - queries);
	ok(stat_of(NULL, "free_cached") >= 6 && stat_of(NULL, "free_queries") >= 1,
	   "the counters show it: %lld cached, %lld asked", stat_of(NULL, "free_cached"),
	   stat_of(NULL, "free_queries"));
	ok(cuMemAlloc_v2(&w[9], 64 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == 576 * MiB &&
		   stat_of("\"device\":0", "spill_bytes") == (long long)(64 * MiB),
	   "the tenth would eat into the reserve: spilled");
	for (int i = 0; i < 3; i++)
		in_vram += cuMemAlloc_v2(&a[i], 20 * MiB) == CUDA_SUCCESS &&
			   fake_vram_used(0) == 576 * MiB + (uint64_t)(i + 1) * 20 * MiB;
	ok(in_vram == 12, "three 20 MiB activations after them: VRAM, from the reserve");
	ok(cuMemAlloc_v2(&a[3], 20 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == 636 * MiB &&
		   stat_of("\"device\":0", "spill_bytes") == (long long)(84 * MiB),
	   "a fourth would pass the whole budget: spilled");
	ok(cuMemAlloc_v2(&tiny, 512 << 10) == CUDA_SUCCESS &&
		   fake_vram_used(0) == 636 * MiB + (512 << 10),
	   "below SPILLWAY_MIN_SPILL: VRAM, as always");
	ok(cuMemFree_v2(w[0]) == CUDA_SUCCESS && cuMemAlloc_v2(&x, 64 * MiB) == CUDA_SUCCESS &&
		   fake_vram_used(0) == 574 * MiB + (512 << 10) && stat_of(NULL, "splits") == 1,
	   "after a weight is freed a new large request gets only what budget - reserve leaves "
	   "(a 2 MiB granule; the rest is reserve now) and spills the rest: a split");
	ok(cuMemFree_v2(a[0]) == CUDA_SUCCESS && cuMemFree_v2(a[1]) == CUDA_SUCCESS,
	   "two activations freed");
	setenv("FAKE_CUDA_FAIL", "cuMemHostRegister_v2,cuMemCreate", 1);
	ok(cuMemAlloc_v2(&y, 64 * MiB) == CUDA_SUCCESS &&
		   fake_vram_used(0) == 598 * MiB + (512 << 10),
	   "when spilling fails, a large request may use the reserve rather than fail");
	unsetenv("FAKE_CUDA_FAIL");
	ok(stat_of("\"device\":0", "vram_peak") <= (long long)(640 * MiB + (512 << 10)),
	   "VRAM peak %lld stayed within the budget (plus the sub-threshold piece)",
	   stat_of("\"device\":0", "vram_peak"));
	ok(cuMemFree_v2(y) == CUDA_SUCCESS && cuMemFree_v2(x) == CUDA_SUCCESS, "freed");
}

TEST(free_figure_asked_near_the_card_limit)
{
	take_fn take = (take_fn)dlsym(RTLD_DEFAULT, "fake_vram_take");
	CUdeviceptr x, y;
	uint64_t base;
	long queries;
	int spilled = 0;

	if (!ok(take != NULL, "the fake driver's fake_vram_take"))
		return;
	/* Another process takes most of the card: the shim's cached figure is stale. */
	take(0, (int64_t)(3400 * MiB));
	base = fake_vram_used(0);
	usleep(150 * 1000); /* past FREE_CACHE_MAX_AGE_NS */
	queries = fake_calls("cuMemGetInfo_v2");
	ok(cuMemAlloc_v2(&x, 20 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == base + 20 * MiB &&
		   fake_calls("cuMemGetInfo_v2") == queries + 1,
	   "near the card's free memory (%llu MiB): the driver is asked, and 20 MiB fits",
	   (unsigned long long)((4096 * MiB - base) >> 20));
	ok(cuMemAlloc_v2(&y, 20 * MiB) == CUDA_SUCCESS &&
		   fake_calls("cuMemGetInfo_v2") == queries + 2,
	   "and asked again at the next allocation");
	ok(cuMemFree_v2(x) == CUDA_SUCCESS && cuMemFree_v2(y) == CUDA_SUCCESS, "freed");
	take(0, (int64_t)(130 * MiB)); /* 33.5 MiB left on the card: less than 20 MiB + headroom */
	ok(cuMemAlloc_v2(&x, 20 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == base + 130 * MiB,
	   "when the card's free memory less the headroom cannot hold it: spilled");
	ok(cuMemFree_v2(x) == CUDA_SUCCESS, "freed");
	take(0, -(int64_t)(3530 * MiB));
	for (int i = 1; i < 10; i++)
		spilled += cuMemFree_v2(w[i]) != CUDA_SUCCESS;
	spilled += cuMemFree_v2(a[2]) != CUDA_SUCCESS;
	spilled += cuMemFree_v2(a[3]) != CUDA_SUCCESS;
	spilled += cuMemFree_v2(tiny) != CUDA_SUCCESS;
	ok(spilled == 0 && fake_vram_used(0) == 0 && stat_of("\"device\":0", "vram_bytes") == 0 &&
		   stat_of(NULL, "spill_bytes") == 0,
	   "everything freed: the accounts are zero");
}

int main(void)
{
	if (!shim_setup("SPILLWAY_VRAM_LIMIT=640M", "SPILLWAY_HEADROOM=16M", "SPILLWAY_CHUNK=32M",
			"SPILLWAY_BACKEND=host", "FAKE_CUDA_VRAM=4G", NULL))
		return done_testing();
	return tap_run();
}
