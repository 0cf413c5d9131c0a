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
#undef CU_HOOK
#undef CU_REAL
#undef NVML_HOOK
#undef NVML_REAL

/*
 * Recursion guard: the driver or our own helpers may call an exported cu* symbol while we
 * are inside a wrapper; those inner calls go straight to the driver.
 */
extern __thread int spw_depth;

#endif
