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

	if (!hook_enter(real, !dptr || !bytesize))
		return real ? real(dptr, bytesize) : CUDA_ERROR_NOT_FOUND;
	rc = place(&q, dptr, REC_VRAM);
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
				    size_t Height, unsigned int ElementSizeBytes)
{
	real_cuMemAllocPitch_v2_t real = REAL(cuMemAllocPitch_v2);
	/* The driver aligns pitch to 512 bytes on current GPUs; decide on that size. */
	size_t pitch = (size_t)round_up(WidthInBytes, 512);
	struct vram_request q = { .alloc = vram_alloc_pitch,
				  .width = WidthInBytes,
				  .height = Height,
				  .pitch = pPitch,
				  .elem = ElementSizeBytes };
	/* Shapes the driver refuses or that overflow are its to report. */
	int odd = !dptr || !pPitch || !WidthInBytes || !pitch || !Height ||
		  Height > SIZE_MAX / pitch ||
		  (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16);
	CUresult rc;

	if (!hook_enter(real, odd))
		return real ? real(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes)
			    : CUDA_ERROR_NOT_FOUND;
	q.size = pitch * Height;
	rc = place(&q, dptr, REC_VRAM);
	/* A spilled pitch allocation reports the pitch it was sized with. */
	if (rc == CUDA_SUCCESS && q.size == pitch * Height)
		*pPitch = pitch;
	hook_leave();
	return rc;
}

/* cuMemAllocAsync, cuMemAllocFromPoolAsync (@pool) and their per-thread-stream twins (@id). */
static CUresult alloc_async(enum hook_id id, CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
			    CUstream stream)
{
	int from_pool = id == HOOK_cuMemAllocFromPoolAsync ||
			id == HOOK_cuMemAllocFromPoolAsync_ptsz;
	struct vram_request q = { .alloc = from_pool ? vram_alloc_from_pool : vram_alloc_async,
				  .size = bytesize,
				  .pool = pool,
				  .stream = stream,
				  .id = id };
	CUresult rc;

	if (!hook_enter(real_fn(id), !dptr || !bytesize || (from_pool && !pool)))
		return q.alloc(&q, dptr);
	/* Spilled memory is valid at once, which satisfies stream order trivially. */
	rc = place(&q, dptr, REC_ASYNC);
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
	return alloc_async(HOOK_cuMemAllocAsync, dptr, bytesize, NULL, hStream);
}

CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
	return alloc_async(HOOK_cuMemAllocAsync_ptsz, dptr, bytesize, NULL, hStream);
}

CUresult CUDAAPI cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
					 CUstream hStream)
{
	return alloc_async(HOOK_cuMemAllocFromPoolAsync, dptr, bytesize, pool, hStream);
}

CUresult CUDAAPI cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
					      CUstream hStream)
{
	return alloc_async(HOOK_cuMemAllocFromPoolAsync_ptsz, dptr, bytesize, pool, hStream);
}

CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
	real_cuMemAllocManaged_t real = REAL(cuMemAllocManaged);
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(dptr, bytesize, flags) : CUDA_ERROR_NOT_FOUND;
	/* Managed memory migrates on its own: account for it, never place it. */
	rc = real(dptr, bytesize, flags);
	if (rc == CUDA_SUCCESS)
		record_managed(*dptr, bytesize);
	hook_leave();
	return rc;
}

/* The driver's free for @id: cuMemFree_v2, or cuMemFreeAsync(_ptsz) on @stream. */
static CUresult driver_free(enum hook_id id, CUdeviceptr dptr, CUstream stream)
{
	void *real = real_fn(id);

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (id == HOOK_cuMemFree_v2)
		return ((real_cuMemFree_v2_t)real)(dptr);
	return ((real_cuMemFreeAsync_t)real)(dptr, stream);
}

static void synchronize_context(void *rc)
{
	real_cuCtxSynchronize_t sync = REAL(cuCtxSynchronize);

	*(CUresult *)rc = sync ? sync() : CUDA_ERROR_NOT_FOUND;
}

/*
 * cuMemFree of a spilled piece synchronizes like cudaFree, in the context that owns the
 * piece (not the caller's): no queued kernel may still read it.  While a stream captures, the
 * driver refuses that (900) and invalidates the capture, so the piece is held instead; any
 * other refusal (a forked child's CUDA_ERROR_NOT_INITIALIZED) is the caller's answer, and the
 * piece stays allocated.
 */
