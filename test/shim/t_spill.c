/*
 * Spilling on the fake driver: placement against SPILLWAY_VRAM_LIMIT, one registration per
 * arena, pointer queries answered from the registry, stream-ordered frees, VMM on host NUMA,
 * fault injection, and context teardown.
 *
 * Card: 256 MiB (FAKE_CUDA_VRAM). Budget: 64 MiB. Chunk: 32 MiB. Spill cap: 512 MiB. No reserve
 * (SPILLWAY_RESERVE=0, placement as before the reserve existed; t_reserve tests the reserve).
 */
#include "shim_test.h"

#include <cuda.h>

CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream);

typedef void (*stream_fn)(CUstream);

static int overlaps(CUdeviceptr a, size_t alen, CUdeviceptr b, size_t blen)
{
	return a < b + blen && b < a + alen;
}

static void check_vmm(void)
{
	CUmemAllocationProp prop = { 0 }, got = { 0 };
	CUmemAccessDesc access = { 0 };
	CUmemGenericAllocationHandle h, vram_h, again;
	CUdeviceptr va, base = 0;
	size_t size = 0;
	unsigned int type = 0;
	long long vram_before = stat_of("\"device\":0", "vram_bytes");

	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = 0;
	ok(cuMemCreate(&h, 32 * MiB, &prop, 0) == CUDA_SUCCESS,
	   "cuMemCreate(32 MiB) over budget succeeds");
	ok(stat_of("\"host_numa\"", "bytes") == (long long)(32 * MiB) &&
		   stat_of("\"device\":0", "vram_bytes") == vram_before,
	   "on host NUMA memory, not VRAM (%lld)", stat_of("\"host_numa\"", "bytes"));
	ok(cuMemGetAllocationPropertiesFromHandle(&got, h) == CUDA_SUCCESS &&
		   got.location.type == CU_MEM_LOCATION_TYPE_DEVICE && got.location.id == 0 &&
		   got.requestedHandleTypes == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR,
	   "its properties report the device location asked for, and keep POSIX_FD");
	ok(cuMemAddressReserve(&va, 64 * MiB, 0, 0, 0) == CUDA_SUCCESS &&
		   cuMemMap(va, 32 * MiB, 0, h, 0) == CUDA_SUCCESS,
	   "it maps into a reserved range");
	access.location = prop.location;
	access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	ok(cuMemSetAccess(va, 32 * MiB, &access, 1) == CUDA_SUCCESS,
	   "cuMemSetAccess for the device");
	memset((void *)va, 0x5a, 32 * MiB);
	ok(filled(va, 32 * MiB, 0x5a), "the mapping holds data");
	ok(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, va + 100) ==
			   CUDA_SUCCESS &&
		   type == CU_MEMORYTYPE_DEVICE,
	   "a pointer into it is a DEVICE pointer (driver says HOST)");
	ok(cuMemGetAddressRange_v2(&base, &size, va + 5 * MiB) == CUDA_SUCCESS && base == va &&
		   size == 32 * MiB,
	   "its address range is the mapping (the driver's is 12 GiB off)");
	ok(cuMemRetainAllocationHandle(&again, (void *)(va + 4096)) == CUDA_SUCCESS && again == h &&
		   cuMemRelease(again) == CUDA_SUCCESS,
	   "retain/release of the handle by address");
	ok(cuMemRelease(h) == CUDA_SUCCESS &&
		   stat_of("\"host_numa\"", "bytes") == (long long)(32 * MiB),
	   "after cuMemRelease it stays counted: it is still mapped");
	ok(cuMemUnmap(va, 32 * MiB) == CUDA_SUCCESS && stat_of("\"host_numa\"", "bytes") == 0,
	   "after cuMemUnmap it is gone");
	ok(cuMemAddressFree(va, 64 * MiB) == CUDA_SUCCESS, "the range is freed");
	setenv("FAKE_CUDA_NO_HOST_NUMA", "1", 1);
	ok(cuMemCreate(&h, 4 * MiB, &prop, 0) == CUDA_SUCCESS &&
		   stat_of("\"host_numa\"", "bytes") == 0 &&
		   stat_of("\"device\":0", "vram_bytes") == vram_before + (long long)(4 * MiB) &&
		   cuMemGetAllocationPropertiesFromHandle(&got, h) == CUDA_SUCCESS &&
		   got.requestedHandleTypes == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR,
	   "a driver without host NUMA: POSIX_FD handles stay in VRAM, never dropped");
	ok(cuMemRelease(h) == CUDA_SUCCESS && stat_of("\"device\":0", "vram_bytes") == vram_before,
	   "and released");
	prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
	ok(cuMemCreate(&h, 4 * MiB, &prop, 0) == CUDA_SUCCESS &&
		   stat_of("\"host_numa\"", "bytes") == (long long)(4 * MiB),
	   "without handle types: host memory (location HOST) instead");
	ok(cuMemRelease(h) == CUDA_SUCCESS && stat_of("\"host_numa\"", "bytes") == 0,
	   "and released");
	prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
	unsetenv("FAKE_CUDA_NO_HOST_NUMA");
	ok(cuMemCreate(&vram_h, 2 * MiB, &prop, 0) == CUDA_SUCCESS &&
		   stat_of("\"device\":0", "vram_bytes") == vram_before + (long long)(2 * MiB),
	   "a cuMemCreate that fits the budget stays in VRAM");
	ok(cuMemRelease(vram_h) == CUDA_SUCCESS &&
		   stat_of("\"device\":0", "vram_bytes") == vram_before,
	   "and an unmapped handle is gone at release");
}

