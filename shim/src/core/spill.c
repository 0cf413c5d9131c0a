/*
 * Spilled allocations: arenas of host memory (pool or host backend) registered with the
 * driver once each and cut into pieces, so a small spill costs no pinning.
 *
 * An arena belongs to the context that registered it, and is released with it.  Requests
 * bigger than SPILLWAY_CHUNK get an arena of their own, released at their free.  A shared
 * arena that empties is released unless it is its context's only empty one.
 *
 * spill_mutex protects the arena list, every arena's free list and the pending list; it is
 * never held across a driver call that pins or unpins memory.
 */
#define _GNU_SOURCE
#include "core.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SPILL_ALIGN (64ULL << 10) /* piece granularity: 64 KiB keeps fragmentation low */

struct extent {
	size_t off, len;
	struct extent *next;
};

struct arena {
	struct backend_map map;
	CUdeviceptr dbase; /* device address of map.addr */
	CUcontext ctx;
	size_t used; /* bytes in live or pending pieces */
	int dedicated;
	struct extent *free_list; /* sorted by offset, coalesced */
	struct arena *next;
};

/*
 * A stream-ordered free waiting for its event, or (@event NULL) a piece freed while a
 * stream captured: a graph captured then may use it at any later launch, so it is held
 * until its context goes.
 */
struct pending {
	struct alloc_rec *rec;
	CUevent event;
	struct pending *next;
};

static pthread_mutex_t spill_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct arena *arenas;	/* Protected by spill_mutex. */
static struct pending *pending; /* Protected by spill_mutex. */

void spill_lock(void)
{
	pthread_mutex_lock(&spill_mutex);
}

void spill_unlock(void)
{
	pthread_mutex_unlock(&spill_mutex);
}

void spill_reset_lock(void)
{
	pthread_mutex_init(&spill_mutex, NULL);
}

static size_t piece_len(size_t size)
{
	return (size_t)round_up(size ? size : 1, SPILL_ALIGN);
}

/* First fit.  Returns the offset, or (size_t)-1. */
static size_t extent_take(struct arena *a, size_t len)
{
	for (struct extent **pp = &a->free_list; *pp; pp = &(*pp)->next) {
		struct extent *e = *pp;
		size_t off = e->off;

		if (e->len < len)
			continue;
		e->off += len;
		e->len -= len;
		if (!e->len) {
			*pp = e->next;
			free(e);
		}
		a->used += len;
		return off;
	}
	return (size_t)-1;
}

static void extent_give(struct arena *a, size_t off, size_t len)
{
	struct extent **pp = &a->free_list, *prev = NULL, *e;

	while (*pp && (*pp)->off < off) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	a->used -= len;
	if (prev && prev->off + prev->len == off) {
		prev->len += len;
		if (*pp && prev->off + prev->len == (*pp)->off) {
			e = *pp;
			prev->len += e->len;
			prev->next = e->next;
			free(e);
		}
		return;
	}
	if (*pp && off + len == (*pp)->off) {
		(*pp)->off = off;
		(*pp)->len += len;
		return;
	}
	e = malloc(sizeof(*e));
	if (!e)
		return; /* the piece is lost to reuse; the arena still goes when released */
	e->off = off;
	e->len = len;
	e->next = *pp;
	*pp = e;
}

static int map_backend(size_t size, struct backend_map *m)
{
	const struct spw_config *c = spw_config();
	int err = -ENODEV;

	if (c->backend == BACKEND_POOL || (c->backend == BACKEND_AUTO && pool_usable())) {
		err = pool_map(size, m);
		if (err == 0 || c->backend == BACKEND_POOL) {
			if (err)
				spw_log(LOG_WARN, "pool backend: %zu bytes: %s", size,
					strerror(-err));
			return err;
		}
		spw_log(LOG_INFO, "pool backend: %s; using host memory", strerror(-err));
	}
	return host_map(size, m);
}

