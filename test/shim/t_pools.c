/*
 * Stream-ordered pools through the shim, on the fake driver (pools keep freed memory up to
 * their release threshold, as the H100's do): a request the pool's cached memory can serve is
 * not spilled; host pools and pools with shareable handles are left to the driver; the
 * stream's device, not the current one, owns an async allocation.
 *
 * Cards: 2 x 1 GiB (FAKE_CUDA_DEVICES, FAKE_CUDA_VRAM). Budget: 768 MiB, no reserve, no
 * headroom. Report: physical.
 */
#include "shim_test.h"

#include <cuda.h>

typedef void (*take_fn)(int, int64_t);

static CUcontext ctx0;

static uint64_t pool_attr(CUmemoryPool pool, CUmemPool_attribute attr)
{
	cuuint64_t v = 0;

	cuMemPoolGetAttribute(pool, attr, &v);
	return v;
}

TEST(cached_pool_memory_serves_before_spilling)
{
	take_fn take = (take_fn)dlsym(RTLD_DEFAULT, "fake_vram_take");
	cuuint64_t max = UINT64_MAX, zero = 0;
	CUmemoryPool pool;
	CUstream s;
	CUdeviceptr p, big;
	long long spills;

	cuStreamCreate(&s, 0);
	cuDeviceGetDefaultMemPool(&pool, 0);
	cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &max);
	ok(cuMemAllocAsync(&p, 512 * MiB, s) == CUDA_SUCCESS &&
		   cuMemFreeAsync(p, s) == CUDA_SUCCESS && cuStreamSynchronize(s) == CUDA_SUCCESS,
	   "512 MiB allocated and freed into the default pool (release threshold: all)");
	ok(pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 512 * MiB,
	   "the pool holds it (%llu MiB)",
	   (unsigned long long)(pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) >> 20));
	/* Another process takes the rest of the card: 64 MiB stay free. */
	take(0, (int64_t)(448 * MiB));
	spills = stat_of(NULL, "spills");
	ok(cuMemAllocAsync(&p, 512 * MiB, s) == CUDA_SUCCESS && stat_of(NULL, "spills") == spills &&
		   pool_attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT) == 512 * MiB,
	   "with 64 MiB free on the card a 512 MiB cuMemAllocAsync comes from the pool, not spilled");
	ok(stat_of(NULL, "pool_reuses") == 1, "counted as a pool reuse");
	ok(cuMemAllocAsync(&big, 256 * MiB, s) == CUDA_SUCCESS &&
		   stat_of(NULL, "spills") == spills + 1,
	   "a request the pool cannot hold any more still spills");
	cuMemFreeAsync(big, s);
	cuMemFreeAsync(p, s);
	cuStreamSynchronize(s);
	cuMemPoolTrimTo(pool, 0);
	cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &zero);
	take(0, -(int64_t)(448 * MiB));
	ok(stat_of("\"device\":0", "vram_bytes") == 0, "the VRAM account is back to 0");
	cuStreamDestroy_v2(s);
}

static CUmemoryPool make_pool(CUmemLocationType type, CUmemAllocationHandleType handles)
{
	CUmemPoolProps props = { 0 };
	CUmemoryPool pool = NULL;

	props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
	props.location.type = type;
	props.location.id = 0;
	props.handleTypes = handles;
	return cuMemPoolCreate(&pool, &props) == CUDA_SUCCESS ? pool : NULL;
}

TEST(host_pool_left_alone)
{
	CUmemoryPool pool = make_pool(CU_MEM_LOCATION_TYPE_HOST_NUMA, CU_MEM_HANDLE_TYPE_NONE);
	long long vram = stat_of("\"device\":0", "vram_bytes"), spills = stat_of(NULL, "spills");
	unsigned int type = 0;
	CUdeviceptr p;
	CUstream s;

	cuStreamCreate(&s, 0);
	ok(pool != NULL, "a pool on host NUMA memory");
	ok(cuMemAllocFromPoolAsync(&p, 900 * MiB, pool, s) == CUDA_SUCCESS,
	   "900 MiB from it (more than the budget)");
	ok(stat_of("\"device\":0", "vram_bytes") == vram && stat_of(NULL, "spills") == spills,
	   "neither counted as VRAM nor spilled: the driver's host memory");
	ok(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p) == CUDA_SUCCESS &&
		   type == CU_MEMORYTYPE_HOST,
	   "the driver calls it host memory");
	cuMemFreeAsync(p, s);
	cuStreamSynchronize(s);
	ok(cuMemPoolDestroy(pool) == CUDA_SUCCESS, "destroyed");
	cuStreamDestroy_v2(s);
}

