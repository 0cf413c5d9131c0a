/* The calling thread's context and device; running cleanup under another context. */
#include "core.h"

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
