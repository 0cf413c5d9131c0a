/* Internal interfaces shared by the shim's files. */
#ifndef SPILLWAY_SHIM_H
#define SPILLWAY_SHIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hooks.h"
#include "config.h"
#include "log.h"

#define MAX_DEVICES 64

/* Where spilled bytes live. */
enum spill_kind { SPILL_POOL, SPILL_HOST, SPILL_HOST_NUMA, SPILL_KINDS };

/* What a registry record describes. */
enum rec_kind {
	REC_VRAM,	/* cuMemAlloc/Pitch in VRAM */
	REC_ASYNC,	/* cuMemAllocAsync/FromPool in VRAM */
	REC_MANAGED,	/* cuMemAllocManaged: accounted, never moved */
	REC_SPILL,	/* a piece of a registered host arena */
	REC_VMM_MAP,	/* a cuMemMap'd range */
};

struct arena;
struct vmm_handle;

struct alloc_rec {
	uintptr_t base;
	size_t size;
	int dev;
	CUcontext ctx;
	enum rec_kind kind;
	struct arena *arena;		/* REC_SPILL */
	size_t offset;			/* REC_SPILL: offset in the arena */
	struct vmm_handle *handle;	/* REC_VMM_MAP */
	int spilled;			/* REC_SPILL, or a map of a host-NUMA handle */
};

/* init.c: lazily, once: config, log, fork handlers, exit stats. */
void spw_init(void);

/*
 * Recursion guard: the driver or our own helpers may call an exported cu* symbol while we
 * are inside a wrapper; those inner calls go straight to the driver.
 */
extern __thread int spw_depth;

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

/* stats.c */
void stats_vram(int dev, int64_t delta);
int stats_vram_take(int dev, uint64_t size, uint64_t ceiling);
void stats_spill(int dev, enum spill_kind kind, int64_t delta);
void stats_managed(int64_t delta);
#define SPW_COUNTERS(X) X(allocs) X(spills) X(spill_failures) X(frees) X(deferred_frees) \
	X(passthrough_frees) X(getproc_calls) X(getproc_wrapped) X(dlsym_wrapped) \
	X(arenas_created) X(arenas_released) X(vmm_host_numa) X(free_queries) X(free_cached)
enum counter {
#define COUNTER_ID(name) CNT_##name,
	SPW_COUNTERS(COUNTER_ID)
#undef COUNTER_ID
	CNT_COUNT
};
void stats_count(enum counter c);
uint64_t stats_counter(enum counter c);
uint64_t stats_vram_used(int dev);
uint64_t stats_spill_used_total(void);
void stats_at_exit(void);
int spillway_stats_json(char *buf, size_t len);

/* policy.c */
enum placement { PLACE_VRAM, PLACE_SPILL };
struct policy_input {
	uint64_t size;
	uint64_t vram_used;	/* this process, this device */
	uint64_t vram_free;	/* driver's free figure, or UINT64_MAX when not asked */
	uint64_t vram_total;	/* the card's total, 0 when not known */
};
/* A cached free figure stands in for the driver's this long, this far from a request. */
#define FREE_CACHE_MAX_AGE_NS	(100ULL * 1000 * 1000)
#define FREE_CACHE_SLACK	(1ULL << 30)
/* Whether policy_decide needs the driver's free figure for this request. */
int policy_needs_free(const struct spw_config *c, uint64_t size, uint64_t vram_used);
/* Whether a cached free figure is as good as asking the driver for this request. */
int policy_free_cached_ok(const struct spw_config *c, uint64_t size, uint64_t cached_free,
			  uint64_t card_total, uint64_t age_ns);
enum placement policy_decide(const struct spw_config *c, const struct policy_input *in);
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

/* vram_free.c */
/* The driver's free VRAM on @dev (cached when policy_free_cached_ok allows), or UINT64_MAX. */
uint64_t vram_free(const struct spw_config *c, int dev, uint64_t size, uint64_t *total);
/* Our VRAM on @dev grew by @delta bytes (negative: shrank). */
void vram_free_note(int dev, int64_t delta);

/* spill.c */
CUresult spill_alloc(size_t size, int dev, CUcontext ctx, CUdeviceptr *out);
/* Free a spilled record now (nothing queued may still use it). */
void spill_free_now(struct alloc_rec *r);
/* Free a spilled record once the work queued on @stream so far has completed. */
void spill_free_ordered(struct alloc_rec *r, CUstream stream, int per_thread);
void spill_reclaim(int wait);
void spill_drop_context(CUcontext ctx);
uint64_t spill_available(void);
void spill_lock(void);
void spill_unlock(void);

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
/* Map @size bytes of memfd memory (SPILL_HOST). */
int host_map(size_t size, struct backend_map *m);
uint64_t host_available(void);
void backend_unmap(struct backend_map *m);

/* context.c */
/* Current context and its device; returns 0, or -1 when the thread has no context. */
int ctx_current_dev(CUcontext *ctx, int *dev);
/* Run @fn with @ctx current on this thread (for cleanup from any thread). */
void with_context(CUcontext ctx, void (*fn)(void *), void *arg);

/* vmm.c */
void vmm_lock(void);
void vmm_unlock(void);
void vmm_reset_lock(void);
void spill_reset_lock(void);

/* A coarse monotonic clock: read from the vDSO without touching the clock source (5 ns). */
static inline uint64_t now_coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

#endif
