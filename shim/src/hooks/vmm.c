/*
 * The virtual memory management API (cuMemCreate/cuMemMap/...), used by PyTorch's expandable
 * segments, ggml's VMM pool and vLLM's sleep-mode allocator.
 *
 * A cuMemCreate for device memory that does not fit is created on host NUMA node 0 instead
 * (not CU_MEM_LOCATION_TYPE_HOST, which refuses the POSIX_FD handles PyTorch asks for); the
 * application maps and grants access to it exactly as before.  The handles and their maps
 * are tracked in core/vmm_handles.c.
 */
#include "hooks.h"

CUresult CUDAAPI cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
			     const CUmemAllocationProp *prop, unsigned long long flags)
{
	real_cuMemCreate_t real = REAL(cuMemCreate);
	CUresult rc;

	if (!hook_enter(real,
			!handle || !prop || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE))
		return real ? real(handle, size, prop, flags) : CUDA_ERROR_NOT_FOUND;
	rc = place_vmm_create(handle, size, prop, flags);
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuMemRelease(CUmemGenericAllocationHandle handle)
{
	real_cuMemRelease_t real = REAL(cuMemRelease);
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(handle) : CUDA_ERROR_NOT_FOUND;
	rc = real(handle);
	if (rc == CUDA_SUCCESS)
		vmm_handle_unref(handle);
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
			  CUmemGenericAllocationHandle handle, unsigned long long flags)
{
	real_cuMemMap_t real = REAL(cuMemMap);
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(ptr, size, offset, handle, flags) : CUDA_ERROR_NOT_FOUND;
	rc = real(ptr, size, offset, handle, flags);
	if (rc == CUDA_SUCCESS)
		vmm_map_record(ptr, size, offset, handle);
	hook_leave();
	return rc;
}

/* cuMemUnmap and cuMemAddressFree (@id): both end the maps in [ptr, ptr+size). */
static CUresult unmap_range(enum hook_id id, CUdeviceptr ptr, size_t size)
{
	real_cuMemUnmap_t real = (real_cuMemUnmap_t)real_fn(id);
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(ptr, size) : CUDA_ERROR_NOT_FOUND;
	rc = real(ptr, size);
	if (rc == CUDA_SUCCESS)
		vmm_forget_maps(ptr, size);
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuMemUnmap(CUdeviceptr ptr, size_t size)
{
	return unmap_range(HOOK_cuMemUnmap, ptr, size);
}

CUresult CUDAAPI cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
	return unmap_range(HOOK_cuMemAddressFree, ptr, size);
}

/* Address space costs no memory: passed through (listed so every VMM entry point is ours). */
CUresult CUDAAPI cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
				     CUdeviceptr addr, unsigned long long flags)
{
	real_cuMemAddressReserve_t real = REAL(cuMemAddressReserve);

	return real ? real(ptr, size, alignment, addr, flags) : CUDA_ERROR_NOT_FOUND;
}

CUresult CUDAAPI cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
				size_t count)
{
	real_cuMemSetAccess_t real = REAL(cuMemSetAccess);
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(ptr, size, desc, count) : CUDA_ERROR_NOT_FOUND;
	rc = real(ptr, size, desc, count);
	if (rc != CUDA_SUCCESS)
		spw_log(LOG_INFO, "cuMemSetAccess(%#llx, %zu) = %d", (unsigned long long)ptr, size,
			(int)rc);
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
	real_cuMemRetainAllocationHandle_t real = REAL(cuMemRetainAllocationHandle);
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(handle, addr) : CUDA_ERROR_NOT_FOUND;
	rc = real(handle, addr);
	if (rc == CUDA_SUCCESS && handle)
		vmm_handle_ref(*handle);
	hook_leave();
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
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(prop, handle) : CUDA_ERROR_NOT_FOUND;
	rc = real(prop, handle);
	if (rc == CUDA_SUCCESS && prop)
		vmm_handle_asked(handle, &prop->location);
	hook_leave();
	return rc;
}
