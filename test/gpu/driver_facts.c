/*
 * What the CUDA driver answers where the shim's semantics depend on it (issue 13): stream
 * capture, stream-ordered pools, graph memory nodes, IPC and export, pointer attributes,
 * fork.  Prints one "fact KEY VALUE" line per answer, values normalised so two runs (or the
 * real driver and test/shim/fake_cuda.c) can be compared line by line.
 *
 *   driver_facts all        every section below, without the shim (the real driver's answers)
 *   driver_facts spilled    attributes and export of a cuMemAlloc and a cuMemAllocAsync that
 *                           the shim spilled (run under LD_PRELOAD with SPILLWAY_VRAM_LIMIT=64M),
 *                           plus CHECK lines: PASS/FAIL of the consistency rules of docs/shim.md
 *
 * Small sizes only (at most 1 GiB); nothing here needs a kernel.
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define FACT(...) do { printf("fact " __VA_ARGS__); putchar('\n'); fflush(stdout); } while (0)

static CUdevice dev;
static CUcontext ctx;
static CUstream s, other;
static int checks_failed;

static const char *mode_name[] = { "global", "thread_local", "relaxed" };

static void *host_pages(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	memset(p, 1, size);
	return p;
}

static void must(CUresult rc, const char *what)
{
	if (rc != CUDA_SUCCESS) {
		fprintf(stderr, "setup: %s = %d\n", what, (int)rc);
		exit(2);
	}
}

static cuuint64_t pool_attr(CUmemoryPool pool, CUmemPool_attribute attr)
{
	cuuint64_t v = 0;

	if (cuMemPoolGetAttribute(pool, attr, &v) != CUDA_SUCCESS)
		return (cuuint64_t)-1;
	return v;
}

static cuuint64_t graph_attr(CUgraphMem_attribute attr)
{
	cuuint64_t v = 0;

	if (cuDeviceGetGraphMemAttribute(dev, attr, &v) != CUDA_SUCCESS)
		return (cuuint64_t)-1;
	return v;
}

static long long free_mib(void)
{
	size_t f = 0, t = 0;

	cuMemGetInfo(&f, &t);
	return (long long)(f / MiB);
}

/* ---- capture: what each call does while a stream captures, in each mode ---- */

enum probe {
	P_HOST_REGISTER, P_HOST_UNREGISTER, P_MEM_ALLOC, P_MEM_FREE, P_ALLOC_ASYNC,
	P_ALLOC_FREE_ASYNC, P_FREE_ASYNC_OUTSIDE, P_ALLOC_ASYNC_OTHER_STREAM, P_EVENT_RECORD,
	P_EVENT_QUERY_CAPTURED, P_EVENT_SYNC_CAPTURED, P_EVENT_QUERY_OUTSIDE, P_STREAM_SYNC,
	P_STREAM_QUERY, P_CTX_SYNC, P_MEM_GET_INFO, P_POINTER_ATTR, P_INFO_OTHER_STREAM,
	P_INFO_LEGACY_STREAM, P_THREAD_HOST_REGISTER, P_THREAD_MEM_ALLOC,
	P_EXCHANGE_RELAXED_REGISTER, P_STREAM_GET_DEVICE, P_STREAM_GET_CTX, P_COUNT
};

static const char *probe_name[P_COUNT] = {
	"host_register", "host_unregister", "mem_alloc", "mem_free", "alloc_async",
	"alloc_free_async", "free_async_outside", "alloc_async_other_stream", "event_record",
	"event_query_captured", "event_sync_captured", "event_query_outside", "stream_sync",
	"stream_query", "ctx_sync", "mem_get_info", "pointer_attr", "info_other_stream",
	"info_legacy_stream", "thread_host_register", "thread_mem_alloc",
	"exchange_relaxed_register", "stream_get_device", "stream_get_ctx",
};

struct probe_state {
	void *host;
	CUdeviceptr d;
	CUevent ev;
	int registered;
	CUresult thread_rc;
};

static void *thread_op(void *arg)
{
	struct probe_state *ps = arg;
	CUdeviceptr d = 0;

	cuCtxSetCurrent(ctx);
	if (ps->host) {
		ps->thread_rc = cuMemHostRegister(ps->host, 2 * MiB, CU_MEMHOSTREGISTER_DEVICEMAP);
		if (ps->thread_rc == CUDA_SUCCESS)
			ps->registered = 1;
	} else {
		ps->thread_rc = cuMemAlloc(&d, 2 * MiB);
		ps->d = d;
	}
	return NULL;
}