static CUresult free_spilled_now(struct alloc_rec *r)
{
	CUresult rc = CUDA_SUCCESS;

	if (captures_under_way()) {
		spill_free_captured(r);
		return CUDA_SUCCESS;
	}
	with_context(r->ctx, synchronize_context, &rc);
	if (rc == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED ||
	    rc == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED) {
		spw_log(LOG_INFO, "cuCtxSynchronize before freeing spilled %#llx: %s",
			(unsigned long long)r->base, cu_error_name(rc));
		spill_free_captured(r);
		return CUDA_SUCCESS;
	}
	if (rc != CUDA_SUCCESS) {
		if (range_insert(r) != 0)
			free(r);
		return rc;
	}
	spill_free_now(r);
	spill_reclaim(0);
	return CUDA_SUCCESS;
}

/* No event goes into a capturing stream (it would be captured: querying it gives 907). */
static CUresult free_spilled_ordered(struct alloc_rec *r, CUstream stream, int per_thread)
{
	if (stream_capture_status(stream, per_thread) != CU_STREAM_CAPTURE_STATUS_NONE) {
		spill_free_captured(r);
		return CUDA_SUCCESS;
	}
	spill_reclaim(0);
	return spill_free_ordered(r, stream, per_thread);
}

/*
 * A split allocation (core/split.c) is unmapped once the work that may still use it is done:
 * the context for cuMemFree (it synchronizes, like cudaFree), the stream for cuMemFreeAsync.
 * Neither may be waited for during a capture: then it stays mapped and recorded until its
 * context goes, as spilled pieces do.
 */
static CUresult free_split(enum hook_id id, struct alloc_rec *r, CUstream stream)
{
	int per_thread = id == HOOK_cuMemFreeAsync_ptsz;
	CUresult rc = CUDA_SUCCESS;

	if (captures_under_way()) {
		/* Waiting now would be refused and invalidate the capture (driver_facts). */
		rc = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	} else if (id == HOOK_cuMemFree_v2) {
		with_context(r->ctx, synchronize_context, &rc);
	} else if (stream_capture_status(stream, per_thread) != CU_STREAM_CAPTURE_STATUS_NONE) {
		rc = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	} else {
		real_cuStreamSynchronize_t sync = per_thread ? REAL(cuStreamSynchronize_ptsz)
							     : REAL(cuStreamSynchronize);

		rc = sync ? sync(stream) : CUDA_ERROR_NOT_FOUND;
	}
	if (rc == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED ||
	    rc == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED) {
		spw_log(LOG_INFO, "split %#llx freed during a capture: kept until its context goes",
			(unsigned long long)r->base);
		counter_inc(CNT_capture_held_frees);
		if (range_insert(r) != 0)
			free(r);
		return CUDA_SUCCESS;
	}
	if (rc != CUDA_SUCCESS) {
		/* Not freed: the application still owns it and may try again. */
		if (range_insert(r) != 0)
			free(r);
		return rc;
	}
	split_free(r);
	spill_reclaim(0);
	return CUDA_SUCCESS;
}

/*
 * cuMemFree_v2 and cuMemFreeAsync(_ptsz) (@id).  Ours out of the registry first: once
 * freed, the driver may hand the address to another thread.
 */
static CUresult free_any(enum hook_id id, CUdeviceptr dptr, CUstream stream)
{
	struct alloc_rec *r;
	CUresult rc;

	if (!hook_enter(real_fn(id), !dptr))
		return driver_free(id, dptr, stream);
	counter_inc(CNT_frees);
	r = vram_remove(dptr);
	if (r) {
		rc = driver_free(id, dptr, stream);
		if (rc == CUDA_SUCCESS)
			placement_forget(r);
		else if (vram_insert(r) != 0)
			free(r);
	} else if ((r = range_remove_exact(dptr, REC_SPILL))) {
		rc = CUDA_SUCCESS;
		if (id == HOOK_cuMemFree_v2)
			rc = free_spilled_now(r);
		else
			rc = free_spilled_ordered(r, stream, id == HOOK_cuMemFreeAsync_ptsz);
	} else if ((r = range_remove_exact(dptr, REC_SPLIT))) {
		rc = free_split(id, r, stream);
	} else {
		counter_inc(CNT_passthrough_frees);
		rc = driver_free(id, dptr, stream);
	}
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuMemFree_v2(CUdeviceptr dptr)
{
	return free_any(HOOK_cuMemFree_v2, dptr, NULL);
}

CUresult CUDAAPI cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
	return free_any(HOOK_cuMemFreeAsync, dptr, hStream);
}

CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream)
{
	return free_any(HOOK_cuMemFreeAsync_ptsz, dptr, hStream);
}
