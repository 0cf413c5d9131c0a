/*
 * Where the real driver functions come from: the driver libraries by handle, the real dlsym,
 * and the names in driver.def resolved once each.
 */
#define _GNU_SOURCE
#include "core.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const hook_names[HOOK_COUNT] = {
#define CU_HOOK(name, params) #name,
#define CU_REAL		      CU_HOOK
#define NVML_HOOK	      CU_HOOK
#define NVML_REAL	      CU_HOOK
#include "driver.def"
};

static const unsigned char hook_libs[HOOK_COUNT] = {
#define CU_HOOK(name, params)	LIB_CUDA,
#define CU_REAL			CU_HOOK
#define NVML_HOOK(name, params) LIB_NVML,
#define NVML_REAL		NVML_HOOK
#include "driver.def"
};

/* Which entries are hooked (CU_HOOK/NVML_HOOK): only those names are substituted. */
static const unsigned char hook_hooked[HOOK_COUNT] = {
#define CU_HOOK(name, params) 1,
#define CU_REAL(name, params) 0,
#define NVML_HOOK	      CU_HOOK
#define NVML_REAL	      CU_REAL
#include "driver.def"
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
		if (hook_hooked[i])
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
