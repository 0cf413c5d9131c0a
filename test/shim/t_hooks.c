/*
 * Interposition: exported wrappers, the dlsym hook (this program is linked against the
 * build machine's glibc, so its dlsym is dlsym@GLIBC_2.34), cuGetProcAddress naming the exact
 * variant, NOT_FOUND for what the driver lacks, free routing.
 */
#include "shim_test.h"

#include <cuda.h>
#include <pthread.h>
#undef cuGetProcAddress

typedef CUresult (*getproc_v2_t)(const char *, void **, int, cuuint64_t,
				 CUdriverProcAddressQueryResult *);
typedef CUresult (*getproc_v1_t)(const char *, void **, int, cuuint64_t);
typedef CUresult (*alloc_t)(CUdeviceptr *, size_t);
typedef CUresult (*free_t)(CUdeviceptr);
typedef CUresult (*pool_alloc_t)(CUdeviceptr *, size_t, CUmemoryPool, CUstream);

static void *cuda, *nvml;

static void *no_context_thread(void *arg)
{
	CUdeviceptr p = 0;
	size_t f, t;
	CUresult *rc = arg;

	rc[0] = cuMemAlloc_v2(&p, 4 * MiB);
	rc[1] = cuMemGetInfo_v2(&f, &t);
	return NULL;
}

TEST(exported_wrappers)
{
	CUdeviceptr p = 0;
	size_t pitch = 0;
	CUresult rc;

	ok(!strcmp(file_of((void *)&cuMemAlloc_v2), "libspillway-cuda.so"),
	   "a program linked with -lcuda calls the shim's cuMemAlloc_v2 (got %s)",
	   file_of((void *)&cuMemAlloc_v2));
	rc = cuMemAlloc_v2(&p, 4 * MiB);
	ok(rc == CUDA_SUCCESS && p, "cuMemAlloc_v2 of 4 MiB succeeds");
	ok(fake_calls("cuMemAlloc_v2") == 1, "the shim forwarded it to the driver once");
	ok(stat_of("\"device\":0", "vram_bytes") == (long long)(4 * MiB),
	   "the shim accounts 4 MiB of VRAM on device 0 (%lld)",
	   stat_of("\"device\":0", "vram_bytes"));
	ok(cuMemFree_v2(p) == CUDA_SUCCESS, "cuMemFree_v2 frees it");
	ok(stat_of("\"device\":0", "vram_bytes") == 0, "and the account is back to 0");
	ok(cuMemFree_v2((CUdeviceptr)0x1234000) == CUDA_ERROR_INVALID_VALUE,
	   "an unknown pointer goes straight to the driver, which refuses it");
	ok(stat_of(NULL, "passthrough_frees") == 1, "counted as a pass-through free");
	rc = cuMemAllocPitch_v2(&p, &pitch, 1000, 10, 4);
	ok(rc == CUDA_SUCCESS && pitch == 1024,
	   "cuMemAllocPitch_v2 passes the driver's pitch (%zu)", pitch);
	ok(stat_of("\"device\":0", "vram_bytes") == 10240, "pitch * height is accounted");
	ok(cuMemFree_v2(p) == CUDA_SUCCESS, "and freed");
	rc = cuMemAllocManaged(&p, 8 * MiB, CU_MEM_ATTACH_GLOBAL);
	ok(rc == CUDA_SUCCESS && stat_of(NULL, "managed_bytes") == (long long)(8 * MiB) &&
		   stat_of("\"device\":0", "vram_bytes") == 0,
	   "managed memory is accounted, not as VRAM");
	ok(cuMemFree_v2(p) == CUDA_SUCCESS && stat_of(NULL, "managed_bytes") == 0,
	   "and its free is routed back");
}