TEST(exportable_pool_stays_in_vram)
{
	CUmemoryPool pool =
		make_pool(CU_MEM_LOCATION_TYPE_DEVICE, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
	CUmemPoolPtrExportData data;
	CUdeviceptr fill, p, q;
	long long spills;
	CUstream s;

	cuStreamCreate(&s, 0);
	ok(pool != NULL, "a device pool with POSIX_FD handles");
	ok(cuMemAlloc_v2(&fill, 700 * MiB) == CUDA_SUCCESS &&
		   stat_of("\"device\":0", "vram_bytes") == (long long)(700 * MiB),
	   "700 MiB of the 768 MiB budget used");
	spills = stat_of(NULL, "spills");
	ok(cuMemAllocFromPoolAsync(&p, 128 * MiB, pool, s) == CUDA_SUCCESS &&
		   stat_of(NULL, "spills") == spills &&
		   stat_of("\"device\":0", "vram_bytes") == (long long)(828 * MiB),
	   "128 MiB from it stay in VRAM, over the budget, counted");
	ok(cuMemPoolExportPointer(&data, p) == CUDA_SUCCESS, "and can be exported");
	ok(cuMemAllocAsync(&q, 128 * MiB, s) == CUDA_SUCCESS &&
		   stat_of(NULL, "spills") == spills + 1,
	   "the same request on the default pool spills");
	{
		CUmemoryPool def;
		CUdeviceptr r;

		cuDeviceGetDefaultMemPool(&def, 0);
		ok(cuMemAllocFromPoolAsync(&r, 128 * MiB, def, s) == CUDA_SUCCESS &&
			   stat_of(NULL, "spills") == spills + 2,
		   "and so does one from the default pool named explicitly");
		cuMemFreeAsync(r, s);
	}
	cuMemFreeAsync(q, s);
	cuMemFreeAsync(p, s);
	cuStreamSynchronize(s);
	cuMemFree_v2(fill);
	cuMemPoolDestroy(pool);
	ok(stat_of("\"device\":0", "vram_bytes") == 0, "all returned");
	cuStreamDestroy_v2(s);
}

TEST(async_allocation_belongs_to_the_streams_device)
{
	CUcontext ctx1;
	CUstream s1;
	CUdeviceptr p;

	ok(cuCtxCreate_v4(&ctx1, NULL, 0, 1) == CUDA_SUCCESS &&
		   cuStreamCreate(&s1, 0) == CUDA_SUCCESS,
	   "a stream of a context on device 1");
	cuCtxSetCurrent(ctx0);
	ok(cuMemAllocAsync(&p, 8 * MiB, s1) == CUDA_SUCCESS &&
		   stat_of("\"device\":1", "vram_bytes") == (long long)(8 * MiB) &&
		   stat_of("\"device\":0", "vram_bytes") == 0,
	   "8 MiB on it with device 0 current: charged to device 1");
	ok(cuMemFreeAsync(p, s1) == CUDA_SUCCESS && stat_of("\"device\":1", "vram_bytes") == 0,
	   "freed");
	cuStreamDestroy_v2(s1);
}

TEST(free_synchronizes_the_owners_context)
{
	long (*syncs)(CUcontext) = (long (*)(CUcontext))dlsym(RTLD_DEFAULT, "fake_ctx_syncs");
	CUcontext ctx1;
	CUdeviceptr fill, p;
	long mine, other;

	cuCtxSetCurrent(ctx0);
	ok(cuMemAlloc_v2(&fill, 760 * MiB) == CUDA_SUCCESS &&
		   cuMemAlloc_v2(&p, 64 * MiB) == CUDA_SUCCESS &&
		   stat_of("\"device\":0", "spill_bytes") == (long long)(64 * MiB),
	   "64 MiB spilled in the context of device 0");
	cuCtxCreate_v4(&ctx1, NULL, 0, 1);
	mine = syncs(ctx0);
	other = syncs(ctx1);
	ok(cuMemFree_v2(p) == CUDA_SUCCESS && syncs(ctx0) == mine + 1 && syncs(ctx1) == other,
	   "cuMemFree from device 1's context synchronizes device 0's (the owner), not its own");
	cuCtxSetCurrent(ctx0);
	cuMemFree_v2(fill);
}

int main(void)
{
	ctx0 = shim_setup("FAKE_CUDA_DEVICES=2", "FAKE_CUDA_VRAM=1G", "SPILLWAY_VRAM_LIMIT=768M",
			  "SPILLWAY_RESERVE=0", "SPILLWAY_HEADROOM=0", "SPILLWAY_BACKEND=host",
			  "SPILLWAY_REPORT=physical", NULL);
	if (!ctx0)
		return done_testing();
	return tap_run();
}