static void check_stream_order(void)
{
	stream_fn block = (stream_fn)dlsym(RTLD_DEFAULT, "fake_stream_block");
	stream_fn release = (stream_fn)dlsym(RTLD_DEFAULT, "fake_stream_release");
	CUdeviceptr f, g, h;
	CUstream s;
	unsigned int type = 0;
	long long before = stat_of(NULL, "spill_bytes");
	long records = fake_calls("cuEventRecord");
	long long deferred = stat_of(NULL, "deferred_frees");

	cuStreamCreate(&s, 0);
	ok(cuMemAlloc_v2(&f, 4 * MiB) == CUDA_SUCCESS, "a 4 MiB spill for the stream-order test");
	block(s);
	ok(cuMemFreeAsync(f, s) == CUDA_SUCCESS,
	   "cuMemFreeAsync of spilled memory on a busy stream");
	ok(fake_calls("cuEventRecord") == records + 1, "records an event on that stream");
	ok(stat_of(NULL, "spill_bytes") == before + (long long)(4 * MiB),
	   "the piece is not reclaimed while the stream has not reached the free");
	ok(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, f) == CUDA_SUCCESS &&
		   type == CU_MEMORYTYPE_HOST,
	   "the application's pointer is no longer answered by the shim");
	ok(cuMemAlloc_v2(&g, 4 * MiB) == CUDA_SUCCESS && !overlaps(f, 4 * MiB, g, 4 * MiB),
	   "a new spill does not reuse the pending piece");
	release(s);
	ok(cuMemAlloc_v2(&h, 4 * MiB) == CUDA_SUCCESS,
	   "after the stream passes the event, the next spill reclaims the piece");
	ok(stat_of(NULL, "spill_bytes") == before + (long long)(8 * MiB) &&
		   stat_of(NULL, "deferred_frees") == deferred + 1,
	   "the pending 4 MiB was reclaimed (%lld)", stat_of(NULL, "spill_bytes") - before);
	block(s);
	ok(cuMemFreeAsync_ptsz(g, s) == CUDA_SUCCESS && fake_calls("cuEventRecord_ptsz") == 1,
	   "the _ptsz free records with cuEventRecord_ptsz");
	release(s);
	ok(cuMemFree_v2(h) == CUDA_SUCCESS && stat_of(NULL, "spill_bytes") == before,
	   "a synchronous free reclaims the rest");
	ok(fake_calls("cuCtxSynchronize") >= 1,
	   "cuMemFree of spilled memory synchronizes first, like cudaFree");
	setenv("FAKE_CUDA_FAIL", "cuEventCreate", 1);
	ok(cuMemAlloc_v2(&f, 4 * MiB) == CUDA_SUCCESS && cuMemFreeAsync(f, s) == CUDA_SUCCESS &&
		   fake_calls("cuStreamSynchronize") == 1 && stat_of(NULL, "spill_bytes") == before,
	   "without an event the free waits for the stream, then frees");
	unsetenv("FAKE_CUDA_FAIL");
}

