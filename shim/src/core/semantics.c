/*
 * CUDA semantics the placement must respect (docs/shim.md, "CUDA semantics"): stream capture,
 * stream-ordered pools, graph memory, the stream's device, error names.  Each fact below was
 * measured on the H100 (test/gpu/driver_facts.c).
 */
#include "core.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors a user can read ---- */

const char *cu_error_name(CUresult rc)
{
	static __thread char buf[96];
	real_cuGetErrorName_t name_of = REAL(cuGetErrorName);
	const char *name = NULL;

	if (!name_of || name_of(rc, &name) != CUDA_SUCCESS || !name)
		name = "CUDA error";
	snprintf(buf, sizeof(buf), "%s (%d)", name, (int)rc);
	return buf;
}

/* ---- streams ---- */

/* A per-thread-stream entry point's NULL stream is the thread's default stream. */
static CUstream explicit_stream(CUstream stream, int per_thread)
{
	return per_thread && !stream ? CU_STREAM_PER_THREAD : stream;
}

CUstreamCaptureStatus stream_capture_status(CUstream stream, int per_thread)
{
	real_cuStreamGetCaptureInfo_v3_t info = REAL(cuStreamGetCaptureInfo_v3);
	CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;

	/*
	 * The legacy NULL stream can not be captured (cuStreamBeginCapture refuses it); while a
	 * blocking stream captures, the driver answers CAPTURE_IMPLICIT for it (documented), which
	 * is NONE below too: the default-stream path saves the call.
	 */
	if (!per_thread && (!stream || stream == CU_STREAM_LEGACY))
		return CU_STREAM_CAPTURE_STATUS_NONE;
	if (!info || info(explicit_stream(stream, per_thread), &st, NULL, NULL, NULL, NULL, NULL) !=
			     CUDA_SUCCESS)
		return CU_STREAM_CAPTURE_STATUS_NONE;
	return st;
}

struct device_query {
	CUcontext ctx;
	int dev, rc;
};

static void read_current_device(void *arg)
{
	struct device_query *q = arg;
	CUcontext current;

	q->rc = ctx_current_dev(&current, &q->dev);
	if (q->rc == 0 && current != q->ctx)
		q->rc = -1; /* the context could not be made current */
}

int stream_ctx_dev(CUstream stream, int per_thread, CUcontext *ctx, int *dev)
{
	real_cuStreamGetCtx_t get_ctx = REAL(cuStreamGetCtx);
	CUstream s = explicit_stream(stream, per_thread);
	struct device_query q = { .rc = -1 };
	CUcontext current;
	int current_dev;

	/* The default streams belong to the current context. */
	if ((uintptr_t)s <= (uintptr_t)CU_STREAM_PER_THREAD || !get_ctx)
		return ctx_current_dev(ctx, dev);
	if (get_ctx(s, ctx) != CUDA_SUCCESS || !*ctx)
		return ctx_current_dev(ctx, dev);
	/*
	 * The stream's device is its context's.  Not cuStreamGetDevice: on a capturing stream
	 * the driver refuses it with 900 and invalidates the capture (H100, driver 580; the
	 * driver's error log of test/gpu/torch_graphs.py under cudaMallocAsync, 2026-12-06).
	 */
	if (ctx_current_dev(&current, &current_dev) == 0 && current == *ctx) {
		*dev = current_dev;
		return 0;
	}
	q.ctx = *ctx;
	with_context(*ctx, read_current_device, &q);
	if (q.rc != 0)
		return ctx_current_dev(ctx, dev);
	*dev = q.dev;
	return 0;
}

/* ---- stream captures under way ---- */

#define MAX_CAPTURES 256

struct capture {
	CUstream stream; /* NULL: a free slot */
	CUstreamCaptureMode mode;
};

/* Begin and end are rare; the hot paths read the atomic counts only. */
static pthread_mutex_t captures_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct capture captures[MAX_CAPTURES]; /* Protected by captures_mutex. */
static _Atomic int captures_running, global_captures_running;
/* More captures than slots: their ends can not be matched, so assume one always runs. */
static _Atomic int captures_untracked;
/* This thread's captures that forbid its own unsafe calls (global and thread-local mode). */
static __thread int own_strict_captures, own_global_captures;