static void probe_prep(enum probe p, struct probe_state *ps)
{
	memset(ps, 0, sizeof(*ps));
	ps->host = host_pages(2 * MiB);
	must(cuEventCreate(&ps->ev, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
	switch (p) {
	case P_HOST_UNREGISTER:
		must(cuMemHostRegister(ps->host, 2 * MiB, CU_MEMHOSTREGISTER_DEVICEMAP), "register");
		ps->registered = 1;
		break;
	case P_MEM_FREE:
	case P_POINTER_ATTR:
		must(cuMemAlloc(&ps->d, 2 * MiB), "cuMemAlloc");
		break;
	case P_FREE_ASYNC_OUTSIDE:
		must(cuMemAllocAsync(&ps->d, 2 * MiB, s), "cuMemAllocAsync");
		must(cuStreamSynchronize(s), "sync");
		break;
	case P_EVENT_QUERY_OUTSIDE:
		must(cuEventRecord(ps->ev, other), "record");
		must(cuStreamSynchronize(other), "sync");
		break;
	case P_THREAD_MEM_ALLOC:
		munmap(ps->host, 2 * MiB);
		ps->host = NULL;
		break;
	default:
		break;
	}
}

/* Runs while @s captures; returns the probe's own result. */
static CUresult probe_act(enum probe p, struct probe_state *ps, const char *key)
{
	CUstreamCaptureStatus st;
	CUstreamCaptureMode m;
	CUdeviceptr d;
	size_t f, t;
	unsigned int type;
	pthread_t th;
	CUresult rc;

	switch (p) {
	case P_HOST_REGISTER:
		rc = cuMemHostRegister(ps->host, 2 * MiB, CU_MEMHOSTREGISTER_DEVICEMAP);
		ps->registered = rc == CUDA_SUCCESS;
		return rc;
	case P_HOST_UNREGISTER:
		rc = cuMemHostUnregister(ps->host);
		if (rc == CUDA_SUCCESS)
			ps->registered = 0;
		return rc;
	case P_MEM_ALLOC:
		return cuMemAlloc(&ps->d, 2 * MiB);
	case P_MEM_FREE:
		rc = cuMemFree(ps->d);
		if (rc == CUDA_SUCCESS)
			ps->d = 0;
		return rc;
	case P_ALLOC_ASYNC:
		return cuMemAllocAsync(&d, 2 * MiB, s);
	case P_ALLOC_FREE_ASYNC:
		rc = cuMemAllocAsync(&d, 2 * MiB, s);
		return rc ? rc : cuMemFreeAsync(d, s);
	case P_FREE_ASYNC_OUTSIDE:
		rc = cuMemFreeAsync(ps->d, s);
		if (rc == CUDA_SUCCESS)
			ps->d = 0;
		return rc;
	case P_ALLOC_ASYNC_OTHER_STREAM:
		rc = cuMemAllocAsync(&d, 2 * MiB, other);
		if (rc == CUDA_SUCCESS)
			cuMemFreeAsync(d, other);
		return rc;
	case P_EVENT_RECORD:
		return cuEventRecord(ps->ev, s);
	case P_EVENT_QUERY_CAPTURED:
		rc = cuEventRecord(ps->ev, s);
		FACT("%s.record_rc %d", key, (int)rc);
		return cuEventQuery(ps->ev);
	case P_EVENT_SYNC_CAPTURED:
		rc = cuEventRecord(ps->ev, s);
		FACT("%s.record_rc %d", key, (int)rc);
		return cuEventSynchronize(ps->ev);
	case P_EVENT_QUERY_OUTSIDE:
		return cuEventQuery(ps->ev);
	case P_STREAM_SYNC:
		return cuStreamSynchronize(s);
	case P_STREAM_QUERY:
		return cuStreamQuery(s);
	case P_CTX_SYNC:
		return cuCtxSynchronize();
	case P_MEM_GET_INFO:
		return cuMemGetInfo(&f, &t);
	case P_STREAM_GET_DEVICE: {
		CUdevice dev;

		return cuStreamGetDevice(s, &dev);
	}
	case P_STREAM_GET_CTX: {
		CUcontext c;

		return cuStreamGetCtx(s, &c);
	}
	case P_POINTER_ATTR:
		return cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, ps->d);
	case P_INFO_OTHER_STREAM:
		rc = cuStreamGetCaptureInfo(other, &st, NULL, NULL, NULL, NULL, NULL);
		FACT("%s.status %d", key, (int)st);
		return rc;
	case P_INFO_LEGACY_STREAM:
		rc = cuStreamGetCaptureInfo(CU_STREAM_LEGACY, &st, NULL, NULL, NULL, NULL, NULL);
		FACT("%s.status %d", key, (int)st);
		return rc;
	case P_THREAD_HOST_REGISTER:
	case P_THREAD_MEM_ALLOC:
		pthread_create(&th, NULL, thread_op, ps);
		pthread_join(th, NULL);
		return ps->thread_rc;
	case P_EXCHANGE_RELAXED_REGISTER:
		m = CU_STREAM_CAPTURE_MODE_RELAXED;
		cuThreadExchangeStreamCaptureMode(&m);
		rc = cuMemHostRegister(ps->host, 2 * MiB, CU_MEMHOSTREGISTER_DEVICEMAP);
		ps->registered = rc == CUDA_SUCCESS;
		cuThreadExchangeStreamCaptureMode(&m);
		return rc;
	default:
		return CUDA_ERROR_UNKNOWN;
	}
}

static void probe_cleanup(struct probe_state *ps)
{
	cuStreamSynchronize(s);
	cuStreamSynchronize(other);
	if (ps->registered)
		cuMemHostUnregister(ps->host);
	if (ps->d)
		cuMemFree(ps->d);
	if (ps->host)
		munmap(ps->host, 2 * MiB);
	cuEventDestroy(ps->ev);
	/* Anything a failed probe left in the pool goes back before the next one. */
	cuCtxSynchronize();
}

static void capture_facts(void)
{
	for (int m = 0; m < 3; m++) {
		for (int p = 0; p < P_COUNT; p++) {
			struct probe_state ps;
			CUstreamCaptureStatus st = 0;
			cuuint64_t id = 0;
			CUgraph g = NULL;
			char key[96];
			CUresult rc;

			snprintf(key, sizeof(key), "capture.%s.%s", mode_name[m], probe_name[p]);
			probe_prep(p, &ps);
			rc = cuStreamBeginCapture(s, (CUstreamCaptureMode)m);
			if (rc != CUDA_SUCCESS) {
				FACT("%s.begin_rc %d", key, (int)rc);
				probe_cleanup(&ps);
				continue;
			}
			rc = probe_act(p, &ps, key);
			FACT("%s.rc %d", key, (int)rc);
			rc = cuStreamGetCaptureInfo(s, &st, &id, NULL, NULL, NULL, NULL);
			FACT("%s.status_after %d", key, rc == CUDA_SUCCESS ? (int)st : -(int)rc);
			rc = cuStreamEndCapture(s, &g);
			FACT("%s.end_rc %d", key, (int)rc);
			if (g)
				cuGraphDestroy(g);
			probe_cleanup(&ps);
		}
	}
	/* Outside capture, for comparison. */
	{
		CUstreamCaptureStatus st = 7;
		CUresult rc = cuStreamGetCaptureInfo(s, &st, NULL, NULL, NULL, NULL, NULL);

		FACT("capture.none.info_rc %d", (int)rc);
		FACT("capture.none.status %d", (int)st);
	}
}

/* ---- stream-ordered pools ---- */

static void pool_facts(void)
{
	CUmemoryPool pool, cur;
	cuuint64_t thr = 0, max = UINT64_MAX, zero = 0;
	CUdeviceptr d;
	long long f0;

	must(cuDeviceGetDefaultMemPool(&pool, dev), "cuDeviceGetDefaultMemPool");
	cuDeviceGetMemPool(&cur, dev);
	FACT("pool.default_is_current %d", cur == pool);
	cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr);
	FACT("pool.default.release_threshold %llu", (unsigned long long)thr);
	cuMemPoolTrimTo(pool, 0);
	cuCtxSynchronize();
	f0 = free_mib();

	/* Threshold 0: a free at a synchronisation point goes back to the driver. */
	must(cuMemAllocAsync(&d, GiB, s), "alloc");
	FACT("pool.t0.used_after_alloc_mib %llu", (unsigned long long)(pool_attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT) / MiB));
	must(cuMemFreeAsync(d, s), "free");
	must(cuStreamSynchronize(s), "sync");
	FACT("pool.t0.reserved_after_free_sync_mib %llu", (unsigned long long)(pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) / MiB));
	FACT("pool.t0.driver_free_drop_mib %lld", f0 - free_mib());

	/* Threshold max: freed memory stays in the pool and counts as used in cuMemGetInfo. */
	FACT("pool.set_threshold_rc %d", (int)cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &max));
	must(cuMemAllocAsync(&d, GiB, s), "alloc");
	must(cuMemFreeAsync(d, s), "free");
	must(cuStreamSynchronize(s), "sync");
	FACT("pool.tmax.reserved_after_free_sync_mib %llu", (unsigned long long)(pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) / MiB));
	FACT("pool.tmax.used_after_free_sync_mib %llu", (unsigned long long)(pool_attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT) / MiB));
	FACT("pool.tmax.driver_free_drop_mib %lld", f0 - free_mib());
	must(cuMemAllocAsync(&d, GiB, s), "alloc");
	must(cuStreamSynchronize(s), "sync");
	FACT("pool.tmax.realloc_used_mib %llu", (unsigned long long)(pool_attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT) / MiB));
	FACT("pool.tmax.realloc_reserved_mib %llu", (unsigned long long)(pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) / MiB));
	FACT("pool.tmax.realloc_driver_free_drop_mib %lld", f0 - free_mib());
	/* A larger request than the cache: the pool grows by the difference or by the request? */
	{
		CUdeviceptr d2;

		must(cuMemFreeAsync(d, s), "free");
		must(cuMemAllocAsync(&d2, 2 * GiB, s), "alloc 2G");
		must(cuStreamSynchronize(s), "sync");
		FACT("pool.tmax.bigger_reserved_mib %llu", (unsigned long long)(pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) / MiB));
		must(cuMemFreeAsync(d2, s), "free");
		must(cuStreamSynchronize(s), "sync");
	}
	FACT("pool.trim_rc %d", (int)cuMemPoolTrimTo(pool, 0));
	FACT("pool.after_trim_reserved_mib %llu", (unsigned long long)(pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) / MiB));
	FACT("pool.after_trim_driver_free_drop_mib %lld", f0 - free_mib());
	cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &zero);

	/* Created pools: which locations and handle types the driver accepts. */
	static const struct {
		const char *name;
		CUmemLocationType type;
		int id;
		CUmemAllocationHandleType handles;
	} variants[] = {
		{ "device_none", CU_MEM_LOCATION_TYPE_DEVICE, 0, CU_MEM_HANDLE_TYPE_NONE },
		{ "device_posix_fd", CU_MEM_LOCATION_TYPE_DEVICE, 0, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR },
		{ "device_fabric", CU_MEM_LOCATION_TYPE_DEVICE, 0, CU_MEM_HANDLE_TYPE_FABRIC },
		{ "host_numa_none", CU_MEM_LOCATION_TYPE_HOST_NUMA, 0, CU_MEM_HANDLE_TYPE_NONE },
		{ "host_numa_posix_fd", CU_MEM_LOCATION_TYPE_HOST_NUMA, 0, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR },
		{ "host_none", CU_MEM_LOCATION_TYPE_HOST, 0, CU_MEM_HANDLE_TYPE_NONE },
		{ "host_posix_fd", CU_MEM_LOCATION_TYPE_HOST, 0, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR },
	};
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		CUmemPoolProps props;
		CUmemoryPool p, attr_pool = NULL;
		CUresult rc;
		unsigned int type = 0;
		unsigned long long allowed = 0;
		int legacy = -1, fd = -1;
		CUipcMemHandle ipc;
		CUmemPoolPtrExportData exp;

		memset(&props, 0, sizeof(props));
		props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
		props.handleTypes = variants[i].handles;
		props.location.type = variants[i].type;
		props.location.id = variants[i].id;
		rc = cuMemPoolCreate(&p, &props);
		FACT("pool.create.%s.rc %d", variants[i].name, (int)rc);
		if (rc != CUDA_SUCCESS)
			continue;
		rc = cuMemAllocFromPoolAsync(&d, 64 * MiB, p, s);
		FACT("pool.create.%s.alloc_rc %d", variants[i].name, (int)rc);
		if (rc == CUDA_SUCCESS) {
			cuStreamSynchronize(s);
			cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d);
			cuPointerGetAttribute(&allowed, CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES, d);
			cuPointerGetAttribute(&legacy, CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE, d);
			cuPointerGetAttribute(&attr_pool, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, d);
			FACT("pool.create.%s.memory_type %u", variants[i].name, type);
			FACT("pool.create.%s.allowed_handle_types %llu", variants[i].name, allowed);
			FACT("pool.create.%s.legacy_ipc %d", variants[i].name, legacy);
			FACT("pool.create.%s.mempool_attr_is_pool %d", variants[i].name, attr_pool == p);
			FACT("pool.create.%s.export_pointer_rc %d", variants[i].name, (int)cuMemPoolExportPointer(&exp, d));
			FACT("pool.create.%s.ipc_rc %d", variants[i].name, (int)cuIpcGetMemHandle(&ipc, d));
			if (variants[i].handles == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) {
				rc = cuMemPoolExportToShareableHandle(&fd, p, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
				FACT("pool.create.%s.export_pool_rc %d", variants[i].name, (int)rc);
				if (rc == CUDA_SUCCESS)
					close(fd);
			}
			cuMemFreeAsync(d, s);
			cuStreamSynchronize(s);
		}
		FACT("pool.create.%s.destroy_rc %d", variants[i].name, (int)cuMemPoolDestroy(p));
	}
	/* The default pool's pointers. */
	{
		CUmemPoolPtrExportData exp;
		CUipcMemHandle ipc;
		CUmemoryPool attr_pool = NULL;

		must(cuMemAllocAsync(&d, 64 * MiB, s), "alloc");
		cuStreamSynchronize(s);
		cuPointerGetAttribute(&attr_pool, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, d);
		FACT("pool.default.mempool_attr_is_pool %d", attr_pool == pool);
		FACT("pool.default.export_pointer_rc %d", (int)cuMemPoolExportPointer(&exp, d));
		FACT("pool.default.ipc_rc %d", (int)cuIpcGetMemHandle(&ipc, d));
		cuMemFreeAsync(d, s);
		cuStreamSynchronize(s);
	}
}

