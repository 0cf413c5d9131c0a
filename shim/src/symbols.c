/*
 * Symbol resolution: where the real driver functions come from, and how applications that
 * look functions up at run time (dlsym, cuGetProcAddress) are handed our wrappers.
 */
#define _GNU_SOURCE
#include "shim.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const hook_names[HOOK_COUNT] = {
#define CU_HOOK(name, params) #name,
#define CU_REAL CU_HOOK
#define NVML_HOOK CU_HOOK
#define NVML_REAL CU_HOOK
#include "hooks.def"
#undef CU_HOOK
#undef CU_REAL
#undef NVML_HOOK
#undef NVML_REAL
};

static const unsigned char hook_libs[HOOK_COUNT] = {
#define CU_HOOK(name, params) LIB_CUDA,
#define CU_REAL CU_HOOK
#define NVML_HOOK(name, params) LIB_NVML,
#define NVML_REAL NVML_HOOK
#include "hooks.def"
#undef CU_HOOK
#undef CU_REAL
#undef NVML_HOOK
#undef NVML_REAL
};

/* NULL for CU_REAL/NVML_REAL entries: those names are never substituted. */
static void *const hook_wrappers[HOOK_COUNT] = {
#define CU_HOOK(name, params) (void *)&name,
#define CU_REAL(name, params) NULL,
#define NVML_HOOK CU_HOOK
#define NVML_REAL CU_REAL
#include "hooks.def"
#undef CU_HOOK
#undef CU_REAL
#undef NVML_HOOK
#undef NVML_REAL
};

/* ---- the real dlsym, and the driver libraries by handle ---- */

typedef void *(*dlsym_fn)(void *, const char *);
static dlsym_fn next_dlsym;
static pthread_once_t dlsym_once = PTHREAD_ONCE_INIT;

static void find_next_dlsym(void)
{
	/* glibc >= 2.34 moved dlsym into libc at GLIBC_2.34; older programs bind GLIBC_2.2.5. */
	next_dlsym = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
	if (!next_dlsym)
		next_dlsym = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
}

void *real_dlsym(void *handle, const char *name)
{
	pthread_once(&dlsym_once, find_next_dlsym);
	return next_dlsym ? next_dlsym(handle, name) : NULL;
}

static void *cuda_lib, *nvml_lib;
static pthread_once_t cuda_once = PTHREAD_ONCE_INIT, nvml_once = PTHREAD_ONCE_INIT;

static void open_cuda(void)
{
	cuda_lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
}

static void open_nvml(void)
{
	nvml_lib = dlopen("libnvidia-ml.so.1", RTLD_LAZY | RTLD_LOCAL);
}

void *driver_handle(void)
{
	pthread_once(&cuda_once, open_cuda);
	return cuda_lib;
}

static void *nvml_handle(void)
{
	pthread_once(&nvml_once, open_nvml);
	return nvml_lib;
}

/* Resolved pointers; MISSING marks a name the driver lacks so we ask only once. */
static char missing_marker;
#define MISSING ((void *)&missing_marker)
static void *_Atomic real_ptrs[HOOK_COUNT];

void *real_fn(enum hook_id id)
{
	void *p = atomic_load_explicit(&real_ptrs[id], memory_order_acquire);
	void *lib;

	if (p)
		return p == MISSING ? NULL : p;
	lib = hook_libs[id] == LIB_CUDA ? driver_handle() : nvml_handle();
	p = lib ? real_dlsym(lib, hook_names[id]) : NULL;
	if (!p)
		spw_log(LOG_DEBUG, "the driver has no %s", hook_names[id]);
	atomic_store_explicit(&real_ptrs[id], p ? p : MISSING, memory_order_release);
	return p;
}

/* ---- names to hooks ---- */

static int sorted[HOOK_COUNT], sorted_count;
static pthread_once_t sort_once = PTHREAD_ONCE_INIT;

static int by_name(const void *a, const void *b)
{
	return strcmp(hook_names[*(const int *)a], hook_names[*(const int *)b]);
}

static void sort_hooks(void)
{
	for (int i = 0; i < HOOK_COUNT; i++)
		if (hook_wrappers[i])
			sorted[sorted_count++] = i;
	qsort(sorted, (size_t)sorted_count, sizeof(int), by_name);
}

static int by_key(const void *key, const void *elem)
{
	return strcmp(key, hook_names[*(const int *)elem]);
}

int hook_find(const char *name)
{
	const int *hit;

	if (!name)
		return -1;
	pthread_once(&sort_once, sort_hooks);
	hit = bsearch(name, sorted, (size_t)sorted_count, sizeof(int), by_key);
	return hit ? *hit : -1;
}

void *hook_wrapper(int id)
{
	return id >= 0 && id < HOOK_COUNT ? hook_wrappers[id] : NULL;
}

const char *hook_name(int id)
{
	return id >= 0 && id < HOOK_COUNT ? hook_names[id] : NULL;
}

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
	stats_count(CNT_dlsym_wrapped);
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
	stats_count(CNT_getproc_wrapped);
	return hook_wrappers[id];
}

CUresult CUDAAPI cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
				     cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
	real_cuGetProcAddress_v2_t real = REAL(cuGetProcAddress_v2);
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	rc = real(symbol, pfn, cudaVersion, flags, symbolStatus);
	if (spw_depth)
		return rc;
	spw_init();
	stats_count(CNT_getproc_calls);
	if (rc == CUDA_SUCCESS && pfn)
		*pfn = wrap_driver_pointer(*pfn);
	spw_log(LOG_DEBUG, "cuGetProcAddress_v2(%s, %d, %llu) = %d", symbol ? symbol : "(null)",
		cudaVersion, (unsigned long long)flags, (int)rc);
	return rc;
}

CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
	real_cuGetProcAddress_t real = REAL(cuGetProcAddress);
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	rc = real(symbol, pfn, cudaVersion, flags);
	if (spw_depth)
		return rc;
	spw_init();
	stats_count(CNT_getproc_calls);
	if (rc == CUDA_SUCCESS && pfn)
		*pfn = wrap_driver_pointer(*pfn);
	spw_log(LOG_DEBUG, "cuGetProcAddress(%s, %d, %llu) = %d", symbol ? symbol : "(null)",
		cudaVersion, (unsigned long long)flags, (int)rc);
	return rc;
}
