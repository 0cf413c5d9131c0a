/*
 * cuMemAlloc and friends: place each request in VRAM or in spilled host memory, record it,
 * and route every free through the registry (pointers we do not know go to the driver as-is).
 */
#include "shim.h"

#include <stdlib.h>

/* One way of getting VRAM from the driver, with its arguments. */
struct vram_request {
	CUresult (*alloc)(struct vram_request *q, CUdeviceptr *dptr);
	size_t size;		/* bytes the placement is decided on */
	size_t width, height;	/* pitch */
	size_t *pitch;
	unsigned int elem;
	CUstream stream;
	CUmemoryPool pool;
	enum hook_id id;
};

static CUresult alloc_plain(struct vram_request *q, CUdeviceptr *dptr)
{
	real_cuMemAlloc_v2_t f = REAL(cuMemAlloc_v2);

	return f ? f(dptr, q->size) : CUDA_ERROR_NOT_FOUND;
}

static CUresult alloc_pitch(struct vram_request *q, CUdeviceptr *dptr)
{
	real_cuMemAllocPitch_v2_t f = REAL(cuMemAllocPitch_v2);
	CUresult rc;

	if (!f)
		return CUDA_ERROR_NOT_FOUND;
	rc = f(dptr, q->pitch, q->width, q->height, q->elem);
	if (rc == CUDA_SUCCESS)
		q->size = *q->pitch * q->height;
	return rc;
}

static CUresult alloc_async(struct vram_request *q, CUdeviceptr *dptr)
{
	real_cuMemAllocAsync_t f = (real_cuMemAllocAsync_t)real_fn(q->id);

	return f ? f(dptr, q->size, q->stream) : CUDA_ERROR_NOT_FOUND;
}

static CUresult alloc_from_pool(struct vram_request *q, CUdeviceptr *dptr)
{
	real_cuMemAllocFromPoolAsync_t f = (real_cuMemAllocFromPoolAsync_t)real_fn(q->id);

	return f ? f(dptr, q->size, q->pool, q->stream) : CUDA_ERROR_NOT_FOUND;
}

/* Record a VRAM allocation; @counted bytes of it are already in the account (taken). */
static void record_vram(CUdeviceptr p, size_t size, int dev, CUcontext ctx, enum rec_kind kind,
			size_t counted)
{
	struct alloc_rec *r = calloc(1, sizeof(*r));

	stats_vram(dev, (int64_t)size - (int64_t)counted);
	if (!r) {
		spw_log(LOG_WARN, "out of memory for a record: %#llx stays unaccounted",
			(unsigned long long)p);
		stats_vram(dev, -(int64_t)size);
		return;
	}
	r->base = p;
	r->size = size;
	r->dev = dev;
	r->ctx = ctx;
	r->kind = kind;
	if (vram_insert(r) != 0) {
		spw_log(LOG_ERROR, "the driver returned %#llx twice", (unsigned long long)p);
		stats_vram(dev, -(int64_t)size);
		free(r);
	}
}

/*
 * Try VRAM.  Budgeted requests take their share of the limit first, atomically; large ones
 * stay out of SPILLWAY_RESERVE unless @may_use_reserve (when spilling them failed).
 */
static CUresult try_vram(const struct spw_config *c, struct vram_request *q, CUdeviceptr *dptr,
			 int dev, CUcontext ctx, enum rec_kind kind, int may_use_reserve)
{
	size_t taken = 0;
	CUresult rc;

	if (policy_budgeted(c, q->size)) {
		if (!stats_vram_take(dev, q->size, policy_ceiling(c, q->size, may_use_reserve)))
			return CUDA_ERROR_OUT_OF_MEMORY;
		taken = q->size;
	}
	rc = q->alloc(q, dptr);
	if (rc == CUDA_SUCCESS)
		record_vram(*dptr, q->size, dev, ctx, kind, taken);
	else if (taken)
		stats_vram(dev, -(int64_t)taken);
	return rc;
}

