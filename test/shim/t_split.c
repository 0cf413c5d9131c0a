/*
 * Split placement through the shim on the fake driver: a request larger than the VRAM left to
 * it gets that VRAM first and host-NUMA memory after it, behind one device pointer.  Budget
 * 64 MiB, reserve 8 MiB, requests of 4 MiB and more are large, arenas of 16 MiB; the fake
 * GPU's host NUMA node is 1 of 2.
 */
#include "shim_test.h"

#include <stdint.h>
#include <unistd.h>

static CUcontext ctx;
static CUdeviceptr big, extra;

static uint64_t host_numa_used(int node)
{
	uint64_t (*fn)(int) = (uint64_t(*)(int))dlsym(RTLD_DEFAULT, "fake_host_numa_used");

	return fn ? fn(node) : (uint64_t)-1;
}

static long host_handles(void)
{
	long (*fn)(void) = (long (*)(void))dlsym(RTLD_DEFAULT, "fake_host_handles");

	return fn ? fn() : -1;
}

TEST(a_buffer_larger_than_the_budget_is_split)
{
	ok(cuMemAlloc_v2(&big, 200 * MiB) == CUDA_SUCCESS && stat_of(NULL, "splits") == 1,
	   "cuMemAlloc of 200 MiB under a 64 MiB budget succeeds as a split");
	ok(fake_vram_used(0) == 56 * MiB &&
		   stat_of("\"device\":0", "vram_bytes") == (long long)(56 * MiB),
	   "VRAM part: the budget less the reserve, 56 MiB (driver %llu, shim %lld)",
	   (unsigned long long)fake_vram_used(0), stat_of("\"device\":0", "vram_bytes"));
	ok(host_numa_used(1) == 144 * MiB && host_numa_used(0) == 0,
	   "host part: the other 144 MiB, on the GPU's own NUMA node 1 (HOST_NUMA_ID)");
	ok(stat_of("\"host_numa\"", "bytes") == (long long)(144 * MiB) &&
		   stat_of("\"device\":0", "spill_bytes") == (long long)(144 * MiB),
	   "the statistics count the host part as spilled, host_numa");
	memset((void *)big, 0x5c, 200 * MiB);
	ok(filled(big, 200 * MiB, 0x5c) && filled(big + 55 * MiB, 2 * MiB, 0x5c),
	   "one pointer: writes and reads run across the VRAM/host boundary");
	ok(logged("spill 209715200 bytes on device 0: 58720256 in VRAM, 150994944 in host memory "
		  "(host NUMA node 1): past SPILLWAY_VRAM_LIMIT"),
	   "one info line: size, VRAM part, host part, backend, reason");
}

TEST(queries_answer_for_the_whole_allocation)
{
	CUdeviceptr base = 0;
	CUcontext owner = NULL;
	unsigned int type = 0;
	size_t size = 0;
	int ordinal = -1;

	ok(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, big + 150 * MiB) ==
			   CUDA_SUCCESS &&
		   type == CU_MEMORYTYPE_DEVICE,
	   "MEMORY_TYPE in the host part is DEVICE (the driver says HOST)");
	ok(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, big + 100) ==
			   CUDA_SUCCESS &&
		   type == CU_MEMORYTYPE_DEVICE,
	   "and in the VRAM part");
	ok(cuPointerGetAttribute(&base, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, big + 150 * MiB) ==
			   CUDA_SUCCESS &&
		   base == big &&
		   cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, big + 10) ==
			   CUDA_SUCCESS &&
		   size == 200 * MiB,
	   "RANGE_START/RANGE_SIZE are the whole allocation from either part");
	ok(cuMemGetAddressRange_v2(&base, &size, big + 199 * MiB) == CUDA_SUCCESS && base == big &&
		   size == 200 * MiB,
	   "cuMemGetAddressRange of the host part is the whole allocation (the driver's is 12 GiB off)");
	ok(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, big + 150 * MiB) ==
			   CUDA_SUCCESS &&
		   ordinal == 0 &&
		   cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, big) ==
			   CUDA_SUCCESS &&
		   owner == ctx,
	   "DEVICE_ORDINAL and CONTEXT are the allocating ones");
}

