/* Context teardown: the driver frees what the context owned, so must we. */
#include "hooks.h"

CUresult CUDAAPI cuCtxDestroy_v2(CUcontext ctx)
{
	real_cuCtxDestroy_v2_t real = REAL(cuCtxDestroy_v2);

	if (!hook_enter(real, !ctx))
		return real ? real(ctx) : CUDA_ERROR_NOT_FOUND;
	/* Before the real destroy: unregistering the arenas needs the context alive. */
	placement_drop_context(ctx);
	hook_leave();
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

	if (!hook_enter(real, 0))
		return real ? real(dev) : CUDA_ERROR_NOT_FOUND;
	/* An inactive primary context owns nothing; an active one is named by retain+release. */
	if (state && retain && release && state(dev, &flags, &active) == CUDA_SUCCESS && active &&
	    retain(&ctx, dev) == CUDA_SUCCESS) {
		release(dev);
		placement_drop_context(ctx);
	}
	hook_leave();
	return real(dev);
}