void capture_began(CUstream stream, int per_thread, CUstreamCaptureMode mode)
{
	CUstream s = explicit_stream(stream, per_thread);
	int slot = -1;

	pthread_mutex_lock(&captures_mutex);
	for (int i = 0; i < MAX_CAPTURES && slot < 0; i++)
		if (!captures[i].stream)
			slot = i;
	if (slot >= 0)
		captures[slot] = (struct capture){ .stream = s, .mode = mode };
	pthread_mutex_unlock(&captures_mutex);
	if (slot < 0) {
		if (!captures_untracked++)
			spw_log(LOG_WARN,
				"more than %d stream captures at once: from now on the shim "
				"pins nothing and holds what is freed, as during a capture",
				MAX_CAPTURES);
		return;
	}
	captures_running++;
	if (mode == CU_STREAM_CAPTURE_MODE_GLOBAL) {
		global_captures_running++;
		own_global_captures++;
	}
	if (mode != CU_STREAM_CAPTURE_MODE_RELAXED)
		own_strict_captures++;
}

void capture_ended(CUstream stream, int per_thread)
{
	CUstream s = explicit_stream(stream, per_thread);
	CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
	int found = 0;

	pthread_mutex_lock(&captures_mutex);
	for (int i = 0; i < MAX_CAPTURES && !found; i++) {
		if (captures[i].stream == s) {
			mode = captures[i].mode;
			captures[i].stream = NULL;
			found = 1;
		}
	}
	pthread_mutex_unlock(&captures_mutex);
	if (!found)
		return;
	captures_running--;
	if (mode == CU_STREAM_CAPTURE_MODE_GLOBAL) {
		global_captures_running--;
		if (own_global_captures)
			own_global_captures--;
	}
	/* A non-relaxed capture ends in the thread that began it (the driver enforces it: 908). */
	if (mode != CU_STREAM_CAPTURE_MODE_RELAXED && own_strict_captures)
		own_strict_captures--;
}

int captures_under_way(void)
{
	return captures_running > 0 || captures_untracked;
}

/* This thread's capture interaction mode, read by swapping it out and back. */
static CUstreamCaptureMode thread_capture_mode(void)
{
	real_cuThreadExchangeStreamCaptureMode_t exchange = REAL(cuThreadExchangeStreamCaptureMode);
	CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED, back;

	if (!exchange || exchange(&mode) != CUDA_SUCCESS)
		return CU_STREAM_CAPTURE_MODE_GLOBAL; /* unknown: the strictest */
	back = mode;
	exchange(&back);
	return mode;
}

int capture_forbids_unsafe(void)
{
	CUstreamCaptureMode mode;

	if (!captures_under_way())
		return 0;
	if (captures_untracked)
		return 1;
	mode = thread_capture_mode();
	if (mode == CU_STREAM_CAPTURE_MODE_RELAXED)
		return 0;
	return own_strict_captures > 0 || (mode == CU_STREAM_CAPTURE_MODE_GLOBAL &&
					   global_captures_running - own_global_captures > 0);
}

int relaxed_enter(CUstreamCaptureMode *old)
{
	real_cuThreadExchangeStreamCaptureMode_t exchange = REAL(cuThreadExchangeStreamCaptureMode);

	*old = CU_STREAM_CAPTURE_MODE_RELAXED;
	if (!captures_under_way() || !exchange)
		return 0;
	return exchange(old) == CUDA_SUCCESS;
}

void relaxed_leave(int entered, CUstreamCaptureMode old)
{
	real_cuThreadExchangeStreamCaptureMode_t exchange = REAL(cuThreadExchangeStreamCaptureMode);

	if (entered && exchange)
		exchange(&old);
}

/* ---- pools created through us: where their memory lives, which handles they export ---- */

struct known_pool {
	CUmemoryPool pool;
	CUmemLocation location;
	CUmemAllocationHandleType handle_types;
	struct known_pool *next;
};

static pthread_mutex_t pools_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct known_pool *pools;  /* Protected by pools_mutex. */
static _Atomic int pools_created; /* none yet: the default pools only, no lookup needed */

void pool_record(CUmemoryPool pool, const CUmemPoolProps *props)
{
	struct known_pool *k = malloc(sizeof(*k));

	if (!k) {
		spw_log(LOG_WARN,
			"out of memory for a pool record: its allocations go to the driver");
		return;
	}
	k->pool = pool;
	k->location = props->location;
	k->handle_types = props->handleTypes;
	pthread_mutex_lock(&pools_mutex);
	k->next = pools;
	pools = k;
	pthread_mutex_unlock(&pools_mutex);
	pools_created = 1;
}

