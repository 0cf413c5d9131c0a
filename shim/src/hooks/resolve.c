/*
 * Symbol resolution: applications that look functions up at run time (dlsym,
 * cuGetProcAddress) are handed our wrappers instead of the driver's functions.
 */
#define _GNU_SOURCE
#include "hooks.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

/* NULL for CU_REAL/NVML_REAL entries: those names are never substituted. */
static void *const hook_wrappers[HOOK_COUNT] = {
#define CU_HOOK(name, params) (void *)&name,
#define CU_REAL(name, params) NULL,
#define NVML_HOOK	      CU_HOOK
#define NVML_REAL	      CU_REAL
#include "core/driver.def"
};

/* ---- dlsym ---- */

static const char *base_name(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : (path ? path : "");
}

static int is_driver_file(const char *path)
{
	const char *b = base_name(path);

	return !strncmp(b, "libcuda.so", 10) || !strncmp(b, "libnvidia-ml.so", 15);
}

static int handle_is_driver(void *handle)
{
	struct link_map *lm = NULL;

	if (handle == RTLD_DEFAULT)
		return 1;
	if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
		return 0;
	return is_driver_file(lm->l_name);
}

/* Lookups the driver (or the shim) makes for itself must get the real functions. */
static int caller_is_driver_or_shim(const void *caller)
{
	static int anchor;
	Dl_info info, self;

	if (!dladdr(caller, &info))
		return 0;
	if (dladdr(&anchor, &self) && info.dli_fbase == self.dli_fbase)
		return 1;
	return is_driver_file(info.dli_fname);
}

static void *dlsym_hook(void *handle, const char *name, const void *caller)
{
	void *p = real_dlsym(handle, name);
	int id;

	if (!p || !name || handle == RTLD_NEXT)
		return p;
	if (strncmp(name, "cu", 2) && strncmp(name, "nvml", 4))
		return p;
	id = hook_find(name);
	if (id < 0 || !handle_is_driver(handle) || caller_is_driver_or_shim(caller))
		return p;
	counter_inc(CNT_dlsym_wrapped);
	return hook_wrappers[id];
}

/*
 * Exported as dlsym@@GLIBC_2.34 (what programs built on glibc >= 2.34 bind to) and
 * dlsym@GLIBC_2.2.5 (older programs); see exports.map.
 */
void *spw_dlsym_234(void *handle, const char *name)
{
	return dlsym_hook(handle, name, __builtin_return_address(0));
}

void *spw_dlsym_225(void *handle, const char *name)
{
	return dlsym_hook(handle, name, __builtin_return_address(0));
}

__asm__(".symver spw_dlsym_234, dlsym@@GLIBC_2.34");
__asm__(".symver spw_dlsym_225, dlsym@GLIBC_2.2.5");

/* ---- cuGetProcAddress ---- */

/*
 * Name what the driver returned and return our wrapper for that exact variant
 * (cuMemAlloc at 3020 -> cuMemAlloc_v2; per-thread flag -> cuMemAllocAsync_ptsz).
 * Only an exact symbol match counts: dladdr names the nearest symbol below an address.
 */
static void *wrap_driver_pointer(void *fn)
{
	Dl_info info;
	int id;

	if (!fn || !dladdr(fn, &info) || !info.dli_sname || info.dli_saddr != fn ||
	    !is_driver_file(info.dli_fname))
		return fn;
	id = hook_find(info.dli_sname);
	if (id < 0)
		return fn;
	counter_inc(CNT_getproc_wrapped);
	return hook_wrappers[id];
}

/* cuGetProcAddress_v2 and the 4-argument original (@symbolStatus unused): one body. */
static CUresult get_proc_address(enum hook_id id, const char *symbol, void **pfn, int cudaVersion,
				 cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
	void *real = real_fn(id);
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (id == HOOK_cuGetProcAddress_v2)
		rc = ((real_cuGetProcAddress_v2_t)real)(symbol, pfn, cudaVersion, flags,
							symbolStatus);
	else
		rc = ((real_cuGetProcAddress_t)real)(symbol, pfn, cudaVersion, flags);
	if (!hook_enter(real, 0))
		return rc;
	counter_inc(CNT_getproc_calls);
	if (rc == CUDA_SUCCESS && pfn)
		*pfn = wrap_driver_pointer(*pfn);
	spw_log(LOG_DEBUG, "%s(%s, %d, %llu) = %d",
		id == HOOK_cuGetProcAddress_v2 ? "cuGetProcAddress_v2" : "cuGetProcAddress",
		symbol ? symbol : "(null)", cudaVersion, (unsigned long long)flags, (int)rc);
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
				     cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
	return get_proc_address(HOOK_cuGetProcAddress_v2, symbol, pfn, cudaVersion, flags,
				symbolStatus);
}

CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
	return get_proc_address(HOOK_cuGetProcAddress, symbol, pfn, cudaVersion, flags, NULL);
}
