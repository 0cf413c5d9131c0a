/*
 * IPC, export and pointer attributes of spilled memory, on the fake driver (which, like the
 * H100, exports only device memory and refuses FABRIC handles with 800): exports of spilled
 * memory fail with the driver's error and a log line that says why; requested handle types
 * are kept or refused, never dropped; a spilled pointer's attributes agree with each other.
 *
 * Card: 256 MiB (FAKE_CUDA_VRAM). Budget: 64 MiB, no reserve. Chunk: 32 MiB.
 */
#include "shim_test.h"

#include <cuda.h>
#include <unistd.h>

static CUdeviceptr vram, a, b; /* 60 MiB in VRAM; two pieces of one arena */

TEST(setup)
{
	ok(cuMemAlloc_v2(&vram, 60 * MiB) == CUDA_SUCCESS &&
		   cuMemAlloc_v2(&a, 20 * MiB) == CUDA_SUCCESS &&
		   cuMemAlloc_v2(&b, 8 * MiB) == CUDA_SUCCESS &&
		   stat_of("\"device\":0", "spill_bytes") == (long long)(28 * MiB),
	   "60 MiB in VRAM, then 20 and 8 MiB spilled into one arena");
}

TEST(ipc_of_spilled_memory_refused_with_the_reason)
{
	CUipcMemHandle h;

	ok(cuIpcGetMemHandle(&h, vram) == CUDA_SUCCESS, "cuIpcGetMemHandle of VRAM works");
	ok(cuIpcGetMemHandle(&h, a) == CUDA_ERROR_INVALID_VALUE,
	   "of a spilled piece: CUDA_ERROR_INVALID_VALUE, the driver's answer for host memory");
	ok(logged("cuIpcGetMemHandle") && logged("was spilled to host memory"),
	   "the log says the piece was spilled and what to do");
	ok(stat_of(NULL, "export_refusals") == 1, "counted");
}

TEST(dmabuf_of_spilled_memory_refused_with_the_reason)
{
	int fd = -1;

	ok(cuMemGetHandleForAddressRange(&fd, a, 2 * MiB, CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0) !=
			   CUDA_SUCCESS &&
		   logged("cuMemGetHandleForAddressRange"),
	   "a dma-buf of spilled memory: the driver's refusal, and a log line");
	ok(cuMemGetHandleForAddressRange(&fd, vram, 2 * MiB, CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD,
					 0) == CUDA_SUCCESS &&
		   fd >= 0,
	   "of VRAM: a dma-buf");
	if (fd >= 0)
		close(fd);
}

TEST(attributes_of_spilled_memory_agree)
{
	unsigned long long ida = 0, idb = 0, handles = 7;
	unsigned int type = 0;
	int legacy = -1, rdma = -1;
	CUmemoryPool pool = (CUmemoryPool)1;
	CUdeviceptr start = 0, host = 0;
	size_t size = 0;
	CUipcMemHandle h;

	cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a + 4096);
	ok(type == CU_MEMORYTYPE_DEVICE, "MEMORY_TYPE DEVICE (frameworks check it)");
	ok(cuPointerGetAttribute(&host, CU_POINTER_ATTRIBUTE_HOST_POINTER, a) ==
		   CUDA_ERROR_INVALID_VALUE,
	   "so no HOST_POINTER, as for device memory");
	cuPointerGetAttribute(&ida, CU_POINTER_ATTRIBUTE_BUFFER_ID, a);
	cuPointerGetAttribute(&idb, CU_POINTER_ATTRIBUTE_BUFFER_ID, b);
	ok(ida && idb && ida != idb, "two pieces of one arena have different BUFFER_IDs");
	cuPointerGetAttribute(&legacy, CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE, a);
	ok(legacy == 0 && cuIpcGetMemHandle(&h, a) != CUDA_SUCCESS,
	   "IS_LEGACY_CUDA_IPC_CAPABLE 0, and indeed cuIpcGetMemHandle refuses it");
	cuPointerGetAttribute(&pool, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, a);
	cuPointerGetAttribute(&handles, CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES, a);
	cuPointerGetAttribute(&rdma, CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE, a);
	ok(pool == NULL && handles == 0 && rdma == 0,
	   "no pool, no shareable handle types, no GPUDirect RDMA");
	cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR, a + 4096);
	cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_MAPPING_SIZE, a + 4096);
	ok(start == a && size == 20 * MiB, "the mapping is the piece");
}

TEST(vmm_handle_types_kept_or_refused)
{
	CUmemAllocationProp prop = { 0 }, got = { 0 };
	CUmemGenericAllocationHandle h;
	int fd = -1;

	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = 0;
	prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
	ok(cuMemCreate(&h, 32 * MiB, &prop, 0) == CUDA_SUCCESS &&
		   stat_of("\"host_numa\"", "bytes") == (long long)(32 * MiB),
	   "a POSIX_FD cuMemCreate over the budget goes to host NUMA memory");
	ok(cuMemGetAllocationPropertiesFromHandle(&got, h) == CUDA_SUCCESS &&
		   got.requestedHandleTypes == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR,
	   "with its handle types");
	ok(cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0) ==
			   CUDA_SUCCESS &&
		   fd >= 0,
	   "so it exports a file descriptor");
	if (fd >= 0)
		close(fd);
	cuMemRelease(h);
	prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_FABRIC;
	ok(cuMemCreate(&h, 32 * MiB, &prop, 0) == CUDA_ERROR_NOT_PERMITTED,
	   "FABRIC over the budget: CUDA_ERROR_NOT_PERMITTED, as the driver refuses it on device "
	   "memory too; never dropped");
	ok(logged("asks for handle types 0x8"), "the log says so");
	ok(cuMemCreate(&h, 2 * MiB, &prop, 0) == CUDA_ERROR_NOT_PERMITTED,
	   "FABRIC within the budget: the driver's refusal as it is");
}

int main(void)
{
	int rc;

	shim_log_to("t_export");
	if (!shim_setup("FAKE_CUDA_VRAM=256M", "SPILLWAY_VRAM_LIMIT=64M", "SPILLWAY_RESERVE=0",
			"SPILLWAY_CHUNK=32M", "SPILLWAY_BACKEND=host", "SPILLWAY_HEADROOM=0", NULL))
		return done_testing();
	rc = tap_run();
	shim_log_remove();
	return rc;
}