void pools_lock(void)
{
	pthread_mutex_lock(&pools_mutex);
}

void pools_unlock(void)
{
	pthread_mutex_unlock(&pools_mutex);
}

void pools_reset_lock(void)
{
	pthread_mutex_init(&pools_mutex, NULL);
}

void pool_forget(CUmemoryPool pool)
{
	struct known_pool *gone = NULL;

	pthread_mutex_lock(&pools_mutex);
	for (struct known_pool **pp = &pools; *pp; pp = &(*pp)->next) {
		if ((*pp)->pool == pool) {
			gone = *pp;
			*pp = gone->next;
			break;
		}
	}
	pthread_mutex_unlock(&pools_mutex);
	free(gone);
}

/*
 * The pool a stream-ordered request on @dev draws from: @pool, or the device's current pool
 * (the default pool unless cuDeviceSetMemPool chose one).  NULL when the driver cannot say.
 */
static CUmemoryPool pool_of_request(CUmemoryPool pool, int dev)
{
	real_cuDeviceGetMemPool_t current = REAL(cuDeviceGetMemPool);

	if (pool)
		return pool;
	if (!current || current(&pool, (CUdevice)dev) != CUDA_SUCCESS)
		return NULL;
	return pool;
}

enum pool_use pool_use(CUmemoryPool pool, int dev)
{
	enum pool_use use = pool ? POOL_UNKNOWN : POOL_PLACE;

	/* No pool created through us: the request draws from a default pool. */
	if (!pools_created && !pool)
		return POOL_PLACE;
	pool = pool_of_request(pool, dev);
	pthread_mutex_lock(&pools_mutex);
	for (struct known_pool *k = pools; k && pool; k = k->next) {
		if (k->pool != pool)
			continue;
		if (k->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
			use = POOL_HOST;
		else if (k->handle_types != CU_MEM_HANDLE_TYPE_NONE)
			use = POOL_EXPORTABLE;
		else
			use = POOL_PLACE;
		break;
	}
	pthread_mutex_unlock(&pools_mutex);
	if (use == POOL_UNKNOWN) {
		/* The device's default pool, named explicitly (cuDeviceGetDefaultMemPool). */
		real_cuDeviceGetDefaultMemPool_t default_of = REAL(cuDeviceGetDefaultMemPool);
		CUmemoryPool def = NULL;

		if (default_of && default_of(&def, (CUdevice)dev) == CUDA_SUCCESS && def == pool)
			use = POOL_PLACE;
	}
	return use;
}

uint64_t pool_cached(CUmemoryPool pool, int dev)
{
	real_cuMemPoolGetAttribute_t get = REAL(cuMemPoolGetAttribute);
	cuuint64_t reserved = 0, used = 0;

	pool = pool_of_request(pool, dev);
	if (!pool || !get || get(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved) ||
	    get(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used))
		return 0;
	return sat_sub(reserved, used);
}

/* ---- graph memory: allocation nodes take VRAM from the device's graph pool at launch ---- */

static _Atomic int graph_memory_seen[MAX_DEVICES];
static _Atomic int graph_over_budget_logged;

void graph_memory_note(int dev)
{
	if (dev >= 0 && dev < MAX_DEVICES)
		graph_memory_seen[dev] = 1;
}

uint64_t graph_memory_reserved(int dev)
{
	real_cuDeviceGetGraphMemAttribute_t get = REAL(cuDeviceGetGraphMemAttribute);
	const struct spw_config *c = spw_config();
	cuuint64_t reserved = 0;

	/* Only processes that made graph memory pay for the query. */
	if (dev < 0 || dev >= MAX_DEVICES || !graph_memory_seen[dev] || !get ||
	    get((CUdevice)dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &reserved) != CUDA_SUCCESS)
		return 0;
	if (c->vram_limit && reserved > c->vram_limit && !graph_over_budget_logged++)
		spw_log(LOG_WARN,
			"graph memory on device %d (%llu MiB) is over SPILLWAY_VRAM_LIMIT: the driver "
			"keeps it in VRAM; every later allocation spills",
			dev, (unsigned long long)(reserved >> 20));
	return reserved;
}
