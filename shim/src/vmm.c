/*
 * The virtual memory management API (cuMemCreate/cuMemMap/...), used by PyTorch's expandable
 * segments, ggml's VMM pool and vLLM's sleep-mode allocator.
 *
 * A cuMemCreate for device memory that does not fit is created on host NUMA node 0 instead
 * (not CU_MEM_LOCATION_TYPE_HOST, which refuses the POSIX_FD handles PyTorch asks for); the
 * application maps and grants access to it exactly as before.
 *
 * Physical memory stays in use until it is released AND unmapped everywhere, so each handle
 * counts its references: 1 for the create, +1 per map and per retain.
 */
#define _GNU_SOURCE
#include "shim.h"

#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

struct vmm_handle {
	CUmemGenericAllocationHandle handle;
	size_t size;
	int dev;
	int spilled;
	long refs;			/* Protected by vmm_mutex. */
	CUmemLocation asked;		/* where the application asked for it */
};

static pthread_mutex_t vmm_mutex = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int first_host_create;	/* the first one is logged at info */
static void *handles;			/* tsearch tree by handle. Protected by vmm_mutex. */

void vmm_lock(void)
{
	pthread_mutex_lock(&vmm_mutex);
}

void vmm_unlock(void)
{
	pthread_mutex_unlock(&vmm_mutex);
}

void vmm_reset_lock(void)
{
	pthread_mutex_init(&vmm_mutex, NULL);
}

static int by_handle(const void *a, const void *b)
{
	CUmemGenericAllocationHandle x = ((const struct vmm_handle *)a)->handle;
	CUmemGenericAllocationHandle y = ((const struct vmm_handle *)b)->handle;

	return x < y ? -1 : x > y;
}

/* Called with vmm_mutex held. */
static struct vmm_handle *find_handle(CUmemGenericAllocationHandle h)
{
	struct vmm_handle key = { .handle = h };
	void *node = tfind(&key, &handles, by_handle);

	return node ? *(struct vmm_handle **)node : NULL;
}

static void account(struct vmm_handle *v, int sign)
{
	if (v->spilled)
		stats_spill(v->dev, SPILL_HOST_NUMA, sign * (int64_t)v->size);
	else
		stats_vram(v->dev, sign * (int64_t)v->size);
}

static struct vmm_handle *ref_handle(CUmemGenericAllocationHandle h)
{
	struct vmm_handle *v;

	pthread_mutex_lock(&vmm_mutex);
	v = find_handle(h);
	if (v)
		v->refs++;
	pthread_mutex_unlock(&vmm_mutex);
	return v;
}

static void unref_handle(CUmemGenericAllocationHandle h)
{
	struct vmm_handle *v;
	int gone = 0;

	pthread_mutex_lock(&vmm_mutex);
	v = find_handle(h);
	if (v && --v->refs == 0) {
		tdelete(v, &handles, by_handle);
		gone = 1;
	}
	pthread_mutex_unlock(&vmm_mutex);
	if (gone) {
		account(v, -1);
		free(v);
	}
}

/* @counted: the bytes are already in the account (a budget reservation). */
static void record_handle(CUmemGenericAllocationHandle h, size_t size, int dev, int spilled,
			  const CUmemLocation *asked, int counted)
{
	struct vmm_handle *v = calloc(1, sizeof(*v));
	void *node;

	if (!v) {
		if (counted)
			stats_vram(dev, -(int64_t)size);
		return;
	}
	v->handle = h;
	v->size = size;
	v->dev = dev;
	v->spilled = spilled;
	v->refs = 1;
	v->asked = *asked;
	pthread_mutex_lock(&vmm_mutex);
	node = tsearch(v, &handles, by_handle);
	pthread_mutex_unlock(&vmm_mutex);
	if (!node || *(struct vmm_handle **)node != v) {
		if (counted)
			stats_vram(dev, -(int64_t)size);
		free(v);
		return;
	}
	if (!counted)
		account(v, 1);
}

/*
 * Host NUMA node 0 with the handle types asked for; if the driver refuses that combination,
 * the same without shareable handle types (spilled memory cannot be shared over IPC anyway:
 * cuda.md), then CU_MEM_LOCATION_TYPE_HOST, which accepts only that.
 */
