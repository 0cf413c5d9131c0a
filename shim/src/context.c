/* The calling thread's context and device, and context teardown. */
#include "shim.h"

#include <stdlib.h>

int ctx_current_dev(CUcontext *ctx, int *dev)
{
	real_cuCtxGetCurrent_t get_ctx = REAL(cuCtxGetCurrent);
	real_cuCtxGetDevice_t get_dev = REAL(cuCtxGetDevice);
	CUdevice d;

	/* Threads without a current context (PyTorch's loader threads) get -1, not device 0. */
	if (!get_ctx || !get_dev || get_ctx(ctx) != CUDA_SUCCESS || !*ctx)
		return -1;
	if (get_dev(&d) != CUDA_SUCCESS)
		return -1;
	*dev = (int)d;
	return 0;
}

void with_context(CUcontext ctx, void (*fn)(void *), void *arg)
{
	real_cuCtxPushCurrent_v2_t push = REAL(cuCtxPushCurrent_v2);
	real_cuCtxPopCurrent_v2_t pop = REAL(cuCtxPopCurrent_v2);
	CUcontext popped;

	if (push && pop && ctx && push(ctx) == CUDA_SUCCESS) {
		fn(arg);
		pop(&popped);
	} else {
		fn(arg);
	}
}

/* The driver frees a context's VRAM with it; drop our records and the spill it owned. */
static void drop_record(struct alloc_rec *r)
{
	switch (r->kind) {
	case REC_VRAM:
	case REC_ASYNC:
		stats_vram(r->dev, -(int64_t)r->size);
		free(r);
		break;
	case REC_MANAGED:
		stats_managed(-(int64_t)r->size);
		free(r);
		break;
	case REC_SPILL:
		spill_free_now(r);
		break;
	case REC_VMM_MAP:
		break;
	}
}

static void drop_context(CUcontext ctx)
{
	registry_drop_context(ctx, drop_record);
	spill_drop_context(ctx);
}

CUresult CUDAAPI cuCtxDestroy_v2(CUcontext ctx)
{
	real_cuCtxDestroy_v2_t real = REAL(cuCtxDestroy_v2);

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (spw_depth || !ctx)
		return real(ctx);
	spw_init();
	spw_depth++;
	/* Before the real destroy: unregistering the arenas needs the context alive. */
	drop_context(ctx);
	spw_depth--;
	return real(ctx);
}

CUresult CUDAAPI cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
	real_cuDevicePrimaryCtxReset_v2_t real = REAL(cuDevicePrimaryCtxReset_v2);
	real_cuDevicePrimaryCtxGetState_t state = REAL(cuDevicePrimaryCtxGetState);
	real_cuDevicePrimaryCtxRetain_t retain = REAL(cuDevicePrimaryCtxRetain);
	real_cuDevicePrimaryCtxRelease_v2_t release = REAL(cuDevicePrimaryCtxRelease_v2);
	unsigned int flags;
	int active = 0;
	CUcontext ctx = NULL;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (spw_depth)
		return real(dev);
	spw_init();
	spw_depth++;
	/* An inactive primary context owns nothing; an active one is named by retain+release. */
	if (state && retain && release && state(dev, &flags, &active) == CUDA_SUCCESS && active &&
	    retain(&ctx, dev) == CUDA_SUCCESS) {
		release(dev);
		drop_context(ctx);
	}
	spw_depth--;
	return real(dev);
}
