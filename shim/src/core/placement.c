/*
 * Where an allocation goes: VRAM within the budget, or spilled host memory.  The policy
 * (policy.c) decides from the figures; this file asks the driver, records and accounts.
 */
#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int first_host_create; /* the first one is logged at info */

CUresult vram_alloc_plain(struct vram_request *q, CUdeviceptr *dptr)
{
	real_cuMemAlloc_v2_t f = REAL(cuMemAlloc_v2);

	return f ? f(dptr, q->size) : CUDA_ERROR_NOT_FOUND;
}

CUresult vram_alloc_pitch(struct vram_request *q, CUdeviceptr *dptr)
{
	real_cuMemAllocPitch_v2_t f = REAL(cuMemAllocPitch_v2);
	CUresult rc;

	if (!f)
		return CUDA_ERROR_NOT_FOUND;
	rc = f(dptr, q->pitch, q->width, q->height, q->elem);
	if (rc == CUDA_SUCCESS)
		q->size = *q->pitch * q->height;
	return rc;
}

CUresult vram_alloc_async(struct vram_request *q, CUdeviceptr *dptr)
{
	real_cuMemAllocAsync_t f = (real_cuMemAllocAsync_t)real_fn(q->id);

	return f ? f(dptr, q->size, q->stream) : CUDA_ERROR_NOT_FOUND;
}

CUresult vram_alloc_from_pool(struct vram_request *q, CUdeviceptr *dptr)
{
	real_cuMemAllocFromPoolAsync_t f = (real_cuMemAllocFromPoolAsync_t)real_fn(q->id);

	return f ? f(dptr, q->size, q->pool, q->stream) : CUDA_ERROR_NOT_FOUND;
}

static struct alloc_rec *new_record(CUdeviceptr p, size_t size, int dev, CUcontext ctx,
				    enum rec_kind kind)
{
	struct alloc_rec *r = calloc(1, sizeof(*r));

	if (r) {
		r->base = p;
		r->size = size;
		r->dev = dev;
		r->ctx = ctx;
		r->kind = kind;
	}
	return r;
}

/* Record a VRAM allocation; @counted bytes of it are already in the account (taken). */
static void record_vram(CUdeviceptr p, size_t size, int dev, CUcontext ctx, enum rec_kind kind,
			size_t counted)
{
	struct alloc_rec *r = new_record(p, size, dev, ctx, kind);

	account_vram(dev, (int64_t)size - (int64_t)counted);
	if (!r) {
		spw_log(LOG_WARN, "out of memory for a record: %#llx stays unaccounted",
			(unsigned long long)p);
		account_vram(dev, -(int64_t)size);
		return;
	}
	if (vram_insert(r) != 0) {
		spw_log(LOG_ERROR, "the driver returned %#llx twice", (unsigned long long)p);
		account_vram(dev, -(int64_t)size);
		free(r);
	}
}

/*
 * Try VRAM.  Budgeted requests take their share of the limit first, atomically; large ones
 * stay out of SPILLWAY_RESERVE unless @may_use_reserve (when spilling them failed).
 */
static CUresult try_vram(const struct spw_config *c, struct vram_request *q, CUdeviceptr *dptr,
			 int dev, CUcontext ctx, enum rec_kind kind, int may_use_reserve,
			 uint64_t graph)
{
	size_t taken = 0;
	CUresult rc;

	if (policy_budgeted(c, q->size)) {
		/* @graph: graph memory is VRAM of this process that no record counts. */
		uint64_t ceiling = sat_sub(policy_ceiling(c, q->size, may_use_reserve), graph);

		if (!account_vram_take(dev, q->size, ceiling))
			return CUDA_ERROR_OUT_OF_MEMORY;
		taken = q->size;
	}
	rc = q->alloc(q, dptr);
	if (rc == CUDA_SUCCESS)
		record_vram(*dptr, q->size, dev, ctx, kind, taken);
	else if (taken)
		account_vram(dev, -(int64_t)taken);
	return rc;
}

/*
 * The policy's answer for @size bytes on @dev, asking the driver's free figure only when
 * needed.  @cached: bytes a stream-ordered pool holds freed, which the driver's free figure
 * does not show but the request can use.  @graph: the device's graph memory (asked once per
 * request: a driver call).  *@why (when not NULL) says why when it is PLACE_SPILL.
 */
static enum placement decide(const struct spw_config *c, int dev, uint64_t size, uint64_t cached,
			     uint64_t graph, const char **why)
{
	struct policy_input in = { .size = size, .vram_free = UINT64_MAX };
	enum placement where;

	in.vram_used = account_vram_used(dev) + graph;
	in.reserve_open = split_reserve_open(dev);
	if (policy_needs_free(c, size, in.vram_used))
		in.vram_free = sat_add(account_vram_free(c, dev, size, &in.vram_total), cached);
	where = policy_decide(c, &in);
	if (why)
		*why = where == PLACE_SPILL ? policy_spill_reason(c, &in) : NULL;
	return where;
}

