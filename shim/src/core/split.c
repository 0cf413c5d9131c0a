/*
 * Split placement (docs/split-placement.md): a request larger than the VRAM left to it gets that
 * VRAM first and host memory on the GPU's own NUMA node after it, both mapped into one reserved
 * VA range and granted to the device in one cuMemSetAccess, so the application sees one device
 * pointer.  Measured on the H100: kernels read and write across the boundary; the host part
 * reads at the PCIe rate (cuda.md).
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

static _Atomic int oversized_live[MAX_DEVICES];

int split_reserve_open(int dev)
{
	return dev >= 0 && dev < MAX_DEVICES && atomic_load(&oversized_live[dev]) > 0;
}

/* The mapping granularity for @dev's VRAM and its host node (2 MiB each on the H100); 0: no VMM. */
static size_t granularity(int dev)
{
	static _Atomic size_t cached[MAX_DEVICES];
	real_cuMemGetAllocationGranularity_t get = REAL(cuMemGetAllocationGranularity);
	CUmemAllocationProp prop = { 0 };
	size_t g = atomic_load(&cached[dev]), h = 0;

	if (g || !get)
		return g;
	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = dev;
	if (get(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS || !g)
		return 0;
	prop.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
	prop.location.id = host_numa_node(dev);
	if (get(&h, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS || !h)
		return 0;
	/* Both are powers of two: the larger is a multiple of the smaller. */
	g = h > g ? h : g;
	atomic_store(&cached[dev], g);
	return g;
}

/*
 * VRAM a split of @size may take on @dev: the budget less the reserve (unless an oversized split
 * opened it) less what this process uses (@graph: its graph memory, which no record counts),
 * and the card's free VRAM less the headroom and reserve.
 */
static uint64_t vram_room(const struct spw_config *c, int dev, uint64_t size, int open,
			  uint64_t graph)
{
	uint64_t room = UINT64_MAX, total = 0, free;

	if (c->vram_limit)
		room = sat_sub(policy_ceiling(c, size, open),
			       sat_add(account_vram_used(dev), graph));
	free = account_vram_free(c, dev, size, &total);
	if (free != UINT64_MAX) {
		uint64_t kept = open || size < c->large ? 0 : policy_reserve(c, total);
		uint64_t card = sat_sub(free, sat_add(c->headroom, kept));

		if (card < room)
			room = card;
	}
	return room;
}

struct parts {
	CUdeviceptr base;
	size_t mapped;
	int reserved, vram_mapped, host_mapped;
	CUmemGenericAllocationHandle vram_handle, host_handle;
	int have_vram, have_host;
};

/* Undo whatever of a split exists (also the whole of a live one). */
static void undo(struct parts *p, size_t vram_part)
{
	if (p->host_mapped)
		REAL(cuMemUnmap)(p->base + vram_part, p->mapped - vram_part);
	if (p->vram_mapped)
		REAL(cuMemUnmap)(p->base, vram_part);
	if (p->have_host)
		REAL(cuMemRelease)(p->host_handle);
	if (p->have_vram)
		REAL(cuMemRelease)(p->vram_handle);
	if (p->reserved)
		REAL(cuMemAddressFree)(p->base, p->mapped);
}

/* Reserve, create, map and grant; CUDA_SUCCESS or the first error (everything undone). */
static CUresult build(struct parts *p, int dev, int node, size_t vram_part, size_t align)
{
	CUmemAllocationProp prop = { 0 };
	CUmemAccessDesc access = { 0 };
	CUresult rc;

	rc = REAL(cuMemAddressReserve)(&p->base, p->mapped, align, 0, 0);
	p->reserved = rc == CUDA_SUCCESS;
	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = dev;
	if (rc == CUDA_SUCCESS) {
		rc = REAL(cuMemCreate)(&p->vram_handle, vram_part, &prop, 0);
		p->have_vram = rc == CUDA_SUCCESS;
	}
	prop.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
	prop.location.id = node;
	if (rc == CUDA_SUCCESS) {
		rc = REAL(cuMemCreate)(&p->host_handle, p->mapped - vram_part, &prop, 0);
		p->have_host = rc == CUDA_SUCCESS;
	}
	if (rc == CUDA_SUCCESS) {
		rc = REAL(cuMemMap)(p->base, vram_part, 0, p->vram_handle, 0);
		p->vram_mapped = rc == CUDA_SUCCESS;
	}
	if (rc == CUDA_SUCCESS) {
		rc = REAL(cuMemMap)(p->base + vram_part, p->mapped - vram_part, 0, p->host_handle,
				    0);
		p->host_mapped = rc == CUDA_SUCCESS;
	}
	access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	access.location.id = dev;
	access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	if (rc == CUDA_SUCCESS)
		rc = REAL(cuMemSetAccess)(p->base, p->mapped, &access, 1);
	if (rc != CUDA_SUCCESS)
		undo(p, vram_part);
	return rc;
}

static int split_applies(const struct spw_config *c, size_t size)
{
	/*
	 * The pool's dma-bufs can not sit next to VRAM in one range (docs/split-placement.md): when
	 * the pool serves spills, the host part is driver memory the pool lends capacity for; a
	 * module that does not lend gets the request whole.
	 */
	if (c->backend == BACKEND_OFF || (pool_serves_spills(c) && !pool_lends()))
		return 0;
	/* Up to an arena's size, spilling whole costs 0.3 us from a pinned arena; a split pins anew. */
	return size > c->chunk && REAL(cuMemAddressReserve) && REAL(cuMemCreate) &&
	       REAL(cuMemMap) && REAL(cuMemSetAccess) && REAL(cuMemUnmap) && REAL(cuMemRelease) &&
	       REAL(cuMemAddressFree);
}

CUresult split_alloc(size_t size, int dev, CUcontext ctx, CUdeviceptr *out, const char *why)
{
	const struct spw_config *c = spw_config();
	struct pool_loan loan = { 0 };
	struct parts p = { 0 };
	struct alloc_rec *r;
	struct split *s;
	size_t g, vram_part, host_part;
	int open, node, taken = 0;
	uint64_t graph;
	CUresult rc;

	if (dev < 0 || dev >= MAX_DEVICES || !split_applies(c, size))
		return CUDA_ERROR_NOT_SUPPORTED;
	g = granularity(dev);
	if (!g)
		return CUDA_ERROR_NOT_SUPPORTED;
	spill_reclaim(0); /* completed stream-ordered frees first: their room counts */
	open = split_reserve_open(dev);
	graph = graph_memory_reserved(dev); /* a driver call, on the spill path only */
	p.mapped = round_up(size, g);
	if (!p.mapped)
		return CUDA_ERROR_NOT_SUPPORTED; /* wraps: spill_alloc refuses it */
	vram_part = vram_room(c, dev, size, open, graph) / g * g;
	/* No room, or room for all of it (the driver refused VRAM our figures allowed): spill whole. */
	if (vram_part < g || vram_part >= p.mapped)
		return CUDA_ERROR_NOT_SUPPORTED;
	host_part = p.mapped - vram_part;
	if (c->spill_limit && sat_add(account_spill_used(), host_part) > c->spill_limit) {
		spw_log(LOG_WARN,
			"split of %zu bytes: %zu in host memory would pass SPILLWAY_SPILL_LIMIT",
			size, host_part);
		counter_inc(CNT_spill_failures);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	if (!cgroup_fits(host_part)) {
		spw_log(LOG_WARN,
			"split of %zu bytes: %zu in host memory would pass the cgroup's memory.max",
			size, host_part);
		counter_inc(CNT_spill_failures);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	if (c->vram_limit) {
		/* Another thread may have taken the room since: then spill whole. */
		if (!account_vram_take(dev, vram_part,
				       sat_sub(policy_ceiling(c, size, open), graph)))
			return CUDA_ERROR_NOT_SUPPORTED;
		taken = 1;
	}
	if (pool_serves_spills(c)) {
		/* The pool shrinks by the host part first, so the driver takes reserved capacity. */
		int err = pool_lend(host_part, &loan);

		if (err) {
			if (taken)
				account_vram(dev, -(int64_t)vram_part);
			spw_log(LOG_INFO,
				"split of %zu bytes (%zu in VRAM): the pool lends no %zu bytes (%s); "
				"spilling whole",
				size, vram_part, host_part, strerror(-err));
			return CUDA_ERROR_NOT_SUPPORTED;
		}
	}
	node = host_numa_node(dev);
	s = calloc(1, sizeof(*s));
	r = calloc(1, sizeof(*r));
	rc = s && r ? build(&p, dev, node, vram_part, g) : CUDA_ERROR_OUT_OF_MEMORY;
	if (rc == CUDA_SUCCESS) {
		r->base = p.base;
		r->size = size;
		r->dev = dev;
		r->ctx = ctx;
		r->kind = REC_SPLIT;
		r->spilled = 1;
		r->split = s;
		if (range_insert(r) != 0) {
			spw_log(LOG_ERROR, "split range %#llx overlaps a known range",
				(unsigned long long)p.base);
			undo(&p, vram_part);
			rc = CUDA_ERROR_OUT_OF_MEMORY;
		}
	}
	if (rc != CUDA_SUCCESS) {
		if (taken)
			account_vram(dev, -(int64_t)vram_part);
		pool_return(&loan); /* the driver holds nothing of it */
		spw_log(LOG_INFO, "split of %zu bytes (%zu in VRAM) failed: %d; spilling whole",
			size, vram_part, (int)rc);
		free(s);
		free(r);
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	s->base = p.base;
	s->vram_part = vram_part;
	s->host_part = host_part;
	s->vram_handle = p.vram_handle;
	s->host_handle = p.host_handle;
	s->host_node = node;
	s->loan = loan;
	if (!taken)
		account_vram(dev, (int64_t)vram_part);
	account_spill(dev, SPILL_HOST_NUMA, (int64_t)host_part);
	if (c->vram_limit && size > c->vram_limit) {
		/* One buffer larger than the budget (llama.cpp's weights, a preallocated heap): what comes
		 * after it is working memory, which the reserve is for, whatever its size. */
		s->oversized = 1;
		atomic_fetch_add(&oversized_live[dev], 1);
	}
	counter_inc(CNT_spills);
	counter_inc(CNT_splits);
	spw_log(LOG_INFO,
		"spill %zu bytes on device %d: %zu in VRAM, %zu in host memory (%shost NUMA node %d): "
		"%s",
		size, dev, vram_part, host_part, loan.id ? "pool-loan, " : "", node, why);
	*out = p.base;
	return CUDA_SUCCESS;
}

void split_free(struct alloc_rec *r)
{
	struct split *s = r->split;
	struct parts p = { .base = s->base,
			   .mapped = s->vram_part + s->host_part,
			   .reserved = 1,
			   .vram_mapped = 1,
			   .host_mapped = 1,
			   .vram_handle = s->vram_handle,
			   .host_handle = s->host_handle,
			   .have_vram = 1,
			   .have_host = 1 };

	undo(&p, s->vram_part);
	/* The driver has released the host part: the pool may grow back. */
	pool_return(&s->loan);
	account_vram(r->dev, -(int64_t)s->vram_part);
	account_spill(r->dev, SPILL_HOST_NUMA, -(int64_t)s->host_part);
	if (s->oversized)
		atomic_fetch_sub(&oversized_live[r->dev], 1);
	free(s);
	free(r);
}