TEST(dlsym_hook)
{
	void *fn;

	fn = dlsym(cuda, "cuMemAlloc_v2");
	ok(!strcmp(file_of(fn), "libspillway-cuda.so") && fn == (void *)&cuMemAlloc_v2,
	   "dlsym(libcuda handle, cuMemAlloc_v2) gives the shim's wrapper (%s)", file_of(fn));
	fn = dlsym(cuda, "cuCtxGetDevice");
	ok(!strcmp(file_of(fn), "libcuda.so.1"), "an unhooked name gives the driver's own (%s)",
	   file_of(fn));
	fn = dlsym(RTLD_NEXT, "cuMemAlloc_v2");
	ok(!strcmp(file_of(fn), "libcuda.so.1"), "RTLD_NEXT is never substituted (%s)",
	   file_of(fn));
	fn = dlsym(RTLD_DEFAULT, "cuMemAlloc_v2");
	ok(!strcmp(file_of(fn), "libspillway-cuda.so"), "RTLD_DEFAULT gives the shim");
	ok(dlsym(cuda, "cuNoSuchFunction") == NULL, "a name nobody has stays NULL");
	{
		void *(*old_dlsym)(void *, const char *) = (void *(*)(void *, const char *))dlvsym(
			RTLD_DEFAULT, "dlsym", "GLIBC_2.2.5");
		void *(*new_dlsym)(void *, const char *) = (void *(*)(void *, const char *))dlvsym(
			RTLD_DEFAULT, "dlsym", "GLIBC_2.34");

		ok(old_dlsym && !strcmp(file_of((void *)old_dlsym), "libspillway-cuda.so") &&
			   !strcmp(file_of(old_dlsym(cuda, "cuMemFree_v2")), "libspillway-cuda.so"),
		   "dlsym@GLIBC_2.2.5 is the shim's too");
		ok(new_dlsym && !strcmp(file_of((void *)new_dlsym), "libspillway-cuda.so"),
		   "dlsym@GLIBC_2.34 resolves to the shim");
	}
	{
		void *(*self_lookup)(const char *) =
			(void *(*)(const char *))dlsym(RTLD_DEFAULT, "fake_self_lookup");

		fn = self_lookup ? self_lookup("cuMemAlloc_v2") : NULL;
		ok(!strcmp(file_of(fn), "libcuda.so.1"),
		   "a lookup the driver makes on itself gets the driver's own function (%s)",
		   file_of(fn));
	}
	fn = dlsym(nvml, "nvmlDeviceGetMemoryInfo_v2");
	ok(!strcmp(file_of(fn), "libspillway-cuda.so"),
	   "dlsym on libnvidia-ml gives the shim's NVML hook");
	ok(stat_of(NULL, "dlsym_wrapped") >= 4, "the shim counted its dlsym substitutions (%lld)",
	   stat_of(NULL, "dlsym_wrapped"));
}