static CUresult create_on_host(CUmemGenericAllocationHandle *handle, size_t size,
			       const CUmemAllocationProp *prop, unsigned long long flags)
{
	const struct spw_config *c = spw_config();
	CUmemAllocationProp host = *prop;
	CUresult rc;

	if (c->spill_limit && sat_add(stats_spill_used_total(), size) > c->spill_limit)
		return CUDA_ERROR_OUT_OF_MEMORY;
	host.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
	host.location.id = 0;
	/* Device-only hints (compression, GPUDirect RDMA, usage) make host requests invalid. */
	memset(&host.allocFlags, 0, sizeof(host.allocFlags));
	rc = REAL(cuMemCreate)(handle, size, &host, flags);
	if (rc == CUDA_SUCCESS || rc == CUDA_ERROR_OUT_OF_MEMORY)
		return rc;
	spw_log(LOG_INFO, "cuMemCreate(%zu, HOST_NUMA 0, handle types %#x, type %d, flags %llu, "
		"asked compression %u rdma %u usage %u) = %d", size,
		(unsigned int)host.requestedHandleTypes, (int)host.type, flags,
		prop->allocFlags.compressionType, prop->allocFlags.gpuDirectRDMACapable,
		prop->allocFlags.usage, (int)rc);
	if (host.requestedHandleTypes) {
		host.requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
		rc = REAL(cuMemCreate)(handle, size, &host, flags);
		if (rc == CUDA_SUCCESS || rc == CUDA_ERROR_OUT_OF_MEMORY)
			return rc;
		spw_log(LOG_INFO, "cuMemCreate(%zu, HOST_NUMA 0, no handle types) = %d", size,
			(int)rc);
	}
	host.location.type = CU_MEM_LOCATION_TYPE_HOST;
	rc = REAL(cuMemCreate)(handle, size, &host, flags);
	if (rc != CUDA_SUCCESS)
		spw_log(LOG_INFO, "cuMemCreate(%zu, HOST, no handle types) = %d", size, (int)rc);
	return rc;
}

static CUresult create_in_vram(const struct spw_config *c, CUmemGenericAllocationHandle *handle,
			       size_t size, const CUmemAllocationProp *prop,
			       unsigned long long flags, int dev, int may_use_reserve)
{
	int budgeted = policy_budgeted(c, size);
	CUresult rc;

	if (budgeted && !stats_vram_take(dev, size, policy_ceiling(c, size, may_use_reserve)))
		return CUDA_ERROR_OUT_OF_MEMORY;
	rc = REAL(cuMemCreate)(handle, size, prop, flags);
	if (rc == CUDA_SUCCESS)
		record_handle(*handle, size, dev, 0, &prop->location, budgeted);
	else if (budgeted)
		stats_vram(dev, -(int64_t)size);
	return rc;
}