/*
 * VRAM whatever the budget says: memory the shim must not spill (a pool that exports its
 * allocations, a request made while a stream captures).  Counted; the driver may refuse.
 */
static CUresult vram_unbudgeted(struct vram_request *q, CUdeviceptr *dptr, int dev, CUcontext ctx,
				enum rec_kind kind)
{
	CUresult rc = q->alloc(q, dptr);

	if (rc == CUDA_SUCCESS)
		record_vram(*dptr, q->size, dev, ctx, kind, 0);
	return rc;
}

/*
 * Stream-ordered requests: the stream's device and context; captured ones and pools the
 * shim must leave alone go to the driver.  Returns 1 when the request was handled (*@rc).
 */
static int ordered_request(struct vram_request *q, CUdeviceptr *dptr, CUcontext *ctx, int *dev,
			   CUresult *rc)
{
	int per_thread = q->id == HOOK_cuMemAllocAsync_ptsz ||
			 q->id == HOOK_cuMemAllocFromPoolAsync_ptsz;

	if (stream_ctx_dev(q->stream, per_thread, ctx, dev) != 0) {
		*rc = q->alloc(q, dptr);
		return 1;
	}
	/* During capture the driver makes a graph allocation node: graph memory, never spilled. */
	if (stream_capture_status(q->stream, per_thread) != CU_STREAM_CAPTURE_STATUS_NONE) {
		graph_memory_note(*dev);
		*rc = q->alloc(q, dptr);
		return 1;
	}
	switch (pool_use(q->pool, *dev)) {
	case POOL_PLACE:
		return 0;
	case POOL_EXPORTABLE:
		/* Its pointers may be exported (cuMemPoolExportPointer): host memory would break that. */
		*rc = vram_unbudgeted(q, dptr, *dev, *ctx, REC_ASYNC);
		return 1;
	case POOL_HOST:
	case POOL_UNKNOWN:
		*rc = q->alloc(q, dptr);
		return 1;
	}
	return 0;
}

CUresult place(struct vram_request *q, CUdeviceptr *dptr, enum rec_kind kind)
{
	const struct spw_config *c = spw_config();
	const char *why = NULL;
	enum placement where;
	uint64_t graph;
	CUcontext ctx;
	CUresult rc;
	int dev;

	counter_inc(CNT_allocs);
	if (kind == REC_ASYNC) {
		if (ordered_request(q, dptr, &ctx, &dev, &rc))
			return rc;
	} else if (ctx_current_dev(&ctx, &dev) != 0) {
		/* No context: the driver will refuse; let it say so. */
		return q->alloc(q, dptr);
	}
	graph = graph_memory_reserved(dev);
	where = decide(c, dev, q->size, 0, graph, &why);
	if (where == PLACE_SPILL && kind == REC_ASYNC) {
		/* What the pool holds freed is VRAM the driver hands out again: no spill needed. */
		uint64_t cached = pool_cached(q->pool, dev);

		if (cached >= q->size &&
		    decide(c, dev, q->size, cached, graph, NULL) == PLACE_VRAM) {
			counter_inc(CNT_pool_reuses);
			where = PLACE_VRAM;
		}
	}
	if (where == PLACE_VRAM) {
		rc = try_vram(c, q, dptr, dev, ctx, kind, split_reserve_open(dev), graph);
		if (rc != CUDA_ERROR_OUT_OF_MEMORY || c->backend == BACKEND_OFF)
			return rc;
		why = "the driver refused VRAM";
	}
	if (capture_forbids_unsafe()) {
		/* Pinning now would be refused and would invalidate the capture (driver_facts). */
		spw_log(LOG_INFO,
			"%zu bytes on device %d stay in VRAM: a stream capture is under way and "
			"forbids pinning from this thread",
			q->size, dev);
		counter_inc(CNT_capture_vram);
		return vram_unbudgeted(q, dptr, dev, ctx, kind);
	}
	/* What VRAM is left first, the rest in host memory; else all of it in host memory. */
	rc = split_alloc(q->size, dev, ctx, dptr, why);
	if (rc == CUDA_ERROR_NOT_SUPPORTED)
		rc = spill_alloc(q->size, dev, ctx, dptr, why);
	if (rc == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) {
		/* The driver forbids pinning while this thread's or a global capture runs. */
		spw_log(LOG_INFO,
			"%zu bytes on device %d stay in VRAM: a stream capture is under way "
			"(cuMemHostRegister: %s)",
			q->size, dev, cu_error_name(rc));
		counter_inc(CNT_capture_vram);
		return vram_unbudgeted(q, dptr, dev, ctx, kind);
	}
	if (rc == CUDA_SUCCESS || where == PLACE_VRAM)
		return rc;
	/* Spilling failed: VRAM is still better than an error, within the budget (reserve included). */
	return try_vram(c, q, dptr, dev, ctx, kind, 1, graph);
}

