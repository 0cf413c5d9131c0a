/*
 * What the application is told: free/total memory (driver and NVML) and the attributes of
 * pointers into spilled memory.
 */
#include "hooks.h"

#include <string.h>

static void report(uint64_t real_free, uint64_t real_total, int dev, uint64_t *free_out,
		   uint64_t *total_out)
{
	const struct spw_config *c = spw_config();
	/*
	 * virtual: what can really be spilled (the pool's free bytes, or what the cgroup and the
	 * machine can give: spill_available), shared among the devices, not promised to each.
	 */
	uint64_t spill_avail =
		c->report == REPORT_VIRTUAL ? spill_available() / (uint64_t)device_count() : 0;

	/* Graph memory is this process's VRAM too, though no record counts it. */
	policy_report(c, real_free, real_total,
		      dev >= 0 ? account_vram_used(dev) + graph_memory_reserved(dev) : 0,
		      account_spill_used(), spill_avail, free_out, total_out);
}

CUresult CUDAAPI cuMemGetInfo_v2(size_t *free, size_t *total)
{
	real_cuMemGetInfo_v2_t real = REAL(cuMemGetInfo_v2);
	size_t f = 0, t = 0;
	uint64_t rf, rt;
	CUcontext ctx;
	CUresult rc;
	int dev;

	if (!hook_enter(real, 0))
		return real ? real(free, total) : CUDA_ERROR_NOT_FOUND;
	rc = real(&f, &t);
	if (rc == CUDA_SUCCESS) {
		if (ctx_current_dev(&ctx, &dev) != 0)
			dev = -1;
		report(f, t, dev, &rf, &rt);
		if (free)
			*free = (size_t)rf;
		if (total)
			*total = (size_t)rt;
	}
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
	real_cuDeviceTotalMem_v2_t real = REAL(cuDeviceTotalMem_v2);
	size_t t = 0;
	uint64_t rf, rt;
	CUresult rc;

	if (!hook_enter(real, !bytes))
		return real ? real(bytes, dev) : CUDA_ERROR_NOT_FOUND;
	rc = real(&t, dev);
	if (rc == CUDA_SUCCESS) {
		report(t, t, (int)dev, &rf, &rt);
		*bytes = (size_t)rt;
	}
	hook_leave();
	return rc;
}

/* NVML numbers devices its own way: find the CUDA ordinal by PCI bus id, or -1. */
static int nvml_to_cuda(nvmlDevice_t device)
{
	real_nvmlDeviceGetPciInfo_v3_t pci_info = REAL(nvmlDeviceGetPciInfo_v3);
	real_cuDeviceGetByPCIBusId_t by_bus = REAL(cuDeviceGetByPCIBusId);
	nvmlPciInfo_t pci;
	CUdevice dev;

	memset(&pci, 0, sizeof(pci));
	if (!pci_info || !by_bus || pci_info(device, &pci) != NVML_SUCCESS)
		return -1;
	if (by_bus(&dev, pci.busId) != CUDA_SUCCESS)
		return -1;
	return (int)dev;
}

/*
 * nvmlDeviceGetMemoryInfo and _v2 (@id): the driver's answer, then our figures.  Both take
 * the device and a pointer to their struct; v2 separates the driver's reserved bytes from
 * used, and reserved is kept as it was.
 */
static nvmlReturn_t memory_info(enum hook_id id, nvmlDevice_t device, void *memory)
{
	void *real = real_fn(id);
	unsigned long long *free, *total, *used, reserved = 0;
	nvmlReturn_t rc;
	uint64_t rf, rt;

	if (!real)
		return NVML_ERROR_FUNCTION_NOT_FOUND;
	if (id == HOOK_nvmlDeviceGetMemoryInfo)
		rc = ((real_nvmlDeviceGetMemoryInfo_t)real)(device, memory);
	else
		rc = ((real_nvmlDeviceGetMemoryInfo_v2_t)real)(device, memory);
	if (rc != NVML_SUCCESS || !memory || !hook_enter(real, 0))
		return rc;
	if (id == HOOK_nvmlDeviceGetMemoryInfo) {
		nvmlMemory_t *m = memory;

		free = &m->free;
		total = &m->total;
		used = &m->used;
	} else {
		nvmlMemory_v2_t *m = memory;

		free = &m->free;
		total = &m->total;
		used = &m->used;
		reserved = m->reserved;
	}
	report(*free, *total, nvml_to_cuda(device), &rf, &rt);
	*free = rf;
	*total = rt;
	*used = rt - rf > reserved ? rt - rf - reserved : 0;
	hook_leave();
	return rc;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
	return memory_info(HOOK_nvmlDeviceGetMemoryInfo, device, memory);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
	return memory_info(HOOK_nvmlDeviceGetMemoryInfo_v2, device, memory);
}

