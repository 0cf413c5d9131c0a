/*
 * GPU checks of issue 13 that need the driver API, run with and without the shim by
 * test/gpu/semantics.sh.  Each prints "RESULT <name> PASS|FAIL <detail>" and exits 0 on PASS.
 *
 *   semantics graph_mem        a 4 GiB graph memory node; under the shim (SPILLWAY_VRAM_LIMIT=2G,
 *                              SPILLWAY_REPORT=physical) it must be counted: the reported free
 *                              memory drops to 0 and a later 1 GiB cuMemAlloc spills
 *   semantics pool_reuse       8 GiB freed into the default pool (release threshold max) with
 *                              less than 8 GiB free on the card: an 8 GiB cuMemAllocAsync must
 *                              be served by the pool, not spilled
 *   semantics nccl LIBNCCL     ncclMemAlloc(1 GiB) (under the shim with a 512M budget): the
 *                              memory works and exports the handle types NCCL asked for
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

static CUdevice dev;
static CUcontext ctx;
static CUstream s;

static void must(CUresult rc, const char *what)
{
	if (rc != CUDA_SUCCESS) {
		const char *name = NULL;

		cuGetErrorName(rc, &name);
		printf("setup: %s = %d (%s)\n", what, (int)rc, name ? name : "?");
		exit(2);
	}
}

static int under_shim(void)
{
	return dlsym(RTLD_DEFAULT, "spillway_stats_json") != NULL;
}

/* The shim's counter or byte figure @key (first occurrence after @after), or -1. */
static long long shim_stat(const char *after, const char *key)
{
	int (*fn)(char *, size_t) = (int (*)(char *, size_t))dlsym(RTLD_DEFAULT, "spillway_stats_json");
	static char buf[16384];
	char pat[96];
	const char *p = buf;

	if (!fn)
		return -1;
	fn(buf, sizeof(buf));
	if (after && !(p = strstr(buf, after)))
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(p, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static size_t reported_free(void)
{
	size_t f = 0, t = 0;

	cuMemGetInfo(&f, &t);
	return f;
}

static int result(int pass, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int result(int pass, const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("RESULT %s %s ", name, pass ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return pass ? 0 : 1;
}

static int graph_mem(void)
{
	CUDA_MEM_ALLOC_NODE_PARAMS np;
	CUgraph g;
	CUgraphNode node;
	CUgraphExec exec;
	CUdeviceptr later = 0;
	CUresult rc;
	size_t free_before, free_after_launch, free_after_trim, drop;
	cuuint64_t reserved = 0;
	long long spills_before, spills_after;
	int shim = under_shim(), pass;

	free_before = reported_free();
	must(cuGraphCreate(&g, 0), "cuGraphCreate");
	memset(&np, 0, sizeof(np));
	np.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
	np.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	np.poolProps.location.id = dev;
	np.bytesize = 4 * GiB;
	rc = cuGraphAddMemAllocNode(&node, g, NULL, 0, &np);
	if (rc != CUDA_SUCCESS)
		return result(0, "graph_mem", "cuGraphAddMemAllocNode(4 GiB) = %d", (int)rc);
	rc = cuGraphInstantiate(&exec, g, 0);
	if (rc != CUDA_SUCCESS)
		return result(0, "graph_mem", "cuGraphInstantiate = %d", (int)rc);
	must(cuGraphLaunch(exec, s), "cuGraphLaunch");
	must(cuStreamSynchronize(s), "sync");
	must(cuMemsetD8(np.dptr, 1, 4 * GiB), "memset on the graph's memory");
	cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &reserved);
	free_after_launch = reported_free();
	spills_before = shim_stat(NULL, "spills");
	rc = cuMemAlloc(&later, GiB);
	spills_after = shim_stat(NULL, "spills");
	if (rc == CUDA_SUCCESS)
		cuMemFree(later);
	must(cuMemFreeAsync(np.dptr, s), "cuMemFreeAsync of the graph's memory");
	must(cuStreamSynchronize(s), "sync");
	cuGraphExecDestroy(exec);
	cuGraphDestroy(g);
	must(cuDeviceGraphMemTrim(dev), "cuDeviceGraphMemTrim");
	cuCtxSynchronize();
	free_after_trim = reported_free();
	printf("graph_mem: driver graph reserve %llu MiB; reported free %zu MiB before, %zu MiB after launch, %zu MiB after trim; later 1 GiB cuMemAlloc rc %d, spills %lld -> %lld\n",
	       (unsigned long long)(reserved / MiB), free_before / MiB, free_after_launch / MiB,
	       free_after_trim / MiB, (int)rc, spills_before, spills_after);
	if (!shim)
		return result(reserved >= 4 * GiB, "graph_mem", "no shim: the driver reserved %llu MiB for the node",
			      (unsigned long long)(reserved / MiB));
	/* Counted: the reported free figure drops by the node, down to 0 under a 2 GiB budget. */
	drop = free_before < 4 * GiB ? free_before : 4 * GiB;
	pass = free_after_launch <= free_before - drop + 64 * MiB && rc == CUDA_SUCCESS &&
	       spills_after > spills_before && free_after_trim + 64 * MiB >= free_before;
	return result(pass, "graph_mem",
		      "shim: reported free %zu -> %zu -> %zu MiB (launch, trim); later 1 GiB %s",
		      free_before / MiB, free_after_launch / MiB, free_after_trim / MiB,
		      spills_after > spills_before ? "spilled" : "not spilled");
}

static int pool_reuse(void)
{
	CUmemoryPool pool;
	cuuint64_t max = UINT64_MAX, zero = 0, used = 0, reserved_before = 0, reserved_after = 0;
	CUdeviceptr filler, d;
	size_t driver_free = 0, t = 0, fill;
	long long spills_before, spills_after;
	int pass;

	/* SPILLWAY_REPORT=physical: this is the driver's free figure (budget = the card). */
	must(cuMemGetInfo(&driver_free, &t), "cuMemGetInfo");
	if (driver_free < 24 * GiB)
		return result(0, "pool_reuse", "only %zu MiB free on the card", driver_free / MiB);
	fill = (driver_free - 14 * GiB) / (2 * MiB) * (2 * MiB);
	must(cuMemAlloc(&filler, fill), "filler cuMemAlloc");
	must(cuDeviceGetDefaultMemPool(&pool, dev), "cuDeviceGetDefaultMemPool");
	must(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &max), "threshold");
	must(cuMemAllocAsync(&d, 8 * GiB, s), "first 8 GiB cuMemAllocAsync");
	must(cuMemFreeAsync(d, s), "cuMemFreeAsync");
	must(cuStreamSynchronize(s), "sync");
	cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved_before);
	cuMemGetInfo(&driver_free, &t);
	spills_before = shim_stat(NULL, "spills");
	must(cuMemAllocAsync(&d, 8 * GiB, s), "second 8 GiB cuMemAllocAsync");
	must(cuStreamSynchronize(s), "sync");
	spills_after = shim_stat(NULL, "spills");
	cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used);
	cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved_after);
	must(cuMemsetD8(d, 3, 8 * GiB), "memset");
	cuMemFreeAsync(d, s);
	cuStreamSynchronize(s);
	cuMemPoolTrimTo(pool, 0);
	cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &zero);
	cuMemFree(filler);
	pass = used >= 8 * GiB && reserved_after == reserved_before && spills_after == spills_before;
	return result(pass, "pool_reuse",
		      "%zu MiB free with 8192 MiB cached; the second 8 GiB: pool used %llu MiB, reserved %llu -> %llu MiB, shim spills %lld -> %lld",
		      driver_free / MiB, (unsigned long long)(used / MiB),
		      (unsigned long long)(reserved_before / MiB),
		      (unsigned long long)(reserved_after / MiB), spills_before, spills_after);
}

