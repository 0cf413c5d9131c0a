/*
 * The exported wrappers' side of the shim: everything in core/, the wrappers' declarations
 * (generated from core/driver.def) and the recursion guard.
 */
#ifndef SPILLWAY_HOOKS_H
#define SPILLWAY_HOOKS_H

#include "core/core.h"

/* Wrapper declarations (cuda.h already declares most; identical redeclarations are fine). */
#define CU_HOOK(name, params) CUresult CUDAAPI name params;
#define CU_REAL(name, params)
#define NVML_HOOK(name, params) nvmlReturn_t name params;
#define NVML_REAL(name, params)
#include "core/driver.def"

/*
 * Recursion guard: the driver or our own helpers may call an exported cu* symbol while we
 * are inside a wrapper; those inner calls go straight to the driver.
 */
extern __thread int spw_depth;

/*
 * Every wrapper's prologue.  Returns 1 when the wrapper is to do its work, which then ends
 * with hook_leave(); returns 0 when the call goes to the driver as it is, which the wrapper
 * then does itself (`return real ? real(...) : CUDA_ERROR_NOT_FOUND;`):
 *   - the driver lacks the function (@real is NULL: the wrapper returns NOT_FOUND),
 *   - we are inside the shim already (the driver's own or our helpers' calls),
 *   - @pass_through: arguments the shim leaves to the driver to judge.
 * Otherwise it initialises the shim (once, lazily) and enters the recursion guard.
 */
static inline int hook_enter(const void *real, int pass_through)
{
	if (!real || spw_depth || pass_through)
		return 0;
	spw_init();
	spw_depth++;
	return 1;
}

static inline void hook_leave(void)
{
	spw_depth--;
}

#endif
