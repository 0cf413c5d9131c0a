/*
 * The shim's core: what the wrappers in hooks/ build on.  Nothing here calls a wrapper;
 * each section names the file that defines it.
 */
#ifndef SPILLWAY_CORE_H
#define SPILLWAY_CORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "driver.h"
#include "cgroup.h"
#include "config.h"
#include "log.h"

#define MAX_DEVICES 64

/* Where spilled bytes live. */
enum spill_kind { SPILL_POOL, SPILL_HOST, SPILL_HOST_NUMA, SPILL_KINDS };

/* What a registry record describes. */
enum rec_kind {
	REC_VRAM,    /* cuMemAlloc/Pitch in VRAM */
	REC_ASYNC,   /* cuMemAllocAsync/FromPool in VRAM */
	REC_MANAGED, /* cuMemAllocManaged: accounted, never moved */
	REC_SPILL,   /* a piece of a registered host arena */
	REC_VMM_MAP, /* a cuMemMap'd range */
	REC_SPLIT,   /* one allocation, part VRAM and part host memory (split.c) */
};

struct arena;
struct vmm_handle;
struct split;

struct alloc_rec {
	uintptr_t base;
	size_t size;
	int dev;
	CUcontext ctx;
	enum rec_kind kind;
	struct arena *arena;	   /* REC_SPILL */
	size_t offset;		   /* REC_SPILL: offset in the arena */
	struct vmm_handle *handle; /* REC_VMM_MAP */
	int spilled;		   /* REC_SPILL, REC_SPLIT, or a map of a host-NUMA handle */
	struct split *split;	   /* REC_SPLIT */
};

/* init.c: lazily, once: config, log, fork handlers, exit stats. */
void spw_init(void);

/* registry.c */
int vram_insert(struct alloc_rec *r);
struct alloc_rec *vram_remove(uintptr_t base);
int range_insert(struct alloc_rec *r);
/* Remove and return the range record starting exactly at @base with @kind, or NULL. */
struct alloc_rec *range_remove_exact(uintptr_t base, enum rec_kind kind);
/* Remove and return one record of @kind overlapping [@lo, @hi), or NULL when none is left. */
struct alloc_rec *range_remove_overlap(uintptr_t lo, uintptr_t hi, enum rec_kind kind);
/* Copy the range record containing @p into @out; returns 1 when found. */
int range_lookup(uintptr_t p, struct alloc_rec *out);
/* Remove every record (both registries) owned by @ctx; calls @drop on each. */
void registry_drop_context(CUcontext ctx, void (*drop)(struct alloc_rec *r));
void registry_lock_all(void);
void registry_unlock_all(void);
void registry_reset_locks(void);
size_t registry_count(void);

/* accounting.c: what this process uses, per device (atomics, no lock). */
/* Our VRAM on @dev grew by @delta bytes (negative: shrank). */
void account_vram(int dev, int64_t delta);
/* Take @size of @dev's VRAM if it fits under @ceiling (atomic: threads cannot overshoot). */
int account_vram_take(int dev, uint64_t size, uint64_t ceiling);
void account_spill(int dev, enum spill_kind kind, int64_t delta);
/* "pool", "host" or "host_numa". */
const char *spill_kind_name(enum spill_kind kind);
void account_managed(int64_t delta);
/* Pool capacity lent for the driver's host memory grew by @delta (backend_pool.c). */
void account_lent(int64_t delta);
uint64_t account_vram_used(int dev);
uint64_t account_spill_used(void);
/* The driver's free VRAM on @dev (cached when policy_free_cached_ok allows), or UINT64_MAX. */
uint64_t account_vram_free(const struct spw_config *c, int dev, uint64_t size, uint64_t *total);
struct account_device {
	uint64_t vram_used, vram_peak, spill_used, spill_peak;
};
/* @dev's figures; returns 0 when @dev was never used. */
int account_device(int dev, struct account_device *out);
struct account_totals {
	uint64_t spill_used, spill_peak, managed;
	uint64_t spill_now[SPILL_KINDS], spill_ever[SPILL_KINDS];
	uint64_t lent, lent_peak; /* pool capacity lent for host-NUMA memory (pool_lend) */
};
void account_totals(struct account_totals *out);

/* counters.c: event counts (relaxed atomics). */
/* clang-format off */
#define SPW_COUNTERS(X) X(allocs) X(spills) X(spill_failures) X(frees) X(deferred_frees) \
	X(passthrough_frees) X(getproc_calls) X(getproc_wrapped) X(dlsym_wrapped) \
	X(arenas_created) X(arenas_released) X(vmm_host_numa) X(free_queries) X(free_cached) \
	X(capture_vram) X(capture_held_frees) X(pool_reuses) X(export_refusals) \
	X(splits) X(loans) X(loan_refusals)