static void check_context_teardown(CUcontext main_ctx)
{
	CUcontext other;
	CUdeviceptr v, s;
	long long regs = fake_registrations();

	ok(cuCtxCreate_v4(&other, NULL, 0, 0) == CUDA_SUCCESS, "a second context");
	ok(cuMemAlloc_v2(&v, 512 << 10) == CUDA_SUCCESS &&
		   cuMemAlloc_v2(&s, 4 * MiB) == CUDA_SUCCESS,
	   "with a VRAM allocation and a spill of its own");
	ok(fake_registrations() == regs + 1, "the spill has its own arena in that context");
	ok(cuCtxDestroy_v2(other) == CUDA_SUCCESS, "cuCtxDestroy succeeds");
	ok(fake_registrations() == regs, "its arena was unregistered");
	cuCtxSetCurrent(main_ctx);
	ok(stat_of("\"device\":0", "vram_bytes") == (long long)(62 * MiB) &&
		   stat_of(NULL, "spill_bytes") == 0,
	   "its VRAM and spill left the accounts");
}

/* The allocations the cases share, in the order they are made. */
static CUcontext ctx;
static CUdeviceptr a, b, c, d, e;

TEST(placement_by_budget_size_and_chunk)
{
	long long regs;

	ok(cuMemAlloc_v2(&a, 62 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == 62 * MiB,
	   "62 MiB fits the 64 MiB budget: VRAM");
	ok(cuMemAlloc_v2(&e, 512 << 10) == CUDA_SUCCESS &&
		   fake_vram_used(0) == 62 * MiB + (512 << 10),
	   "512 KiB is below SPILLWAY_MIN_SPILL: VRAM");
	ok(cuMemAlloc_v2(&b, 40 * MiB) == CUDA_SUCCESS &&
		   fake_vram_used(0) == 62 * MiB + (512 << 10) && stat_of(NULL, "splits") == 0,
	   "40 MiB more does not fit, and the 1.5 MiB left is under a 2 MiB granule: spilled whole");
	ok(fake_registrations() == 1, "a request above the chunk gets one registration of its own");
	ok(cuMemAlloc_v2(&c, 4 * MiB) == CUDA_SUCCESS && fake_registrations() == 2,
	   "a 4 MiB spill opens a shared 32 MiB arena");
	regs = fake_registrations();
	ok(cuMemAlloc_v2(&d, 4 * MiB) == CUDA_SUCCESS && fake_registrations() == regs &&
		   !overlaps(c, 4 * MiB, d, 4 * MiB),
	   "the next 4 MiB is cut from it, no new registration");
	ok(stat_of("\"device\":0", "vram_bytes") == (long long)(62 * MiB + (512 << 10)) &&
		   stat_of("\"device\":0", "spill_bytes") == (long long)(48 * MiB) &&
		   stat_of("\"host\"", "bytes") == (long long)(48 * MiB),
	   "accounts: VRAM %lld, spill %lld (host backend)", stat_of("\"device\":0", "vram_bytes"),
	   stat_of("\"device\":0", "spill_bytes"));
	memset((void *)b, 0xab, 40 * MiB);
	memset((void *)d, 0xcd, 4 * MiB);
	ok(filled(b, 40 * MiB, 0xab) && filled(d, 4 * MiB, 0xcd) &&
		   filled(c, 1, ((unsigned char *)c)[0]),
	   "spilled memory holds what is written");
}

TEST(pointer_queries_answer_for_pieces)
{
	CUdeviceptr base = 0;
	unsigned int type = 0;
	size_t size = 0;
	int ordinal = -1;

	ok(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, b + 100) ==
			   CUDA_SUCCESS &&
		   type == CU_MEMORYTYPE_DEVICE,
	   "MEMORY_TYPE of a spilled pointer is DEVICE");
	ok(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, d) ==
			   CUDA_SUCCESS &&
		   ordinal == 0,
	   "DEVICE_ORDINAL is the allocating device");
	ok(cuPointerGetAttribute(&base, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, d + 10) ==
			   CUDA_SUCCESS &&
		   base == d &&
		   cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, d + 10) ==
			   CUDA_SUCCESS &&
		   size == 4 * MiB,
	   "RANGE_START/RANGE_SIZE are the piece, not the arena");
	{
		CUpointer_attribute attrs[3] = { CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
						 CU_POINTER_ATTRIBUTE_RANGE_SIZE,
						 CU_POINTER_ATTRIBUTE_HOST_POINTER };
		void *host = (void *)1;
		void *data[3] = { &type, &size, &host };

		type = 0;
		size = 0;
		ok(cuPointerGetAttributes(3, attrs, data, c) == CUDA_SUCCESS &&
			   type == CU_MEMORYTYPE_DEVICE && size == 4 * MiB && host == NULL,
		   "cuPointerGetAttributes: ours for type and size, no host pointer (as for device "
		   "memory)");
	}
	ok(cuMemGetAddressRange_v2(&base, &size, d + 5) == CUDA_SUCCESS && base == d &&
		   size == 4 * MiB,
	   "cuMemGetAddressRange of a piece is the piece");
	ok(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a) == CUDA_SUCCESS &&
		   type == CU_MEMORYTYPE_DEVICE,
	   "VRAM pointers are the driver's answer");
}