/*
 * Attributes of spilled memory, answered from the registry, consistently with MEMORY_TYPE
 * DEVICE (docs/shim.md has the table of the driver's answers and ours).  The driver would say
 * HOST (registered or host-NUMA memory) and report the whole arena as the range and buffer;
 * frameworks that check a pointer before a kernel (PyTorch, CuPy, DLPack importers) expect a
 * device pointer of the size they allocated.  What the memory cannot do, it does not claim:
 * no legacy IPC, no pool, no shareable handle types, no GPUDirect RDMA.  Returns 1 when
 * answered; -1 when the answer is the driver's error for device memory (HOST_POINTER).
 */
/* Ids of our own for spilled pieces: the high bit and the piece's address (unique while it lives). */
#define SPILLED_BUFFER_ID (1ULL << 63)

static int spilled_attribute(const struct alloc_rec *r, CUpointer_attribute attr, void *data,
			     CUdeviceptr ptr)
{
	switch (attr) {
	case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
		*(unsigned int *)data = CU_MEMORYTYPE_DEVICE;
		return 1;
	case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
		*(int *)data = r->dev;
		return 1;
	case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
		*(CUdeviceptr *)data = ptr;
		return 1;
	case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
		*(CUdeviceptr *)data = r->base;
		return 1;
	case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
		*(size_t *)data = r->size;
		return 1;
	case CU_POINTER_ATTRIBUTE_IS_MANAGED:
		*(unsigned int *)data = 0;
		return 1;
	case CU_POINTER_ATTRIBUTE_MAPPED:
		*(unsigned int *)data = 1;
		return 1;
	case CU_POINTER_ATTRIBUTE_CONTEXT:
		if (r->kind != REC_SPILL && r->kind != REC_SPLIT)
			return 0;
		*(CUcontext *)data = r->ctx;
		return 1;
	case CU_POINTER_ATTRIBUTE_BUFFER_ID:
	case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID:
		/* The driver's id is the arena's, shared by its pieces: one of ours per piece. */
		*(unsigned long long *)data = SPILLED_BUFFER_ID | r->base;
		return 1;
	case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
		*(CUdeviceptr *)data = r->base;
		return 1;
	case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
		*(size_t *)data = r->size;
		return 1;
	case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
		*(int *)data = 0; /* cuIpcGetMemHandle refuses it (hooks/semantics.c) */
		return 1;
	case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
		*(CUmemoryPool *)data = NULL;
		return 1;
	case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
		if (r->kind != REC_SPILL)
			return 0; /* a host-NUMA handle keeps the types asked for: the driver's */
		*(unsigned long long *)data = CU_MEM_HANDLE_TYPE_NONE;
		return 1;
	case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
	case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE:
		*(int *)data = 0;
		return 1;
	case CU_POINTER_ATTRIBUTE_HOST_POINTER:
		return -1; /* as for device memory: INVALID_VALUE */
	default:
		return 0;
	}
}

static int lookup_spilled(CUdeviceptr ptr, struct alloc_rec *r)
{
	return range_lookup(ptr, r) && r->spilled;
}

CUresult CUDAAPI cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
	real_cuPointerGetAttribute_t real = REAL(cuPointerGetAttribute);
	struct alloc_rec r;
	int answered;

	if (!hook_enter(real, !data))
		return real ? real(data, attribute, ptr) : CUDA_ERROR_NOT_FOUND;
	answered = lookup_spilled(ptr, &r) ? spilled_attribute(&r, attribute, data, ptr) : 0;
	hook_leave();
	if (answered < 0)
		return CUDA_ERROR_INVALID_VALUE;
	return answered ? CUDA_SUCCESS : real(data, attribute, ptr);
}

CUresult CUDAAPI cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
					void **data, CUdeviceptr ptr)
{
	real_cuPointerGetAttributes_t real = REAL(cuPointerGetAttributes);
	struct alloc_rec r;
	CUresult rc;

	if (!hook_enter(real, !attributes || !data))
		return real ? real(numAttributes, attributes, data, ptr) : CUDA_ERROR_NOT_FOUND;
	/* The driver fills what we do not answer; then we overwrite what we do. */
	rc = real(numAttributes, attributes, data, ptr);
	if (rc == CUDA_SUCCESS && lookup_spilled(ptr, &r))
		for (unsigned int i = 0; i < numAttributes; i++)
			if (data[i] && spilled_attribute(&r, attributes[i], data[i], ptr) < 0)
				*(void **)data[i] =
					NULL; /* what the driver fills in for device memory */
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
	real_cuMemGetAddressRange_v2_t real = REAL(cuMemGetAddressRange_v2);
	struct alloc_rec r;
	int found;

	if (!hook_enter(real, 0))
		return real ? real(pbase, psize, dptr) : CUDA_ERROR_NOT_FOUND;
	/* The driver is wrong for host-NUMA maps (a base 12 GiB off) and says "arena" for pieces. */
	found = lookup_spilled(dptr, &r);
	hook_leave();
	if (!found)
		return real(pbase, psize, dptr);
	if (pbase)
		*pbase = r.base;
	if (psize)
		*psize = r.size;
	return CUDA_SUCCESS;
}