/* ---- graph memory nodes ---- */

static void graph_facts(void)
{
	CUDA_MEM_ALLOC_NODE_PARAMS np;
	CUgraph g;
	CUgraphNode node;
	CUgraphExec exec;
	CUresult rc;
	long long f0;
	unsigned int type = 0;

	cuDeviceGraphMemTrim(dev);
	cuCtxSynchronize();
	f0 = free_mib();
	must(cuGraphCreate(&g, 0), "cuGraphCreate");
	memset(&np, 0, sizeof(np));
	np.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
	np.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	np.poolProps.location.id = dev;
	np.bytesize = GiB;
	rc = cuGraphAddMemAllocNode(&node, g, NULL, 0, &np);
	FACT("graph.add_alloc_node_rc %d", (int)rc);
	FACT("graph.dptr_set %d", np.dptr != 0);
	FACT("graph.after_add.reserved_mib %llu", (unsigned long long)(graph_attr(CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) / MiB));
	FACT("graph.after_add.driver_free_drop_mib %lld", f0 - free_mib());
	rc = cuGraphInstantiate(&exec, g, 0);
	FACT("graph.instantiate_rc %d", (int)rc);
	FACT("graph.after_instantiate.reserved_mib %llu", (unsigned long long)(graph_attr(CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) / MiB));
	FACT("graph.after_instantiate.driver_free_drop_mib %lld", f0 - free_mib());
	if (rc == CUDA_SUCCESS) {
		FACT("graph.launch_rc %d", (int)cuGraphLaunch(exec, s));
		cuStreamSynchronize(s);
		FACT("graph.after_launch.reserved_mib %llu", (unsigned long long)(graph_attr(CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) / MiB));
		FACT("graph.after_launch.used_mib %llu", (unsigned long long)(graph_attr(CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT) / MiB));
		FACT("graph.after_launch.driver_free_drop_mib %lld", f0 - free_mib());
		FACT("graph.ptr_memory_type_rc %d", (int)cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, np.dptr));
		FACT("graph.ptr_memory_type %u", type);
		FACT("graph.memset_rc %d", (int)cuMemsetD8(np.dptr, 7, MiB));
		FACT("graph.free_async_rc %d", (int)cuMemFreeAsync(np.dptr, s));
		cuStreamSynchronize(s);
		FACT("graph.after_free.used_mib %llu", (unsigned long long)(graph_attr(CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT) / MiB));
		FACT("graph.after_free.reserved_mib %llu", (unsigned long long)(graph_attr(CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) / MiB));
		cuGraphExecDestroy(exec);
	}
	cuGraphDestroy(g);
	FACT("graph.trim_rc %d", (int)cuDeviceGraphMemTrim(dev));
	FACT("graph.after_trim.reserved_mib %llu", (unsigned long long)(graph_attr(CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) / MiB));
	FACT("graph.after_trim.driver_free_drop_mib %lld", f0 - free_mib());

	/* Which node properties the driver accepts. */
	static const struct {
		const char *name;
		CUmemLocationType type;
		CUmemAllocationHandleType handles;
	} variants[] = {
		{ "host_numa", CU_MEM_LOCATION_TYPE_HOST_NUMA, CU_MEM_HANDLE_TYPE_NONE },
		{ "host", CU_MEM_LOCATION_TYPE_HOST, CU_MEM_HANDLE_TYPE_NONE },
		{ "device_posix_fd", CU_MEM_LOCATION_TYPE_DEVICE, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR },
	};
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		must(cuGraphCreate(&g, 0), "cuGraphCreate");
		memset(&np, 0, sizeof(np));
		np.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
		np.poolProps.location.type = variants[i].type;
		np.poolProps.location.id = 0;
		np.poolProps.handleTypes = variants[i].handles;
		np.bytesize = 64 * MiB;
		FACT("graph.node.%s.rc %d", variants[i].name, (int)cuGraphAddMemAllocNode(&node, g, NULL, 0, &np));
		cuGraphDestroy(g);
	}

	/* A stream-ordered allocation captured into a graph becomes an allocation node. */
	{
		CUdeviceptr d = 0;
		size_t n = 0;

		must(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED), "begin");
		FACT("graph.captured_alloc_rc %d", (int)cuMemAllocAsync(&d, 64 * MiB, s));
		FACT("graph.captured_free_rc %d", (int)cuMemFreeAsync(d, s));
		FACT("graph.captured_end_rc %d", (int)cuStreamEndCapture(s, &g));
		cuGraphGetNodes(g, NULL, &n);
		FACT("graph.captured_nodes %zu", n);
		cuGraphDestroy(g);
	}
}

