/*
 * The driver's functions, generated from driver.def: ids and the typed pointers to the real
 * functions, resolved on first use.  The wrappers' declarations are in hooks/hooks.h.
 */
#ifndef SPILLWAY_DRIVER_H
#define SPILLWAY_DRIVER_H

#include <cuda.h>
#include "nvml_types.h"

/* cuda.h maps cuGetProcAddress to _v2; the shim must also export the 4-argument original. */
#undef cuGetProcAddress

enum hook_lib { LIB_CUDA, LIB_NVML };

enum hook_id {
#define CU_HOOK(name, params) HOOK_##name,
#define CU_REAL		      CU_HOOK
#define NVML_HOOK	      CU_HOOK
#define NVML_REAL	      CU_HOOK
#include "driver.def"
	HOOK_COUNT
};

/* real_<name>_t: the type of the driver's own function. */
#define CU_HOOK(name, params)	typedef CUresult(CUDAAPI *real_##name##_t) params;
#define CU_REAL			CU_HOOK
#define NVML_HOOK(name, params) typedef nvmlReturn_t(*real_##name##_t) params;
#define NVML_REAL		NVML_HOOK
#include "driver.def"

/* The driver's function for @id, or NULL when the driver lacks it (callers then return NOT_FOUND). */
void *real_fn(enum hook_id id);
#define REAL(name) ((real_##name##_t)real_fn(HOOK_##name))

/* Hooked id (a CU_HOOK or NVML_HOOK entry) for @name, or -1 for names the shim does not wrap. */
int hook_find(const char *name);

/* The driver handle (dlopen("libcuda.so.1")); NULL when there is no driver. */
void *driver_handle(void);
/* Resolve a driver symbol on the real handle, bypassing our dlsym hook. */
void *real_dlsym(void *handle, const char *name);

#endif