/* Register @a's mapping and find its device address, under @a's context. */
static CUresult arena_register(struct arena *a)
{
	real_cuMemHostRegister_v2_t reg = REAL(cuMemHostRegister_v2);
	real_cuMemHostGetDevicePointer_v2_t devptr = REAL(cuMemHostGetDevicePointer_v2);
	real_cuMemHostUnregister_t unreg = REAL(cuMemHostUnregister);
	CUresult rc;

	rc = reg(a->map.addr, a->map.size,
		 CU_MEMHOSTREGISTER_DEVICEMAP | CU_MEMHOSTREGISTER_PORTABLE);
	if (rc != CUDA_SUCCESS) {
		/* During a capture that forbids it the driver answers 900: the caller keeps VRAM. */
		spw_log(rc == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED ? LOG_INFO : LOG_WARN,
			"cuMemHostRegister(%zu bytes): %s", a->map.size, cu_error_name(rc));
		return rc;
	}
	rc = devptr(&a->dbase, a->map.addr, 0);
	if (rc != CUDA_SUCCESS) {
		spw_log(LOG_WARN, "cuMemHostGetDevicePointer: %s", cu_error_name(rc));
		unreg(a->map.addr);
	}
	return rc;
}

/* The arena of @ctx (the request's: its stream's for async ones), registered there. */
static struct arena *arena_create(size_t size, CUcontext ctx, int dedicated, CUresult *err)
{
	real_cuCtxGetCurrent_t current = REAL(cuCtxGetCurrent);
	real_cuCtxPushCurrent_v2_t push = REAL(cuCtxPushCurrent_v2);
	real_cuCtxPopCurrent_v2_t pop = REAL(cuCtxPopCurrent_v2);
	struct arena *a = calloc(1, sizeof(*a));
	struct extent *whole = calloc(1, sizeof(*whole));
	CUcontext cur = NULL, popped;
	int pushed = 0;
	CUresult rc;

	*err = CUDA_ERROR_OUT_OF_MEMORY;
	if (!a || !whole || !REAL(cuMemHostRegister_v2) || !REAL(cuMemHostGetDevicePointer_v2) ||
	    !REAL(cuMemHostUnregister))
		goto free_structs;
	if (map_backend(size, &a->map) != 0)
		goto free_structs;
	if (current && push && pop && current(&cur) == CUDA_SUCCESS && cur != ctx && ctx)
		pushed = push(ctx) == CUDA_SUCCESS;
	rc = arena_register(a);
	if (pushed)
		pop(&popped);
	if (rc != CUDA_SUCCESS) {
		if (rc == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)
			*err = rc;
		goto unmap;
	}
	a->ctx = ctx;
	a->dedicated = dedicated;
	whole->len = a->map.size;
	a->free_list = whole;
	counter_inc(CNT_arenas_created);
	spw_log(LOG_INFO, "arena %p: %zu bytes from the %s backend", a->map.addr, a->map.size,
		a->map.kind == SPILL_POOL ? "pool" : "host");
	return a;

unmap:
	backend_unmap(&a->map);
free_structs:
	free(whole);
	free(a);
	return NULL;
}

static void unregister_arena(void *arg)
{
	struct arena *a = arg;
	real_cuMemHostUnregister_t unreg = REAL(cuMemHostUnregister);

	if (unreg)
		unreg(a->map.addr);
}

static void arena_release(struct arena *a)
{
	with_context(a->ctx, unregister_arena, a);
	backend_unmap(&a->map);
	while (a->free_list) {
		struct extent *e = a->free_list;

		a->free_list = e->next;
		free(e);
	}
	counter_inc(CNT_arenas_released);
	free(a);
}

static void unlink_arena(struct arena *a)
{
	for (struct arena **pp = &arenas; *pp; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			return;
		}
	}
}

/* Called with spill_mutex held: whether @a should go now that it is empty. */
static int arena_should_go(struct arena *a)
{
	if (a->dedicated)
		return 1;
	for (struct arena *b = arenas; b; b = b->next)
		if (b != a && b->ctx == a->ctx && !b->dedicated && !b->used)
			return 1;
	return 0;
}

static struct pending *take_finished(int wait, CUcontext ctx);