/* ---- pointer attributes ---- */

static void attr_line(const char *kind, CUdeviceptr base, CUdeviceptr q)
{
	for (int a = CU_POINTER_ATTRIBUTE_CONTEXT; a <= CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE; a++) {
		union { unsigned long long u64; CUdeviceptr p; void *v; CUcontext c; unsigned int u;
			int i; CUmemoryPool pool; CUDA_POINTER_ATTRIBUTE_P2P_TOKENS tok; } v;
		CUresult rc;
		char val[64];

		if (a == CU_POINTER_ATTRIBUTE_P2P_TOKENS)
			continue;	/* deprecated, needs a kernel interface */
		memset(&v, 0, sizeof(v));
		rc = cuPointerGetAttribute(&v, (CUpointer_attribute)a, q);
		if (rc != CUDA_SUCCESS) {
			snprintf(val, sizeof(val), "rc=%d", (int)rc);
		} else {
			switch (a) {
			case CU_POINTER_ATTRIBUTE_CONTEXT:
				snprintf(val, sizeof(val), "%s", v.c == ctx ? "current" : v.c ? "other" : "null");
				break;
			case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
			case CU_POINTER_ATTRIBUTE_HOST_POINTER:
			case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
			case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
				if (!v.p)
					snprintf(val, sizeof(val), "null");
				else
					snprintf(val, sizeof(val), "base%+lld", (long long)(v.p - base));
				break;
			case CU_POINTER_ATTRIBUTE_BUFFER_ID:
			case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID:
				snprintf(val, sizeof(val), "%s", v.u64 ? "nonzero" : "0");
				break;
			case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
				snprintf(val, sizeof(val), "%s", v.pool ? "pool" : "null");
				break;
			case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
			case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
			case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
				snprintf(val, sizeof(val), "%llu", v.u64);
				break;
			default:
				snprintf(val, sizeof(val), "%u", v.u);
				break;
			}
		}
		FACT("attr.%s.%d %s", kind, a, val);
	}
	{
		CUdeviceptr b = 0;
		size_t sz = 0;
		CUresult rc = cuMemGetAddressRange(&b, &sz, q);

		if (rc == CUDA_SUCCESS)
			FACT("attr.%s.address_range base%+lld %zu", kind, (long long)(b - base), sz);
		else
			FACT("attr.%s.address_range rc=%d", kind, (int)rc);
	}
}