static int nccl(const char *path)
{
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	int (*mem_alloc)(void **, size_t);
	int (*mem_free)(void *);
	int (*version)(int *);
	CUmemGenericAllocationHandle h;
	CUmemAllocationProp prop;
	unsigned char probe[4] = { 0 };
	void *p = NULL;
	int v = 0, rc, fd = -1, pass;
	CUresult export_rc = CUDA_ERROR_NOT_SUPPORTED, retain_rc;

	if (!lib)
		return result(0, "nccl", "dlopen(%s): %s", path, dlerror());
	mem_alloc = (int (*)(void **, size_t))dlsym(lib, "ncclMemAlloc");
	mem_free = (int (*)(void *))dlsym(lib, "ncclMemFree");
	version = (int (*)(int *))dlsym(lib, "ncclGetVersion");
	if (!mem_alloc || !mem_free)
		return result(0, "nccl", "no ncclMemAlloc in %s", path);
	if (version)
		version(&v);
	rc = mem_alloc(&p, GiB);
	if (rc != 0)
		return result(0, "nccl", "NCCL %d: ncclMemAlloc(1 GiB) = %d", v, rc);
	must(cuMemsetD8((CUdeviceptr)p, 0x5a, GiB), "memset");
	must(cuMemcpyDtoH(probe, (CUdeviceptr)p + GiB - 4, 4), "read back");
	memset(&prop, 0, sizeof(prop));
	retain_rc = cuMemRetainAllocationHandle(&h, p);
	if (retain_rc == CUDA_SUCCESS) {
		cuMemGetAllocationPropertiesFromHandle(&prop, h);
		if (prop.requestedHandleTypes & CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) {
			export_rc = cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
			if (export_rc == CUDA_SUCCESS)
				close(fd);
		}
		cuMemRelease(h);
	}
	printf("nccl: version %d, handle types %#x, location %d:%d, rdma %u, retain %d, export POSIX_FD %d, shim host-NUMA creates %lld\n",
	       v, (unsigned int)prop.requestedHandleTypes, (int)prop.location.type,
	       prop.location.id, prop.allocFlags.gpuDirectRDMACapable, (int)retain_rc,
	       (int)export_rc, shim_stat(NULL, "vmm_host_numa"));
	rc = mem_free(p);
	pass = probe[3] == 0x5a && retain_rc == CUDA_SUCCESS && rc == 0 &&
	       (!(prop.requestedHandleTypes & CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) ||
		export_rc == CUDA_SUCCESS);
	return result(pass, "nccl", "NCCL %d: 1 GiB, data %s, handle types %#x, POSIX_FD export rc %d, free %d",
		      v, probe[3] == 0x5a ? "ok" : "BAD", (unsigned int)prop.requestedHandleTypes,
		      (int)export_rc, rc);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: semantics graph_mem|pool_reuse|nccl LIBNCCL\n");
		return 2;
	}
	must(cuInit(0), "cuInit");
	must(cuDeviceGet(&dev, 0), "cuDeviceGet");
	must(cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
	must(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
	must(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
	if (!strcmp(argv[1], "graph_mem"))
		return graph_mem();
	if (!strcmp(argv[1], "pool_reuse"))
		return pool_reuse();
	if (!strcmp(argv[1], "nccl") && argc > 2)
		return nccl(argv[2]);
	fprintf(stderr, "unknown check %s\n", argv[1]);
	return 2;
}