static CUresult place(struct vram_request *q, CUdeviceptr *dptr, enum rec_kind kind)
{
	const struct spw_config *c = spw_config();
	struct policy_input in = { .size = q->size, .vram_free = UINT64_MAX };
	enum placement where;
	CUcontext ctx;
	CUresult rc;
	int dev;

	/* No context: the driver will refuse; let it say so. */
	if (ctx_current_dev(&ctx, &dev) != 0)
		return q->alloc(q, dptr);
	stats_count(CNT_allocs);
	in.vram_used = stats_vram_used(dev);
	if (policy_needs_free(c, q->size, in.vram_used))
		in.vram_free = vram_free(c, dev, q->size, &in.vram_total);
	where = policy_decide(c, &in);
	if (where == PLACE_VRAM) {
		rc = try_vram(c, q, dptr, dev, ctx, kind, 0);
		if (rc != CUDA_ERROR_OUT_OF_MEMORY || c->backend == BACKEND_OFF)
			return rc;
		spw_log(LOG_INFO, "no VRAM for %zu bytes on device %d: spilling", q->size, dev);
	}
	rc = spill_alloc(q->size, dev, ctx, dptr);
	if (rc == CUDA_SUCCESS || where == PLACE_VRAM)
		return rc;
	/* Spilling failed: VRAM is still better than an error, within the budget (reserve included). */
	return try_vram(c, q, dptr, dev, ctx, kind, 1);
}

CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
	real_cuMemAlloc_v2_t real = REAL(cuMemAlloc_v2);
	struct vram_request q = { .alloc = alloc_plain, .size = bytesize };
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
	struct vram_request q = { .alloc = alloc_pitch, .width = WidthInBytes, .height = Height,
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
	struct vram_request q = { .alloc = pool ? alloc_from_pool : alloc_async, .size = bytesize,
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
	CUcontext ctx = NULL;
	CUresult rc;
	int dev = -1;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (spw_depth)
		return real(dptr, bytesize, flags);
	spw_init();
	spw_depth++;
	/* Managed memory migrates on its own: account for it, never place it. */
	rc = real(dptr, bytesize, flags);
	if (rc == CUDA_SUCCESS) {
		struct alloc_rec *r = calloc(1, sizeof(*r));

		ctx_current_dev(&ctx, &dev);
		if (r) {
			r->base = *dptr;
			r->size = bytesize;
			r->dev = dev;
			r->ctx = ctx;
			r->kind = REC_MANAGED;
			if (vram_insert(r) == 0)
				stats_managed((int64_t)bytesize);
			else
				free(r);
		}
	}
	spw_depth--;
	return rc;
}

/* Forget a VRAM/managed record whose memory the driver has just freed. */
static void forget(struct alloc_rec *r)
{
	if (r->kind == REC_MANAGED)
		stats_managed(-(int64_t)r->size);
	else
		stats_vram(r->dev, -(int64_t)r->size);
	free(r);
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
	stats_count(CNT_frees);
	/* Out of the registry first: once freed, the driver may hand the address to another thread. */
	r = vram_remove(dptr);
	if (r) {
		rc = real(dptr);
		if (rc == CUDA_SUCCESS)
			forget(r);
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
		stats_count(CNT_passthrough_frees);
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
	stats_count(CNT_frees);
	r = vram_remove(dptr);
	if (r) {
		rc = real(dptr, stream);
		if (rc == CUDA_SUCCESS)
			forget(r);
		else if (vram_insert(r) != 0)
			free(r);
	} else if ((r = range_remove_exact(dptr, REC_SPILL))) {
		spill_reclaim(0);
		spill_free_ordered(r, stream, id == HOOK_cuMemFreeAsync_ptsz);
		rc = CUDA_SUCCESS;
	} else {
		stats_count(CNT_passthrough_frees);
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