static CUresult dmabuf(CUdeviceptr p, size_t size)
{
	int fd = -1;
	CUresult rc = cuMemGetHandleForAddressRange(&fd, p, size, CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);

	if (rc == CUDA_SUCCESS)
		close(fd);
	return rc;
}

static void export_line(const char *kind, CUdeviceptr p, size_t size)
{
	CUipcMemHandle ipc;
	CUmemPoolPtrExportData exp;

	FACT("export.%s.ipc_rc %d", kind, (int)cuIpcGetMemHandle(&ipc, p));
	FACT("export.%s.ipc_interior_rc %d", kind, (int)cuIpcGetMemHandle(&ipc, p + 4096));
	FACT("export.%s.dmabuf_rc %d", kind, (int)dmabuf(p, size));
	FACT("export.%s.pool_export_pointer_rc %d", kind, (int)cuMemPoolExportPointer(&exp, p));
}

/* A VMM allocation: create, reserve, map, grant access. */
static CUresult vmm_alloc(CUmemLocationType type, CUmemAllocationHandleType handles, size_t size,
			  CUdeviceptr *out, CUmemGenericAllocationHandle *h)
{
	CUmemAllocationProp prop;
	CUmemAccessDesc acc;
	CUresult rc;

	memset(&prop, 0, sizeof(prop));
	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.location.type = type;
	prop.location.id = 0;
	prop.requestedHandleTypes = handles;
	rc = cuMemCreate(h, size, &prop, 0);
	if (rc != CUDA_SUCCESS)
		return rc;
	must(cuMemAddressReserve(out, size, 0, 0, 0), "reserve");
	must(cuMemMap(*out, size, 0, *h, 0), "map");
	memset(&acc, 0, sizeof(acc));
	acc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	acc.location.id = dev;
	acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	must(cuMemSetAccess(*out, size, &acc, 1), "access");
	return CUDA_SUCCESS;
}