enum counter {
#define COUNTER_ID(name) CNT_##name,
	SPW_COUNTERS(COUNTER_ID)
#undef COUNTER_ID
	CNT_COUNT
};
/* clang-format on */
void counter_inc(enum counter c);
uint64_t counter_read(enum counter c);
const char *counter_name(enum counter c);

/* stats.c: the JSON view (spillway_stats_json, exported) and the exit report. */
void stats_at_exit(void);
int spillway_stats_json(char *buf, size_t len);

/* policy.c */
enum placement { PLACE_VRAM, PLACE_SPILL };
struct policy_input {
	uint64_t size;
	uint64_t vram_used;  /* this process, this device */
	uint64_t vram_free;  /* driver's free figure, or UINT64_MAX when not asked */
	uint64_t vram_total; /* the card's total, 0 when not known */
	int reserve_open;    /* an oversized split lives on this device: no reserve (split.c) */
};
/* A cached free figure stands in for the driver's this long, this far from a request. */
#define FREE_CACHE_MAX_AGE_NS (100ULL * 1000 * 1000)
#define FREE_CACHE_SLACK      (1ULL << 30)
/* Whether policy_decide needs the driver's free figure for this request. */
int policy_needs_free(const struct spw_config *c, uint64_t size, uint64_t vram_used);
/* Whether a cached free figure is as good as asking the driver for this request. */
int policy_free_cached_ok(const struct spw_config *c, uint64_t size, uint64_t cached_free,
			  uint64_t card_total, uint64_t age_ns);
enum placement policy_decide(const struct spw_config *c, const struct policy_input *in);
/* Why policy_decide answered PLACE_SPILL, for the log. */
const char *policy_spill_reason(const struct spw_config *c, const struct policy_input *in);
/* Whether a VRAM placement of @size must take its share of SPILLWAY_VRAM_LIMIT atomically. */
int policy_budgeted(const struct spw_config *c, uint64_t size);
/* SPILLWAY_RESERVE in bytes, for a card of @card_total bytes (0: not known). */
uint64_t policy_reserve(const struct spw_config *c, uint64_t card_total);
/*
 * The VRAM use a budgeted request of @size may bring this process to: the budget less the
 * reserve for large requests, the whole budget for others or when @may_use_reserve.
 */
uint64_t policy_ceiling(const struct spw_config *c, uint64_t size, int may_use_reserve);
/* VRAM figures as the application should see them. */
void policy_report(const struct spw_config *c, uint64_t real_free, uint64_t real_total,
		   uint64_t vram_used, uint64_t spill_used, uint64_t spill_avail,
		   uint64_t *free_out, uint64_t *total_out);
uint64_t sat_add(uint64_t a, uint64_t b);
uint64_t sat_sub(uint64_t a, uint64_t b);

/* spill.c */
/* Spill @size whole into an arena; @why is logged (at info, one line per spill). */
CUresult spill_alloc(size_t size, int dev, CUcontext ctx, CUdeviceptr *out, const char *why);
/* Free a spilled record now (nothing queued may still use it). */
void spill_free_now(struct alloc_rec *r);
/*
 * Free a spilled record once the work queued on @stream so far has completed; when neither
 * an event nor waiting for the stream works, the driver's error (the record is kept).
 */
CUresult spill_free_ordered(struct alloc_rec *r, CUstream stream, int per_thread);
/* A spilled record freed during stream capture: held until its context goes. */
void spill_free_captured(struct alloc_rec *r);
void spill_reclaim(int wait);
void spill_drop_context(CUcontext ctx);
uint64_t spill_available(void);
void spill_lock(void);
void spill_unlock(void);
void spill_reset_lock(void);

/* backend_*.c: page-backed shared memory the GPU can pin. */
struct backend_map {
	void *addr;
	size_t size;
	enum spill_kind kind;
	uint64_t pool_id;
};
/* Map @size bytes from the pool (SPILL_POOL); -errno on failure. */
int pool_map(size_t size, struct backend_map *m);
uint64_t pool_free_bytes(void);
int pool_usable(void);
/* Whether spills go to the pool: SPILLWAY_BACKEND=pool, or auto with /dev/spillway open. */
int pool_serves_spills(const struct spw_config *c);
/*
 * Loans (ABI 1.3): pool capacity lent for host memory the driver allocates (a split's host part,
 * a spilled cuMemCreate).  @id 0: no loan.
 */