void record_managed(CUdeviceptr p, size_t size)
{
	CUcontext ctx = NULL;
	int dev = -1;
	struct alloc_rec *r;

	ctx_current_dev(&ctx, &dev);
	r = new_record(p, size, dev, ctx, REC_MANAGED);
	if (!r)
		return;
	if (vram_insert(r) == 0)
		account_managed((int64_t)size);
	else
		free(r);
}

void placement_forget(struct alloc_rec *r)
{
	if (r->kind == REC_MANAGED)
		account_managed(-(int64_t)r->size);
	else
		account_vram(r->dev, -(int64_t)r->size);
	free(r);
}

/* The driver frees a context's VRAM with it; drop our records and the spill it owned. */
static void drop_record(struct alloc_rec *r)
{
	switch (r->kind) {
	case REC_VRAM:
	case REC_ASYNC:
	case REC_MANAGED:
		placement_forget(r);
		break;
	case REC_SPILL:
		spill_free_now(r);
		break;
	case REC_SPLIT:
		split_free(r);
		break;
	case REC_VMM_MAP:
		break;
	}
}

void placement_drop_context(CUcontext ctx)
{
	registry_drop_context(ctx, drop_record);
	spill_drop_context(ctx);
}

/*
 * Host memory on the GPU's NUMA node with the handle types asked for, never fewer: a handle
 * whose types were dropped fails later, at export, far from the cause.  Without handle types,
 * HOST when the driver has no HOST_NUMA.  Device-only hints (compression, GPUDirect RDMA, usage)
 * are cleared: the driver refuses them on host memory (measured, cuda.md).
 */
static CUresult create_host_memory(CUmemGenericAllocationHandle *handle, size_t size,
				   const CUmemAllocationProp *prop, unsigned long long flags)
{
	CUmemAllocationProp host = *prop;
	CUresult rc;

	host.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
	host.location.id = host_numa_node(prop->location.id);
	memset(&host.allocFlags, 0, sizeof(host.allocFlags));
	rc = REAL(cuMemCreate)(handle, size, &host, flags);
	if (rc == CUDA_SUCCESS || rc == CUDA_ERROR_OUT_OF_MEMORY)
		return rc;
	spw_log(LOG_INFO,
		"cuMemCreate(%zu, HOST_NUMA %d, handle types %#x, type %d, flags %llu, "
		"asked compression %u rdma %u usage %u): %s",
		size, host.location.id, (unsigned int)host.requestedHandleTypes, (int)host.type,
		flags, prop->allocFlags.compressionType, prop->allocFlags.gpuDirectRDMACapable,
		prop->allocFlags.usage, cu_error_name(rc));
	if (host.requestedHandleTypes)
		return rc;
	host.location.type = CU_MEM_LOCATION_TYPE_HOST;
	rc = REAL(cuMemCreate)(handle, size, &host, flags);
	if (rc != CUDA_SUCCESS)
		spw_log(LOG_INFO, "cuMemCreate(%zu, HOST, no handle types): %s", size,
			cu_error_name(rc));
	return rc;
}

/*
 * create_host_memory within the spill limit and the cgroup's room.  When the pool serves spills
 * its capacity is lent first (*@loan): refused, the request fails under SPILLWAY_BACKEND=pool
 * (as a whole spill that does not fit) and takes host memory without a loan under auto (as a
 * dma-buf the pool refuses does).  A module that does not lend: no loan, as before ABI 1.3.
 */
static CUresult create_on_host(CUmemGenericAllocationHandle *handle, size_t size,
			       const CUmemAllocationProp *prop, unsigned long long flags,
			       struct pool_loan *loan)
{
	const struct spw_config *c = spw_config();
	CUresult rc;