static void vmm_free(CUdeviceptr p, size_t size, CUmemGenericAllocationHandle h)
{
	cuMemUnmap(p, size);
	cuMemAddressFree(p, size);
	cuMemRelease(h);
}

static void attr_export_facts(void)
{
	const size_t size = 64 * MiB;
	CUdeviceptr d, reg_d, ha_d, numa_d, pool_d;
	CUmemGenericAllocationHandle h;
	void *host = host_pages(size), *ha;

	must(cuMemAlloc(&d, size), "cuMemAlloc");
	attr_line("device", d, d + 4096);
	export_line("device", d, size);
	cuMemFree(d);

	must(cuMemHostRegister(host, size, CU_MEMHOSTREGISTER_DEVICEMAP | CU_MEMHOSTREGISTER_PORTABLE), "register");
	must(cuMemHostGetDevicePointer(&reg_d, host, 0), "devptr");
	FACT("attr.registered.devptr_is_hostptr %d", reg_d == (CUdeviceptr)host);
	attr_line("registered", reg_d, reg_d + 4096);
	export_line("registered", reg_d, size);
	cuMemHostUnregister(host);
	munmap(host, size);

	must(cuMemHostAlloc(&ha, size, CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc");
	must(cuMemHostGetDevicePointer(&ha_d, ha, 0), "devptr");
	attr_line("host_alloc", ha_d, ha_d + 4096);
	export_line("host_alloc", ha_d, size);
	cuMemFreeHost(ha);

	if (vmm_alloc(CU_MEM_LOCATION_TYPE_HOST_NUMA, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, size, &numa_d, &h) == CUDA_SUCCESS) {
		attr_line("host_numa", numa_d, numa_d + 4096);
		export_line("host_numa", numa_d, size);
		vmm_free(numa_d, size, h);
	}
	if (vmm_alloc(CU_MEM_LOCATION_TYPE_DEVICE, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, size, &numa_d, &h) == CUDA_SUCCESS) {
		attr_line("vmm_device", numa_d, numa_d + 4096);
		export_line("vmm_device", numa_d, size);
		vmm_free(numa_d, size, h);
	}

	must(cuMemAllocAsync(&pool_d, size, s), "cuMemAllocAsync");
	cuStreamSynchronize(s);
	attr_line("pool", pool_d, pool_d + 4096);
	export_line("pool", pool_d, size);
	cuMemFreeAsync(pool_d, s);
	cuStreamSynchronize(s);

	/* Two allocations: do they share a buffer id? */
	{
		CUdeviceptr a, b;
		unsigned long long ia = 0, ib = 0;

		must(cuMemAlloc(&a, 2 * MiB), "a");
		must(cuMemAlloc(&b, 2 * MiB), "b");
		cuPointerGetAttribute(&ia, CU_POINTER_ATTRIBUTE_BUFFER_ID, a);
		cuPointerGetAttribute(&ib, CU_POINTER_ATTRIBUTE_BUFFER_ID, b);
		FACT("attr.device.buffer_ids_differ %d", ia != ib);
		/* Raw, to see their range (not compared between runs). */
		printf("raw buffer ids %#llx %#llx\n", ia, ib);
		cuMemFree(a);
		cuMemFree(b);
	}
}

/* ---- shareable handles: which handle types cuMemCreate accepts where ---- */

static void handle_facts(void)
{
	static const struct {
		const char *name;
		CUmemLocationType type;
		CUmemAllocationHandleType handles;
	} variants[] = {
		{ "device_none", CU_MEM_LOCATION_TYPE_DEVICE, CU_MEM_HANDLE_TYPE_NONE },
		{ "device_posix_fd", CU_MEM_LOCATION_TYPE_DEVICE, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR },
		{ "device_fabric", CU_MEM_LOCATION_TYPE_DEVICE, CU_MEM_HANDLE_TYPE_FABRIC },
		{ "device_posix_fd_fabric", CU_MEM_LOCATION_TYPE_DEVICE, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR | CU_MEM_HANDLE_TYPE_FABRIC },
		{ "host_numa_none", CU_MEM_LOCATION_TYPE_HOST_NUMA, CU_MEM_HANDLE_TYPE_NONE },
		{ "host_numa_posix_fd", CU_MEM_LOCATION_TYPE_HOST_NUMA, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR },
		{ "host_numa_fabric", CU_MEM_LOCATION_TYPE_HOST_NUMA, CU_MEM_HANDLE_TYPE_FABRIC },
		{ "host_none", CU_MEM_LOCATION_TYPE_HOST, CU_MEM_HANDLE_TYPE_NONE },
		{ "host_posix_fd", CU_MEM_LOCATION_TYPE_HOST, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR },
	};

	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		CUmemAllocationProp prop;
		CUmemGenericAllocationHandle h;
		CUresult rc;
		int fd = -1;
		CUmemFabricHandle fab;

		memset(&prop, 0, sizeof(prop));
		prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
		prop.location.type = variants[i].type;
		prop.location.id = 0;
		prop.requestedHandleTypes = variants[i].handles;
		rc = cuMemCreate(&h, 2 * MiB, &prop, 0);
		FACT("handle.%s.create_rc %d", variants[i].name, (int)rc);
		if (rc != CUDA_SUCCESS)
			continue;
		rc = cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
		FACT("handle.%s.export_posix_fd_rc %d", variants[i].name, (int)rc);
		if (rc == CUDA_SUCCESS)
			close(fd);
		FACT("handle.%s.export_fabric_rc %d", variants[i].name,
		     (int)cuMemExportToShareableHandle(&fab, h, CU_MEM_HANDLE_TYPE_FABRIC, 0));
		{
			CUmemAllocationProp got;

			memset(&got, 0, sizeof(got));
			cuMemGetAllocationPropertiesFromHandle(&got, h);
			FACT("handle.%s.props_handle_types %u", variants[i].name, (unsigned int)got.requestedHandleTypes);
			FACT("handle.%s.props_location %d:%d", variants[i].name, (int)got.location.type, got.location.id);
		}
		cuMemRelease(h);
	}
	/* PyTorch 2.11's expandable segments ask for GPUDirect RDMA; on host memory? */
	{
		CUmemAllocationProp prop;
		CUmemGenericAllocationHandle h;
		CUresult rc;

		memset(&prop, 0, sizeof(prop));
		prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
		prop.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
		prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
		prop.allocFlags.gpuDirectRDMACapable = 1;
		rc = cuMemCreate(&h, 2 * MiB, &prop, 0);
		FACT("handle.host_numa_rdma.create_rc %d", (int)rc);
		if (rc == CUDA_SUCCESS)
			cuMemRelease(h);
	}
}

/* ---- fork: what a child's CUDA calls return ---- */

static void fork_facts(void)
{
	static const char *const names[] = {
		"cuInit", "cuDeviceGetCount", "cuDeviceGet", "cuCtxGetCurrent", "cuCtxSetCurrent",
		"cuMemAlloc", "cuMemFree", "cuMemGetInfo", "cuStreamSynchronize", "cuMemHostRegister",
		"cuDriverGetVersion", "cuGetProcAddress", "cuStreamGetCaptureInfo",
	};
	enum { N = sizeof(names) / sizeof(names[0]) };
	int fds[2], rcs[N];
	CUdeviceptr parent_ptr;
	pid_t pid;
	int status = 0, got;

	must(cuMemAlloc(&parent_ptr, 2 * MiB), "alloc");
	if (pipe(fds))
		exit(2);
	pid = fork();
	if (pid == 0) {
		CUcontext c = (CUcontext)1;
		CUdeviceptr d;
		CUdevice dv;
		size_t f, t;
		int n, v;
		void *fn;
		void *host = host_pages(2 * MiB);
		CUstreamCaptureStatus st;

		alarm(20);
		close(fds[0]);
/* Each answer goes to the parent at once: a call that crashes the child names itself. */
#define CHILD_CALL(i, call)                                             \
	do {                                                            \
		rcs[i] = (call);                                        \
		if (write(fds[1], &rcs[i], sizeof(rcs[i])) != sizeof(rcs[i])) \
			_exit(1);                                       \
	} while (0)
		CHILD_CALL(0, cuInit(0));
		CHILD_CALL(1, cuDeviceGetCount(&n));
		CHILD_CALL(2, cuDeviceGet(&dv, 0));
		CHILD_CALL(3, cuCtxGetCurrent(&c));
		CHILD_CALL(4, cuCtxSetCurrent(ctx));
		CHILD_CALL(5, cuMemAlloc(&d, 2 * MiB));
		CHILD_CALL(6, cuMemFree(parent_ptr));
		CHILD_CALL(7, cuMemGetInfo(&f, &t));
		CHILD_CALL(8, cuStreamSynchronize(s));
		CHILD_CALL(9, cuMemHostRegister(host, 2 * MiB, 0));
		CHILD_CALL(10, cuDriverGetVersion(&v));
		CHILD_CALL(11, cuGetProcAddress("cuMemAlloc", &fn, 12000, 0, NULL));
		CHILD_CALL(12, cuStreamGetCaptureInfo(s, &st, NULL, NULL, NULL, NULL, NULL));
#undef CHILD_CALL
		_exit(0);
	}
	close(fds[1]);
	memset(rcs, 0xff, sizeof(rcs));
	for (got = 0; got < N && read(fds[0], &rcs[got], sizeof(rcs[got])) == sizeof(rcs[got]);)
		got++;
	/* The calls that answered before the child ended (N: all of them). */
	FACT("fork.child_answers %d", got);
	waitpid(pid, &status, 0);
	close(fds[0]);
	FACT("fork.child_exit %d", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	for (int i = 0; i < N; i++)
		FACT("fork.%s %d", names[i], rcs[i]);
	FACT("fork.parent_free_rc %d", (int)cuMemFree(parent_ptr));
}

static void device_facts(void)
{
	static const struct { const char *name; CUdevice_attribute a; } attrs[] = {
		{ "host_numa_id", CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID },
		{ "host_numa_vmm", CU_DEVICE_ATTRIBUTE_HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED },
		{ "host_numa_pools", CU_DEVICE_ATTRIBUTE_HOST_NUMA_MEMORY_POOLS_SUPPORTED },
		{ "memory_pools", CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED },
		{ "mempool_handle_types", CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES },
		{ "dma_buf", CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED },
		{ "posix_fd_handles", CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED },
		{ "fabric_handles", CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_FABRIC_SUPPORTED },
		{ "rdma_with_vmm", CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED },
		{ "host_pointer_for_registered", CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM },
	};
	static const int errors[] = { 3, 800, 900, 901, 907, 908 };

	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		int v = -99;
		CUresult rc = cuDeviceGetAttribute(&v, attrs[i].a, dev);

		if (rc == CUDA_SUCCESS)
			FACT("device.%s %d", attrs[i].name, v);
		else
			FACT("device.%s rc=%d", attrs[i].name, (int)rc);
	}
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		const char *name = NULL;

		cuGetErrorName((CUresult)errors[i], &name);
		FACT("error.%d %s", errors[i], name ? name : "?");
	}
}