TEST(after_an_oversized_split_the_reserve_takes_any_size)
{
	size_t free_b = 0, total_b = 0;

	ok(cuMemAlloc_v2(&extra, 6 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == 62 * MiB,
	   "a large 6 MiB request after it goes to VRAM, into the reserve (working memory)");
	ok(cuMemGetInfo_v2(&free_b, &total_b) == CUDA_SUCCESS && total_b == 64 * MiB &&
		   free_b == 2 * MiB,
	   "the default report is physical: total = budget, free = what is left (2 MiB)");
}

TEST(free_returns_both_parts)
{
	ok(cuMemFree_v2(big) == CUDA_SUCCESS, "cuMemFree of the split pointer succeeds");
	ok(fake_vram_used(0) == 6 * MiB &&
		   stat_of("\"device\":0", "vram_bytes") == (long long)(6 * MiB),
	   "its VRAM part is back (6 MiB left in use)");
	ok(host_numa_used(1) == 0 && host_handles() == 0 && stat_of(NULL, "spill_bytes") == 0,
	   "its host part is released: no host handle, nothing spilled");
	ok(fake_calls("cuCtxSynchronize") >= 1, "cuMemFree synchronized the context first");
	ok(cuMemFree_v2(big) == CUDA_ERROR_INVALID_VALUE,
	   "a second free reaches the driver, which refuses it");
}

TEST(the_reserve_closes_again_and_splits_are_limited_by_it)
{
	CUdeviceptr a, b, c;

	ok(cuMemAlloc_v2(&a, 40 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == 46 * MiB,
	   "40 MiB fits the budget less the reserve: VRAM");
	ok(cuMemAlloc_v2(&b, 30 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == 56 * MiB &&
		   host_numa_used(1) == 20 * MiB && stat_of(NULL, "splits") == 2,
	   "30 MiB more: 10 MiB in VRAM up to budget - reserve, 20 MiB in host memory");
	ok(cuMemAlloc_v2(&c, 6 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == 56 * MiB &&
		   stat_of("\"host\"", "bytes") == (long long)(6 * MiB),
	   "a split smaller than the budget keeps the reserve closed: a large 6 MiB spills whole");
	ok(cuMemFree_v2(c) == CUDA_SUCCESS && cuMemFree_v2(b) == CUDA_SUCCESS &&
		   cuMemFree_v2(a) == CUDA_SUCCESS && fake_vram_used(0) == 6 * MiB &&
		   host_handles() == 0,
	   "freed");
}

TEST(up_to_an_arena_a_spill_stays_whole)
{
	CUdeviceptr a, b;

	ok(cuMemAlloc_v2(&a, 48 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == 54 * MiB,
	   "48 MiB in VRAM");
	ok(cuMemAlloc_v2(&b, 12 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == 54 * MiB &&
		   stat_of("\"host\"", "bytes") == (long long)(12 * MiB) &&
		   stat_of(NULL, "splits") == 2,
	   "12 MiB (not above SPILLWAY_CHUNK) with 2 MiB of room: spilled whole into an arena");
	ok(cuMemFree_v2(b) == CUDA_SUCCESS && cuMemFree_v2(a) == CUDA_SUCCESS, "freed");
}

TEST(stream_ordered_and_pitch_allocations_split_too)
{
	CUdeviceptr q, r;
	size_t pitch = 0;
	long syncs = fake_calls("cuStreamSynchronize");

	ok(cuMemAllocAsync(&q, 100 * MiB, NULL) == CUDA_SUCCESS && stat_of(NULL, "splits") == 3 &&
		   fake_vram_used(0) == 56 * MiB,
	   "cuMemAllocAsync of 100 MiB: a split, 50 MiB of it in VRAM (up to budget - reserve)");
	ok(cuMemFreeAsync(q, NULL) == CUDA_SUCCESS &&
		   fake_calls("cuStreamSynchronize") == syncs + 1 && fake_vram_used(0) == 6 * MiB &&
		   host_handles() == 0,
	   "cuMemFreeAsync waits for its stream, then releases both parts");
	ok(cuMemAllocPitch_v2(&r, &pitch, 1000, 100000, 4) == CUDA_SUCCESS && pitch == 1024 &&
		   stat_of(NULL, "splits") == 4 && fake_vram_used(0) == 56 * MiB,
	   "cuMemAllocPitch of 1000 x 100000: pitch 1024, a split of 97.7 MiB");
	memset((void *)r, 0x11, 1024 * 100000);
	ok(filled(r, 1024 * 100000, 0x11), "the pitched allocation holds data across the boundary");
	ok(cuMemFree_v2(r) == CUDA_SUCCESS && fake_vram_used(0) == 6 * MiB && host_handles() == 0,
	   "freed");
}

TEST(a_failed_host_part_rolls_back_and_spills_whole)
{
	CUdeviceptr q;

	setenv("FAKE_CUDA_HOST_NUMA_LIMIT", "32M", 1);
	ok(cuMemAlloc_v2(&q, 100 * MiB) == CUDA_SUCCESS && stat_of(NULL, "splits") == 4 &&
		   fake_vram_used(0) == 6 * MiB && host_handles() == 0 &&
		   stat_of("\"host\"", "bytes") == (long long)(100 * MiB),
	   "host NUMA memory short: the VRAM part is given back, the request spilled whole");
	unsetenv("FAKE_CUDA_HOST_NUMA_LIMIT");
	ok(cuMemFree_v2(q) == CUDA_SUCCESS && cuMemFree_v2(extra) == CUDA_SUCCESS &&
		   fake_vram_used(0) == 0 && stat_of(NULL, "spill_bytes") == 0 &&
		   stat_of("\"device\":0", "vram_bytes") == 0,
	   "everything freed: the accounts are zero");
}

int main(void)
{
	int rc;

	shim_log_to("t_split");
	ctx = shim_setup("SPILLWAY_VRAM_LIMIT=64M", "SPILLWAY_RESERVE=8M", "SPILLWAY_LARGE=4M",
			 "SPILLWAY_CHUNK=16M", "SPILLWAY_HEADROOM=16M", "SPILLWAY_BACKEND=host",
			 "FAKE_CUDA_VRAM=1G", "FAKE_CUDA_NUMA_NODES=2", "FAKE_CUDA_HOST_NUMA_ID=1",
			 NULL);
	if (!ctx)
		return done_testing();
	rc = tap_run();
	shim_log_remove();
	return rc;
}