/* VRAM budget + what can still be spilled. */
TEST(virtual_report)
{
	size_t free_b = 0, total_b = 0;
	CUresult rc;

	rc = cuMemGetInfo_v2(&free_b, &total_b);
	/* total - free = VRAM in use + spilled, whatever the host has available to spill. */
	ok(rc == CUDA_SUCCESS && total_b - free_b == (62 * MiB + (512 << 10)) + 48 * MiB &&
		   free_b >= 64 * MiB - (62 * MiB + (512 << 10)) && total_b <= 64 * MiB + 512 * MiB,
	   "virtual report: total = budget + spilled + spillable, free = budget left + spillable");
	ok(total_b == 64 * MiB + 512 * MiB || getenv("SPILLWAY_VM"),
	   "with RAM to spare, spillable is what SPILLWAY_SPILL_LIMIT leaves (%zu MiB total)",
	   total_b >> 20);
}

TEST(frees_release_dedicated_arenas_keep_shared)
{
	long long regs;

	regs = fake_registrations();
	ok(cuMemFree_v2(b) == CUDA_SUCCESS && fake_registrations() == regs - 1,
	   "freeing the big spill releases its own registration");
	ok(cuMemFree_v2(c) == CUDA_SUCCESS && cuMemFree_v2(d) == CUDA_SUCCESS &&
		   fake_registrations() == regs - 1,
	   "an emptied shared arena is kept for reuse");
	ok(stat_of(NULL, "spill_bytes") == 0, "no spilled bytes are left");
	ok(cuMemFree_v2(c) == CUDA_ERROR_INVALID_VALUE,
	   "a double free reaches the driver, which refuses it");
}