TEST(get_proc_address)
{
	getproc_v2_t gp = (getproc_v2_t)dlsym(cuda, "cuGetProcAddress_v2");
	getproc_v1_t gp1 = (getproc_v1_t)dlsym(cuda, "cuGetProcAddress");
	long driver_calls = fake_calls("cuGetProcAddress_v2");
	CUdriverProcAddressQueryResult status;
	CUdeviceptr p = 0;
	CUresult rc;
	void *fn;

	ok(!strcmp(file_of((void *)gp), "libspillway-cuda.so") &&
		   !strcmp(file_of((void *)gp1), "libspillway-cuda.so"),
	   "both cuGetProcAddress entry points come from the shim");
	rc = gp("cuMemAlloc", &fn, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &status);
	ok(rc == CUDA_SUCCESS && !strcmp(name_of(fn), "cuMemAlloc_v2") &&
		   !strcmp(file_of(fn), "libspillway-cuda.so"),
	   "cuMemAlloc resolves to the shim's cuMemAlloc_v2 (%s in %s)", name_of(fn), file_of(fn));
	ok(fake_calls("cuGetProcAddress_v2") == driver_calls + 1,
	   "by calling the driver's cuGetProcAddress_v2 with the same arguments");
	ok(((alloc_t)fn)(&p, 2 * MiB) == CUDA_SUCCESS &&
		   stat_of("\"device\":0", "vram_bytes") == (long long)(2 * MiB),
	   "an allocation through the resolved pointer is seen");
	rc = gp("cuMemFree", &fn, 12000, 0, &status);
	ok(rc == CUDA_SUCCESS && ((free_t)fn)(p) == CUDA_SUCCESS &&
		   stat_of("\"device\":0", "vram_bytes") == 0,
	   "and so is its free");
	rc = gp("cuMemAllocAsync", &fn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
		&status);
	ok(rc == CUDA_SUCCESS && !strcmp(name_of(fn), "cuMemAllocAsync_ptsz") &&
		   !strcmp(file_of(fn), "libspillway-cuda.so"),
	   "with the per-thread flag, cuMemAllocAsync gives the shim's _ptsz (%s)", name_of(fn));
	rc = gp("cuMemFreeAsync", &fn, 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &status);
	ok(rc == CUDA_SUCCESS && !strcmp(name_of(fn), "cuMemFreeAsync") &&
		   !strcmp(file_of(fn), "libspillway-cuda.so"),
	   "with the legacy flag, cuMemFreeAsync gives the plain variant (%s)", name_of(fn));
	rc = gp("cuGetProcAddress", &fn, 12000, 0, &status);
	ok(rc == CUDA_SUCCESS && fn == (void *)gp,
	   "asking for cuGetProcAddress returns the shim's cuGetProcAddress_v2");
	rc = gp1("cuMemGetInfo", &fn, 12000, 0);
	ok(rc == CUDA_SUCCESS && !strcmp(name_of(fn), "cuMemGetInfo_v2") &&
		   !strcmp(file_of(fn), "libspillway-cuda.so"),
	   "the 4-argument cuGetProcAddress resolves cuMemGetInfo to the shim (%s)", name_of(fn));
	rc = gp("cuCtxGetDevice", &fn, 12000, 0, &status);
	ok(rc == CUDA_SUCCESS && !strcmp(file_of(fn), "libcuda.so.1"),
	   "unhooked cuCtxGetDevice stays the driver's");
	rc = gp("cuNoSuchFunction", &fn, 12000, 0, &status);
	ok(rc == CUDA_ERROR_NOT_FOUND && fn == NULL &&
		   status == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND,
	   "a missing name keeps the driver's NOT_FOUND and status");
	ok(stat_of(NULL, "getproc_calls") == 8 && stat_of(NULL, "getproc_wrapped") == 6,
	   "8 lookups seen, 6 handed a wrapper (%lld, %lld)", stat_of(NULL, "getproc_calls"),
	   stat_of(NULL, "getproc_wrapped"));
}

TEST(missing_symbol)
{
	pool_alloc_t f = (pool_alloc_t)dlsym(RTLD_DEFAULT, "cuMemAllocFromPoolAsync_ptsz");
	CUdeviceptr p = 0;

	ok(dlsym(cuda, "cuMemAllocFromPoolAsync_ptsz") == NULL,
	   "the fake driver lacks cuMemAllocFromPoolAsync_ptsz, and dlsym on it says NULL");
	ok(f && f(&p, MiB, (CUmemoryPool)0x1, NULL) == CUDA_ERROR_NOT_FOUND,
	   "the shim's wrapper returns CUDA_ERROR_NOT_FOUND instead of calling NULL");
	ok(f && f(&p, MiB, NULL, NULL) == CUDA_ERROR_NOT_FOUND, "with a NULL pool too");
}

TEST(thread_without_context)
{
	CUresult thread_rc[2];
	pthread_t th;

	pthread_create(&th, NULL, no_context_thread, thread_rc);
	pthread_join(th, NULL);
	ok(thread_rc[0] == CUDA_ERROR_INVALID_CONTEXT && thread_rc[1] == CUDA_ERROR_INVALID_CONTEXT,
	   "a thread with no context gets the driver's INVALID_CONTEXT, not a crash (%d, %d)",
	   thread_rc[0], thread_rc[1]);
}

int main(void)
{
	cuda = dlopen("libcuda.so.1", RTLD_NOW);
	nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
	ok(cuda && nvml, "the fake libcuda.so.1 and libnvidia-ml.so.1 load");
	if (!shim_setup("SPILLWAY_BACKEND=host", NULL))
		return done_testing();
	return tap_run();
}