	if (c->spill_limit && sat_add(account_spill_used(), size) > c->spill_limit)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (!cgroup_fits(size)) {
		spw_log(LOG_WARN,
			"cuMemCreate(%zu) on host memory would pass the cgroup's memory.max", size);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	if (pool_serves_spills(c) && pool_lends()) {
		int err = pool_lend(size, loan);

		if (err && err != -ENOTTY) {
			spw_log(c->backend == BACKEND_POOL ? LOG_WARN : LOG_INFO,
				"cuMemCreate(%zu) on host memory: the pool lends no %zu bytes (%s)%s",
				size, size, strerror(-err),
				c->backend == BACKEND_POOL ? "" : "; host memory without a loan");
			if (c->backend == BACKEND_POOL)
				return CUDA_ERROR_OUT_OF_MEMORY;
		}
	}
	rc = create_host_memory(handle, size, prop, flags);
	if (rc != CUDA_SUCCESS)
		pool_return(loan); /* the driver holds nothing of it */
	return rc;
}

static CUresult create_in_vram(const struct spw_config *c, CUmemGenericAllocationHandle *handle,
			       size_t size, const CUmemAllocationProp *prop,
			       unsigned long long flags, int dev, int may_use_reserve,
			       uint64_t graph)
{
	int budgeted = policy_budgeted(c, size);
	CUresult rc;

	/* @graph: as in try_vram, the graph memory no record counts takes its part of the budget. */
	if (budgeted &&
	    !account_vram_take(dev, size, sat_sub(policy_ceiling(c, size, may_use_reserve), graph)))
		return CUDA_ERROR_OUT_OF_MEMORY;
	rc = REAL(cuMemCreate)(handle, size, prop, flags);
	if (rc == CUDA_SUCCESS)
		vmm_handle_record(*handle, size, dev, 0, &prop->location, budgeted, NULL);
	else if (budgeted)
		account_vram(dev, -(int64_t)size);
	return rc;
}

CUresult place_vmm_create(CUmemGenericAllocationHandle *handle, size_t size,
			  const CUmemAllocationProp *prop, unsigned long long flags)
{
	const struct spw_config *c = spw_config();
	/* The device is named in the request: no context needed (loader threads have none). */
	int dev = prop->location.id;
	struct pool_loan loan = { 0 };
	const char *why = NULL;
	enum placement where;
	CUresult rc = CUDA_ERROR_OUT_OF_MEMORY;
	uint64_t graph = graph_memory_reserved(dev);

	counter_inc(CNT_allocs);
	where = decide(c, dev, size, 0, graph, &why);

	if (where == PLACE_VRAM) {
		rc = create_in_vram(c, handle, size, prop, flags, dev, split_reserve_open(dev),
				    graph);
		why = "the driver refused VRAM";
	}
	if (rc != CUDA_ERROR_OUT_OF_MEMORY || c->backend == BACKEND_OFF)
		return rc;
	rc = create_on_host(handle, size, prop, flags, &loan);
	if (rc != CUDA_SUCCESS && rc != CUDA_ERROR_OUT_OF_MEMORY && prop->requestedHandleTypes) {
		/* Host memory with these handle types is refused: VRAM keeps them, or the driver says no. */
		spw_log(LOG_WARN,
			"cuMemCreate(%zu) asks for handle types %#x, which the driver refuses on host "
			"memory (%s): it stays in VRAM, over the budget if need be",
			size, (unsigned int)prop->requestedHandleTypes, cu_error_name(rc));
		counter_inc(CNT_export_refusals);
		rc = REAL(cuMemCreate)(handle, size, prop, flags);
		if (rc == CUDA_SUCCESS)
			vmm_handle_record(*handle, size, dev, 0, &prop->location, 0, NULL);
		else
			spw_log(LOG_WARN, "cuMemCreate(%zu, device %d, handle types %#x): %s", size,
				dev, (unsigned int)prop->requestedHandleTypes, cu_error_name(rc));
		return rc;
	}
	if (rc == CUDA_SUCCESS) {
		counter_inc(CNT_vmm_host_numa);
		counter_inc(CNT_spills);
		vmm_handle_record(*handle, size, dev, 1, &prop->location, 0, &loan);
		spw_log(LOG_INFO,
			"spill %zu bytes on device %d: 0 in VRAM, %zu in host memory (cuMemCreate, "
			"%shost NUMA node %d): %s",
			size, dev, size, loan.id ? "pool-loan, " : "", host_numa_node(dev), why);
		spw_log(first_host_create++ ? LOG_DEBUG : LOG_INFO,
			"cuMemCreate(%zu) on host memory (asked: handle types %#x, compression %u, "
			"rdma %u, usage %u)",
			size, (unsigned int)prop->requestedHandleTypes,
			prop->allocFlags.compressionType, prop->allocFlags.gpuDirectRDMACapable,
			prop->allocFlags.usage);
		return rc;
	}
	counter_inc(CNT_spill_failures);
	spw_log(LOG_WARN, "no host memory for cuMemCreate(%zu): %s", size, cu_error_name(rc));
	if (where == PLACE_VRAM)
		return CUDA_ERROR_OUT_OF_MEMORY;
	/* Spilling failed: VRAM is still better than an error, reserve included. */
	return create_in_vram(c, handle, size, prop, flags, dev, 1, graph);
}