CUresult CUDAAPI cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
			     const CUmemAllocationProp *prop, unsigned long long flags)
{
	real_cuMemCreate_t real = REAL(cuMemCreate);
	const struct spw_config *c;
	struct policy_input in;
	enum placement where;
	CUresult rc;
	int dev;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (spw_depth || !handle || !prop || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
		return real(handle, size, prop, flags);
	spw_init();
	spw_depth++;
	c = spw_config();
	/* The device is named in the request: no context needed (loader threads have none). */
	dev = prop->location.id;
	stats_count(CNT_allocs);
	in.size = size;
	in.vram_used = stats_vram_used(dev);
	in.vram_free = UINT64_MAX;
	in.vram_total = 0;
	if (policy_needs_free(c, size, in.vram_used))
		in.vram_free = vram_free(c, dev, size, &in.vram_total);
	where = policy_decide(c, &in);
	rc = CUDA_ERROR_OUT_OF_MEMORY;
	if (where == PLACE_VRAM)
		rc = create_in_vram(c, handle, size, prop, flags, dev, 0);
	if (rc == CUDA_ERROR_OUT_OF_MEMORY && c->backend != BACKEND_OFF) {
		rc = create_on_host(handle, size, prop, flags);
		if (rc == CUDA_SUCCESS) {
			stats_count(CNT_vmm_host_numa);
			stats_count(CNT_spills);
			record_handle(*handle, size, dev, 1, &prop->location, 0);
			spw_log(first_host_create++ ? LOG_DEBUG : LOG_INFO,
				"cuMemCreate(%zu) on host memory (asked: handle types %#x, compression %u, "
				"rdma %u, usage %u)", size, (unsigned int)prop->requestedHandleTypes,
				prop->allocFlags.compressionType, prop->allocFlags.gpuDirectRDMACapable,
				prop->allocFlags.usage);
			spw_depth--;
			return rc;
		}
		stats_count(CNT_spill_failures);
		spw_log(LOG_WARN, "no host memory for cuMemCreate(%zu): %d", size, (int)rc);
		if (where == PLACE_VRAM) {
			spw_depth--;
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		/* Spilling failed: VRAM is still better than an error, reserve included. */
		rc = create_in_vram(c, handle, size, prop, flags, dev, 1);
	}
	spw_depth--;
	return rc;
}

CUresult CUDAAPI cuMemRelease(CUmemGenericAllocationHandle handle)
{
	real_cuMemRelease_t real = REAL(cuMemRelease);
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	rc = real(handle);
	if (rc == CUDA_SUCCESS && !spw_depth)
		unref_handle(handle);
	return rc;
}

CUresult CUDAAPI cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
			  CUmemGenericAllocationHandle handle, unsigned long long flags)
{
	real_cuMemMap_t real = REAL(cuMemMap);
	struct vmm_handle *v;
	struct alloc_rec *r;
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	rc = real(ptr, size, offset, handle, flags);
	if (rc != CUDA_SUCCESS || spw_depth)
		return rc;
	spw_init();
	v = ref_handle(handle);
	if (!v)
		return rc;	/* not created through us (or before us): nothing to track */
	r = calloc(1, sizeof(*r));
	if (!r) {
		unref_handle(handle);
		return rc;
	}
	r->base = ptr;
	r->size = size;
	r->dev = v->dev;
	r->kind = REC_VMM_MAP;
	r->handle = v;
	r->offset = offset;
	r->spilled = v->spilled;
	if (range_insert(r) != 0) {
		unref_handle(handle);
		free(r);
	}
	return rc;
}

/* Drop our map records in [ptr, ptr+size) and their references. */
static void forget_maps(CUdeviceptr ptr, size_t size)
{
	struct alloc_rec *r;

	while ((r = range_remove_overlap(ptr, ptr + size, REC_VMM_MAP))) {
		unref_handle(r->handle->handle);
		free(r);
	}
}

CUresult CUDAAPI cuMemUnmap(CUdeviceptr ptr, size_t size)
{
	real_cuMemUnmap_t real = REAL(cuMemUnmap);
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	rc = real(ptr, size);
	if (rc == CUDA_SUCCESS && !spw_depth)
		forget_maps(ptr, size);
	return rc;
}

CUresult CUDAAPI cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
				     CUdeviceptr addr, unsigned long long flags)
{
	real_cuMemAddressReserve_t real = REAL(cuMemAddressReserve);

	/* Address space costs no memory: passed through (listed so every VMM entry point is ours). */
	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	return real(ptr, size, alignment, addr, flags);
}

CUresult CUDAAPI cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
	real_cuMemAddressFree_t real = REAL(cuMemAddressFree);
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	rc = real(ptr, size);
	if (rc == CUDA_SUCCESS && !spw_depth)
		forget_maps(ptr, size);
	return rc;
}

CUresult CUDAAPI cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
				size_t count)
{
	real_cuMemSetAccess_t real = REAL(cuMemSetAccess);
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	rc = real(ptr, size, desc, count);
	if (rc != CUDA_SUCCESS && !spw_depth)
		spw_log(LOG_INFO, "cuMemSetAccess(%#llx, %zu) = %d", (unsigned long long)ptr, size,
			(int)rc);
	return rc;
}

CUresult CUDAAPI cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
	real_cuMemRetainAllocationHandle_t real = REAL(cuMemRetainAllocationHandle);
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	rc = real(handle, addr);
	if (rc == CUDA_SUCCESS && !spw_depth && handle)
		ref_handle(*handle);
	return rc;
}

/*
 * A spilled handle reports the location the application asked for (its device): code that
 * copies these properties to make a twin allocation then asks for device memory again, and
 * the policy decides afresh where it goes.
 */
CUresult CUDAAPI cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
							CUmemGenericAllocationHandle handle)
{
	real_cuMemGetAllocationPropertiesFromHandle_t real =
		REAL(cuMemGetAllocationPropertiesFromHandle);
	struct vmm_handle *v;
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	rc = real(prop, handle);
	if (rc != CUDA_SUCCESS || spw_depth || !prop)
		return rc;
	pthread_mutex_lock(&vmm_mutex);
	v = find_handle(handle);
	if (v && v->spilled)
		prop->location = v->asked;
	pthread_mutex_unlock(&vmm_mutex);
	return rc;
}