struct pool_loan {
	uint64_t id, size;
};
/* Whether the module lends: ABI 1.3 or later, and LEND has not answered ENOTTY. */
int pool_lends(void);
/*
 * Borrow @size bytes (LEND, rounded up to whole pool chunks) before the driver allocates them:
 * 0, or -errno: -ENOMEM (too few whole free chunks), -EDQUOT (the user's limit), -ENOTTY (the
 * module does not lend: remembered, pool_lends() answers 0 from then on).  Accounted as lent.
 */
int pool_lend(uint64_t size, struct pool_loan *loan);
/* End @loan (RETURN) once the driver has released the memory; zeroes it.  No-op for id 0. */
void pool_return(struct pool_loan *loan);
/* Map @size bytes of memfd memory (SPILL_HOST). */
int host_map(size_t size, struct backend_map *m);
uint64_t host_available(void);
void backend_unmap(struct backend_map *m);

/* context.c */
/* Current context and its device; returns 0, or -1 when the thread has no context. */
int ctx_current_dev(CUcontext *ctx, int *dev);
/* Run @fn with @ctx current on this thread (for cleanup from any thread). */
void with_context(CUcontext ctx, void (*fn)(void *), void *arg);

/* vmm_handles.c: the VMM handles created through us and where they are mapped. */
struct vmm_handle {
	CUmemGenericAllocationHandle handle;
	size_t size;
	int dev;
	int spilled;
	long refs;	       /* Protected by vmm_mutex. */
	CUmemLocation asked;   /* where the application asked for it */
	struct pool_loan loan; /* spilled with the pool backend: returned with the last reference */
};
/* Take a reference on a handle we created; NULL when it is not ours. */
struct vmm_handle *vmm_handle_ref(CUmemGenericAllocationHandle h);
void vmm_handle_unref(CUmemGenericAllocationHandle h);
/*
 * A new handle with one reference; @counted: its bytes are already in the account (taken).
 * @loan (or NULL): the pool's loan for its memory, returned once the driver has freed it.
 */
void vmm_handle_record(CUmemGenericAllocationHandle h, size_t size, int dev, int spilled,
		       const CUmemLocation *asked, int counted, const struct pool_loan *loan);
/* Whether @h is one of our spilled handles; then *@asked is where the application asked. */
int vmm_handle_asked(CUmemGenericAllocationHandle h, CUmemLocation *asked);
/* Record a cuMemMap of one of our handles (a reference and a range record). */
void vmm_map_record(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle h);
/* Drop our map records in [ptr, ptr+size) and their references. */
void vmm_forget_maps(CUdeviceptr ptr, size_t size);
void vmm_lock(void);
void vmm_unlock(void);
void vmm_reset_lock(void);

/* placement.c: VRAM or spill, for each allocation. */
/* One way of getting VRAM from the driver, with its arguments. */
struct vram_request {
	CUresult (*alloc)(struct vram_request *q, CUdeviceptr *dptr); /* a vram_alloc_* */
	size_t size;	      /* bytes the placement is decided on */
	size_t width, height; /* pitch */
	size_t *pitch;
	unsigned int elem;
	CUstream stream;
	CUmemoryPool pool;
	enum hook_id id; /* async: the plain or the per-thread entry point */
};
CUresult vram_alloc_plain(struct vram_request *q, CUdeviceptr *dptr);
CUresult vram_alloc_pitch(struct vram_request *q, CUdeviceptr *dptr);
CUresult vram_alloc_async(struct vram_request *q, CUdeviceptr *dptr);
CUresult vram_alloc_from_pool(struct vram_request *q, CUdeviceptr *dptr);
/* Place a linear allocation in VRAM or spilled memory, record and account it. */
CUresult place(struct vram_request *q, CUdeviceptr *dptr, enum rec_kind kind);
/* Place a cuMemCreate for device memory: on the device, or on host NUMA node 0. */
CUresult place_vmm_create(CUmemGenericAllocationHandle *handle, size_t size,
			  const CUmemAllocationProp *prop, unsigned long long flags);
/* Record and account a managed allocation (never placed: it migrates on its own). */
void record_managed(CUdeviceptr p, size_t size);
/* Forget a VRAM or managed record whose memory the driver has freed. */
void placement_forget(struct alloc_rec *r);
/* Before a context goes: drop its records and the spill it owned. */
void placement_drop_context(CUcontext ctx);

/*
 * split.c: one allocation with its first part in VRAM and the rest in host memory on the GPU's
 * NUMA node, behind one device pointer (docs/split-placement.md).
 */