/* ---- under the shim: a spilled cuMemAlloc and cuMemAllocAsync ---- */

static void check(int cond, const char *what)
{
	printf("CHECK %s %s\n", cond ? "PASS" : "FAIL", what);
	fflush(stdout);
	checks_failed += !cond;
}

static void spilled_checks(const char *kind, CUdeviceptr a, CUdeviceptr b, size_t size)
{
	unsigned int type = 0;
	int legacy = -1;
	unsigned long long ia = 0, ib = 0;
	CUdeviceptr start = 0, hp = 0;
	size_t rsize = 0;
	CUipcMemHandle ipc;
	CUresult ipc_rc, hp_rc;
	char what[160];

	attr_line(kind, a, a + 4096);
	export_line(kind, a, size);
	cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a + 4096);
	cuPointerGetAttribute(&legacy, CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE, a);
	cuPointerGetAttribute(&ia, CU_POINTER_ATTRIBUTE_BUFFER_ID, a);
	cuPointerGetAttribute(&ib, CU_POINTER_ATTRIBUTE_BUFFER_ID, b);
	cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, a + 4096);
	cuPointerGetAttribute(&rsize, CU_POINTER_ATTRIBUTE_RANGE_SIZE, a + 4096);
	hp_rc = cuPointerGetAttribute(&hp, CU_POINTER_ATTRIBUTE_HOST_POINTER, a);
	ipc_rc = cuIpcGetMemHandle(&ipc, a);
	snprintf(what, sizeof(what), "%s: two pieces have different BUFFER_IDs", kind);
	check(ia && ib && ia != ib, what);
	snprintf(what, sizeof(what), "%s: RANGE_START/RANGE_SIZE are the piece's", kind);
	check(start == a && rsize == size, what);
	snprintf(what, sizeof(what), "%s: IS_LEGACY_CUDA_IPC_CAPABLE (%d) agrees with cuIpcGetMemHandle (%d)", kind, legacy, (int)ipc_rc);
	check((legacy == 1) == (ipc_rc == CUDA_SUCCESS), what);
	snprintf(what, sizeof(what), "%s: MEMORY_TYPE %u agrees with HOST_POINTER (rc %d)", kind, type, (int)hp_rc);
	check(type == CU_MEMORYTYPE_HOST ? hp_rc == CUDA_SUCCESS : hp_rc != CUDA_SUCCESS, what);
}

