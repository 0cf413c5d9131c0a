/*
 * cuMemAlloc and friends: each request goes to placement (VRAM or spilled host memory), and
 * every free through the registry (pointers we do not know go to the driver as-is).
 */
#include "hooks.h"

#include <stdlib.h>

CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
	real_cuMemAlloc_v2_t real = REAL(cuMemAlloc_v2);
	struct vram_request q = { .alloc = vram_alloc_plain, .size = bytesize };
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (spw_depth || !dptr || !bytesize)
		return real(dptr, bytesize);
	spw_init();
	spw_depth++;
	rc = place(&q, dptr, REC_VRAM);
	spw_depth--;
	return rc;
}

CUresult CUDAAPI cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
				    size_t Height, unsigned int ElementSizeBytes)
{
	real_cuMemAllocPitch_v2_t real = REAL(cuMemAllocPitch_v2);
	/* The driver aligns pitch to 512 bytes on current GPUs; decide on that size. */
	size_t pitch = (size_t)round_up(WidthInBytes, 512);
	struct vram_request q = { .alloc = vram_alloc_pitch, .width = WidthInBytes, .height = Height,
				  .pitch = pPitch, .elem = ElementSizeBytes };
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (spw_depth || !dptr || !pPitch || !WidthInBytes || !Height ||
	    (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16) ||
	    Height > SIZE_MAX / pitch)
		return real(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
	spw_init();
	spw_depth++;
	q.size = pitch * Height;
	rc = place(&q, dptr, REC_VRAM);
	/* A spilled pitch allocation reports the pitch it was sized with. */
	if (rc == CUDA_SUCCESS && q.size == pitch * Height)
		*pPitch = pitch;
	spw_depth--;
	return rc;
}

static CUresult alloc_async_common(enum hook_id id, CUdeviceptr *dptr, size_t bytesize,
				   CUmemoryPool pool, CUstream stream)
{
	struct vram_request q = { .alloc = pool ? vram_alloc_from_pool : vram_alloc_async, .size = bytesize,
				  .pool = pool, .stream = stream, .id = id };
	CUresult rc;

	if (!real_fn(id))
		return CUDA_ERROR_NOT_FOUND;
	if (spw_depth || !dptr || !bytesize)
		return q.alloc(&q, dptr);
	spw_init();
	spw_depth++;
	/* Spilled memory is valid at once, which satisfies stream order trivially. */
	rc = place(&q, dptr, REC_ASYNC);
	spw_depth--;
	return rc;
}

CUresult CUDAAPI cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
	return alloc_async_common(HOOK_cuMemAllocAsync, dptr, bytesize, NULL, hStream);
}

CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
	return alloc_async_common(HOOK_cuMemAllocAsync_ptsz, dptr, bytesize, NULL, hStream);
}

CUresult CUDAAPI cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
					 CUstream hStream)
{
	if (!pool)
		return REAL(cuMemAllocFromPoolAsync) ?
		       REAL(cuMemAllocFromPoolAsync)(dptr, bytesize, pool, hStream) :
		       CUDA_ERROR_NOT_FOUND;
	return alloc_async_common(HOOK_cuMemAllocFromPoolAsync, dptr, bytesize, pool, hStream);
}

CUresult CUDAAPI cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize,
					      CUmemoryPool pool, CUstream hStream)
{
	if (!pool)
		return REAL(cuMemAllocFromPoolAsync_ptsz) ?
		       REAL(cuMemAllocFromPoolAsync_ptsz)(dptr, bytesize, pool, hStream) :
		       CUDA_ERROR_NOT_FOUND;
	return alloc_async_common(HOOK_cuMemAllocFromPoolAsync_ptsz, dptr, bytesize, pool, hStream);
}

CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
	real_cuMemAllocManaged_t real = REAL(cuMemAllocManaged);
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (spw_depth)
		return real(dptr, bytesize, flags);
	spw_init();
	spw_depth++;
	/* Managed memory migrates on its own: account for it, never place it. */
	rc = real(dptr, bytesize, flags);
	if (rc == CUDA_SUCCESS)
		record_managed(*dptr, bytesize);
	spw_depth--;
	return rc;
}

CUresult CUDAAPI cuMemFree_v2(CUdeviceptr dptr)
{
	real_cuMemFree_v2_t real = REAL(cuMemFree_v2);
	real_cuCtxSynchronize_t sync = REAL(cuCtxSynchronize);
	struct alloc_rec *r;
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (spw_depth || !dptr)
		return real(dptr);
	spw_init();
	spw_depth++;
	counter_inc(CNT_frees);
	/* Out of the registry first: once freed, the driver may hand the address to another thread. */
	r = vram_remove(dptr);
	if (r) {
		rc = real(dptr);
		if (rc == CUDA_SUCCESS)
			placement_forget(r);
		else if (vram_insert(r) != 0)
			free(r);
	} else if ((r = range_remove_exact(dptr, REC_SPILL))) {
		/* cuMemFree synchronizes like cudaFree: no queued kernel may still read the piece. */
		if (sync)
			sync();
		spill_free_now(r);
		spill_reclaim(0);
		rc = CUDA_SUCCESS;
	} else {
		counter_inc(CNT_passthrough_frees);
		rc = real(dptr);
	}
	spw_depth--;
	return rc;
}

static CUresult free_async_common(enum hook_id id, CUdeviceptr dptr, CUstream stream)
{
	real_cuMemFreeAsync_t real = (real_cuMemFreeAsync_t)real_fn(id);
	struct alloc_rec *r;
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (spw_depth || !dptr)
		return real(dptr, stream);
	spw_init();
	spw_depth++;
	counter_inc(CNT_frees);
	r = vram_remove(dptr);
	if (r) {
		rc = real(dptr, stream);
		if (rc == CUDA_SUCCESS)
			placement_forget(r);
		else if (vram_insert(r) != 0)
			free(r);
	} else if ((r = range_remove_exact(dptr, REC_SPILL))) {
		spill_reclaim(0);
		spill_free_ordered(r, stream, id == HOOK_cuMemFreeAsync_ptsz);
		rc = CUDA_SUCCESS;
	} else {
		counter_inc(CNT_passthrough_frees);
		rc = real(dptr, stream);
	}
	spw_depth--;
	return rc;
}

CUresult CUDAAPI cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
	return free_async_common(HOOK_cuMemFreeAsync, dptr, hStream);
}

CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream)
{
	return free_async_common(HOOK_cuMemFreeAsync_ptsz, dptr, hStream);
}