struct split {
	CUdeviceptr base;
	size_t vram_part, host_part; /* mapped at base and at base + vram_part */
	CUmemGenericAllocationHandle vram_handle, host_handle;
	int host_node;
	int oversized;	       /* larger than the budget: opened the reserve while it lives */
	struct pool_loan loan; /* the pool's capacity for the host part (pool backend), or id 0 */
};
/*
 * Place @size bytes on @dev partly in VRAM (what the budget less the reserve and the card allow)
 * and partly in host memory; when the pool serves spills, the host part is lent from it first
 * (pool_lend).  CUDA_ERROR_NOT_SUPPORTED when a split does not apply (too small, no VRAM room,
 * the pool lends nothing, no VMM): the caller spills whole.  @why is logged.
 */
CUresult split_alloc(size_t size, int dev, CUcontext ctx, CUdeviceptr *out, const char *why);
/* Unmap and release a split allocation (the caller has removed it from the registry). */
void split_free(struct alloc_rec *r);
/* Whether an oversized split lives on @dev (its later requests may use the reserve). */
int split_reserve_open(int dev);

/* topology.c: device facts, asked once. */
/* The host NUMA node nearest @dev (CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID), 0 when unknown or -1. */
int host_numa_node(int dev);
/* The number of CUDA devices this process sees (at least 1). */
int device_count(void);

/* semantics.c: CUDA semantics the placement respects (docs/shim.md, "CUDA semantics"). */
/* "CUDA_ERROR_NAME (number)" for log lines (per thread, valid until the next call). */
const char *cu_error_name(CUresult rc);
/* Whether @stream captures (ACTIVE or INVALIDATED); @per_thread: a _ptsz entry point's stream. */
CUstreamCaptureStatus stream_capture_status(CUstream stream, int per_thread);
/* The context and device of @stream (the current ones for the default streams); 0 or -1. */
int stream_ctx_dev(CUstream stream, int per_thread, CUcontext *ctx, int *dev);
/* What to do with a stream-ordered request on a pool (NULL: the device's current pool). */
enum pool_use {
	POOL_PLACE,	 /* a device pool without shareable handles: placed like any request */
	POOL_HOST,	 /* a pool on host memory: the driver's, not VRAM */
	POOL_EXPORTABLE, /* a device pool with shareable handles: stays in VRAM */
	POOL_UNKNOWN,	 /* a pool we did not see created: left to the driver */
};
void pool_record(CUmemoryPool pool, const CUmemPoolProps *props);
void pool_forget(CUmemoryPool pool);
/* Fork handlers (init.c): the pool records' lock, a leaf (nothing else is taken under it). */
void pools_lock(void);
void pools_unlock(void);
void pools_reset_lock(void);
enum pool_use pool_use(CUmemoryPool pool, int dev);
/* Bytes @pool (NULL: @dev's current pool) holds freed and can hand out again without the driver. */
uint64_t pool_cached(CUmemoryPool pool, int dev);
/*
 * Stream captures under way (hooks/semantics.c reports each begin and end).  During a capture
 * the driver refuses "unsafe" calls (pinning, unpinning, cuMemAlloc/cuMemFree, querying an
 * event recorded outside it) with 900 AND invalidates the capture, unless the calling thread
 * is in relaxed mode; waiting for a whole context is refused even then (driver_facts).
 */
void capture_began(CUstream stream, int per_thread, CUstreamCaptureMode mode);
void capture_ended(CUstream stream, int per_thread);
/* Whether any capture runs in this process (then no context may be waited for). */
int captures_under_way(void);
/* Whether an unsafe call from this thread now would be refused and invalidate a capture. */
int capture_forbids_unsafe(void);
/*
 * Housekeeping the application did not ask for (unpinning freed pieces, querying their
 * events) runs in relaxed mode while captures run: the driver then allows it and leaves the
 * captures alone.  relaxed_enter returns what relaxed_leave restores.
 */
int relaxed_enter(CUstreamCaptureMode *old);
void relaxed_leave(int entered, CUstreamCaptureMode old);
/* Graph memory was made on @dev: from now on its graph pool counts (graph_memory_reserved). */
void graph_memory_note(int dev);
/* VRAM the driver holds for graphs' allocation nodes on @dev (0 until graph memory is made). */
uint64_t graph_memory_reserved(int dev);

/* A coarse monotonic clock: read from the vDSO without touching the clock source (5 ns). */
static inline uint64_t now_coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* @v up to a multiple of @a; 0 when that would pass UINT64_MAX, which callers refuse as a size. */
static inline uint64_t round_up(uint64_t v, uint64_t a)
{
	return v > UINT64_MAX - (a - 1) ? 0 : (v + a - 1) / a * a;
}

#endif