TEST(stream_ordered_alloc_and_free)
{
	unsigned int type = 0;
	CUdeviceptr x;

	ok(cuMemAllocAsync(&x, 8 * MiB, NULL) == CUDA_SUCCESS &&
		   stat_of(NULL, "spill_bytes") == (long long)(8 * MiB),
	   "cuMemAllocAsync over budget spills");
	ok(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, x) == CUDA_SUCCESS &&
		   type == CU_MEMORYTYPE_DEVICE && cuMemFreeAsync(x, NULL) == CUDA_SUCCESS,
	   "and its pointer is DEVICE; freed on the NULL stream");
	ok(cuMemAlloc_v2(&x, 4 * MiB) == CUDA_SUCCESS &&
		   stat_of(NULL, "spill_bytes") == (long long)(4 * MiB) &&
		   cuMemFree_v2(x) == CUDA_SUCCESS,
	   "the next spill reclaimed the completed 8 MiB free");
	check_stream_order();
	ok(cuMemFree_v2(e) == CUDA_SUCCESS && fake_vram_used(0) == 62 * MiB,
	   "the 512 KiB is freed");
}

TEST(vmm_spills_to_host_numa)
{
	check_vmm();
}

/* Fault injection: the driver refuses to pin. */
TEST(pin_failure_and_spill_limit)
{
	long long regs;
	CUdeviceptr x;

	/* Both ways to host memory refused: registration (arenas) and host-NUMA creation (splits). */
	setenv("FAKE_CUDA_FAIL", "cuMemHostRegister_v2,cuMemCreate", 1);
	regs = fake_registrations();
	ok(cuMemAlloc_v2(&x, 40 * MiB) == CUDA_ERROR_OUT_OF_MEMORY &&
		   fake_registrations() == regs && stat_of(NULL, "spill_failures") >= 1,
	   "when pinning fails, the allocation fails with OUT_OF_MEMORY and nothing leaks");
	unsetenv("FAKE_CUDA_FAIL");
	ok(cuMemAlloc_v2(&x, 40 * MiB) == CUDA_SUCCESS && cuMemFree_v2(x) == CUDA_SUCCESS,
	   "and works again once the driver does");
	ok(cuMemAlloc_v2(&x, 600 * MiB) == CUDA_ERROR_OUT_OF_MEMORY,
	   "a spill past SPILLWAY_SPILL_LIMIT is refused");
}

/* Sizes whose rounding up (to a piece, a pitch, a granule) would wrap past SIZE_MAX. */
TEST(sizes_near_the_top_of_size_t)
{
	long long spilled = stat_of(NULL, "spill_bytes");
	CUdeviceptr p = 0;
	size_t pitch = 0;

	ok(cuMemAlloc_v2(&p, SIZE_MAX - 100) == CUDA_ERROR_OUT_OF_MEMORY &&
		   stat_of(NULL, "spill_bytes") == spilled,
	   "cuMemAlloc(SIZE_MAX - 100) is OUT_OF_MEMORY, not an empty piece (%#llx)",
	   (unsigned long long)p);
	ok(cuMemAllocAsync(&p, SIZE_MAX - 100, NULL) == CUDA_ERROR_OUT_OF_MEMORY &&
		   stat_of(NULL, "spill_bytes") == spilled,
	   "cuMemAllocAsync(SIZE_MAX - 100) is OUT_OF_MEMORY");
	ok(cuMemAllocPitch_v2(&p, &pitch, SIZE_MAX - 100, 1, 4) != CUDA_SUCCESS,
	   "cuMemAllocPitch with a width whose pitch wraps is refused (no division by zero)");
}

TEST(context_teardown)
{
	check_context_teardown(ctx);
}

int main(void)
{
	ctx = shim_setup("SPILLWAY_VRAM_LIMIT=64M", "SPILLWAY_CHUNK=32M",
			 "SPILLWAY_SPILL_LIMIT=512M", "SPILLWAY_MIN_SPILL=1M",
			 "SPILLWAY_HEADROOM=16M", "SPILLWAY_RESERVE=0", "SPILLWAY_BACKEND=host",
			 "SPILLWAY_REPORT=virtual", "FAKE_CUDA_VRAM=256M", NULL);
	if (!ctx)
		return done_testing();
	return tap_run();
}