CUresult spill_alloc(size_t size, int dev, CUcontext ctx, CUdeviceptr *out, const char *why)
{
	const struct spw_config *c = spw_config();
	size_t len = piece_len(size), off = (size_t)-1;
	struct alloc_rec *rec;
	struct arena *a = NULL;

	if (c->backend == BACKEND_OFF)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (!len) {
		/* Rounding wrapped past SIZE_MAX: no memory anywhere has this size. */
		counter_inc(CNT_spill_failures);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	spill_reclaim(0);
	if (c->spill_limit && sat_add(account_spill_used(), len) > c->spill_limit) {
		spw_log(LOG_WARN, "spill of %zu bytes would pass SPILLWAY_SPILL_LIMIT", size);
		counter_inc(CNT_spill_failures);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (len <= c->chunk) {
		pthread_mutex_lock(&spill_mutex);
		for (a = arenas; a; a = a->next) {
			if (a->ctx != ctx || a->dedicated)
				continue;
			off = extent_take(a, len);
			if (off != (size_t)-1)
				break;
		}
		pthread_mutex_unlock(&spill_mutex);
	}
	if (off == (size_t)-1) {
		/* Pin outside the lock: registering a large arena takes milliseconds. */
		int dedicated = len > c->chunk;

		CUresult err;

		a = arena_create(dedicated ? len : c->chunk, ctx, dedicated, &err);
		if (!a) {
			free(rec);
			counter_inc(CNT_spill_failures);
			return err;
		}
		pthread_mutex_lock(&spill_mutex);
		off = extent_take(a, len);
		a->next = arenas;
		arenas = a;
		pthread_mutex_unlock(&spill_mutex);
	}
	rec->base = a->dbase + off;
	rec->size = size;
	rec->dev = dev;
	rec->ctx = ctx;
	rec->kind = REC_SPILL;
	rec->arena = a;
	rec->offset = off;
	rec->spilled = 1;
	if (range_insert(rec) != 0) {
		/* Cannot happen unless the driver handed out an address twice; keep the piece. */
		spw_log(LOG_ERROR, "spilled range %#llx overlaps a known range",
			(unsigned long long)rec->base);
		free(rec);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	account_spill(dev, a->map.kind, (int64_t)len);
	counter_inc(CNT_spills);
	*out = rec->base;
	spw_log(LOG_INFO, "spill %zu bytes on device %d: 0 in VRAM, %zu in host memory (%s): %s",
		size, dev, size, spill_kind_name(a->map.kind), why ? why : "asked");
	return CUDA_SUCCESS;
}

void spill_free_now(struct alloc_rec *r)
{
	struct arena *a = r->arena, *gone = NULL;
	size_t len = piece_len(r->size);

	pthread_mutex_lock(&spill_mutex);
	extent_give(a, r->offset, len);
	if (!a->used && arena_should_go(a)) {
		unlink_arena(a);
		gone = a;
	}
	pthread_mutex_unlock(&spill_mutex);
	account_spill(r->dev, a->map.kind, -(int64_t)len);
	free(r);
	if (gone)
		arena_release(gone);
}

static void pending_add(struct alloc_rec *r, CUevent ev, struct pending *p)
{
	p->rec = r;
	p->event = ev;
	pthread_mutex_lock(&spill_mutex);
	p->next = pending;
	pending = p;
	pthread_mutex_unlock(&spill_mutex);
}

void spill_free_captured(struct alloc_rec *r)
{
	struct pending *p = malloc(sizeof(*p));

	spw_log(LOG_INFO,
		"free of spilled %#llx (%zu bytes) during stream capture: held until its context "
		"goes (a captured graph may use it at any launch)",
		(unsigned long long)r->base, r->size);
	counter_inc(CNT_capture_held_frees);
	if (!p) {
		/* Lost to reuse: the arena still goes with its context. */
		free(r);
		return;
	}
	pending_add(r, NULL, p);
}

CUresult spill_free_ordered(struct alloc_rec *r, CUstream stream, int per_thread)
{
	CUresult rc;
	real_cuEventCreate_t create = REAL(cuEventCreate);
	real_cuEventRecord_t record = per_thread ? (real_cuEventRecord_t)REAL(cuEventRecord_ptsz)
						 : REAL(cuEventRecord);
	real_cuEventDestroy_v2_t destroy = REAL(cuEventDestroy_v2);
	real_cuStreamSynchronize_t sync =
		per_thread ? (real_cuStreamSynchronize_t)REAL(cuStreamSynchronize_ptsz)
			   : REAL(cuStreamSynchronize);
	struct pending *p = malloc(sizeof(*p));
	CUevent ev = NULL;

	if (p && create && record && destroy &&
	    create(&ev, CU_EVENT_DISABLE_TIMING) == CUDA_SUCCESS) {
		if (record(ev, stream) == CUDA_SUCCESS) {
			pending_add(r, ev, p);
			counter_inc(CNT_deferred_frees);
			return CUDA_SUCCESS;
		}
		destroy(ev);
	}
	/* No event: wait for the stream instead, never free under queued work. */
	free(p);
	rc = sync ? sync(stream) : CUDA_ERROR_NOT_FOUND;
	if (rc != CUDA_SUCCESS) {
		/* The driver's refusal (a forked child's NOT_INITIALIZED) is the caller's answer. */
		if (range_insert(r) != 0)
			free(r);
		return rc;
	}
	spill_free_now(r);
	return CUDA_SUCCESS;
}

/*
 * Unlink the pending frees whose events completed: CUDA_SUCCESS only; any other answer
 * (NOT_READY, or an error such as 907 for a captured event) keeps the piece.  With @wait,
 * all whose events exist, and the held ones of @ctx.
 */
static struct pending *take_finished(int wait, CUcontext ctx)
{
	real_cuEventQuery_t query = REAL(cuEventQuery);
	real_cuEventSynchronize_t synchronize = REAL(cuEventSynchronize);
	struct pending *done = NULL, **pp;
	static _Atomic int odd_answer_logged;

	pthread_mutex_lock(&spill_mutex);
	pp = &pending;
	while (*pp) {
		struct pending *p = *pp;
		CUresult rc = CUDA_ERROR_NOT_READY;

		if (p->event && !wait && query)
			rc = query(p->event);
		if (rc != CUDA_SUCCESS && rc != CUDA_ERROR_NOT_READY && !odd_answer_logged++)
			spw_log(LOG_WARN,
				"cuEventQuery of a queued free: %s; the piece stays queued",
				cu_error_name(rc));
		if (p->event ? rc != CUDA_SUCCESS && !wait : !(wait && p->rec->ctx == ctx)) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = done;
		done = p;
	}
	pthread_mutex_unlock(&spill_mutex);
	/* Waiting happens outside the lock. */
	for (struct pending *p = done; p && wait && synchronize; p = p->next)
		if (p->event)
			synchronize(p->event);
	return done;
}

static void reclaim(int wait, CUcontext ctx)
{
	real_cuEventDestroy_v2_t destroy = REAL(cuEventDestroy_v2);
	CUstreamCaptureMode mode;
	struct pending *p;
	int relaxed;

	if (!pending) /* unlocked peek: a free queued right now is reclaimed next time */
		return;
	/* Querying the events and unpinning must not invalidate the application's captures. */
	relaxed = relaxed_enter(&mode);
	p = take_finished(wait, ctx);
	while (p) {
		struct pending *next = p->next;

		if (destroy && p->event)
			destroy(p->event);
		spill_free_now(p->rec);
		free(p);
		p = next;
	}
	relaxed_leave(relaxed, mode);
}

void spill_reclaim(int wait)
{
	reclaim(wait, NULL);
}

void spill_drop_context(CUcontext ctx)
{
	struct arena *mine = NULL, **pp;

	reclaim(1, ctx);
	pthread_mutex_lock(&spill_mutex);
	pp = &arenas;
	while (*pp) {
		struct arena *a = *pp;

		if (a->ctx != ctx) {
			pp = &a->next;
			continue;
		}
		*pp = a->next;
		a->next = mine;
		mine = a;
	}
	pthread_mutex_unlock(&spill_mutex);
	while (mine) {
		struct arena *next = mine->next;

		arena_release(mine);
		mine = next;
	}
}

uint64_t spill_available(void)
{
	const struct spw_config *c = spw_config();
	uint64_t in_arenas = 0, avail = 0;

	if (c->backend == BACKEND_OFF)
		return 0;
	pthread_mutex_lock(&spill_mutex);
	for (struct arena *a = arenas; a; a = a->next)
		if (!a->dedicated)
			in_arenas += a->map.size - a->used;
	pthread_mutex_unlock(&spill_mutex);
	if (c->backend != BACKEND_HOST && pool_usable())
		avail = pool_free_bytes();
	if (c->backend != BACKEND_POOL)
		avail = sat_add(avail, host_available());
	avail = sat_add(avail, in_arenas);
	if (c->spill_limit && avail > sat_sub(c->spill_limit, account_spill_used()))
		avail = sat_sub(c->spill_limit, account_spill_used());
	return avail;
}