static int spilled_mode(void)
{
	const size_t size = 256 * MiB;
	CUdeviceptr a, b;

	/* With SPILLWAY_VRAM_LIMIT=64M both land in host memory. */
	must(cuMemAlloc(&a, size), "cuMemAlloc a");
	must(cuMemAlloc(&b, size), "cuMemAlloc b");
	spilled_checks("spilled", a, b, size);
	cuMemFree(a);
	cuMemFree(b);
	must(cuMemAllocAsync(&a, size, s), "cuMemAllocAsync a");
	must(cuMemAllocAsync(&b, size, s), "cuMemAllocAsync b");
	cuStreamSynchronize(s);
	spilled_checks("spilled_async", a, b, size);
	{
		CUmemoryPool pool = NULL;

		cuPointerGetAttribute(&pool, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, a);
		check(pool == NULL, "spilled_async: MEMPOOL_HANDLE is null (no pool holds it)");
	}
	cuMemFreeAsync(a, s);
	cuMemFreeAsync(b, s);
	cuStreamSynchronize(s);
	return checks_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "all";

	setvbuf(stdout, NULL, _IOLBF, 0);
	must(cuInit(0), "cuInit");
	must(cuDeviceGet(&dev, 0), "cuDeviceGet");
	/* Like cudart: the primary context, current on this thread. */
	must(cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
	must(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
	must(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
	must(cuStreamCreate(&other, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
	if (!strcmp(mode, "spilled"))
		return spilled_mode();
	device_facts();
	capture_facts();
	pool_facts();
	graph_facts();
	attr_export_facts();
	handle_facts();
	fork_facts();
	FACT("done 1");
	return 0;
}
