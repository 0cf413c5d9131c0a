/*
 * Graph memory nodes, pool creation, IPC and export: the wrappers that keep CUDA's semantics
 * under spilling (docs/shim.md, "CUDA semantics").  Exports of spilled memory fail as the
 * driver fails them for host memory, with a log line that says why.
 */
#include "hooks.h"

/* Graph memory counts from now on (graph_memory_reserved): the driver backs it at launch. */
CUresult CUDAAPI cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph,
					const CUgraphNode *dependencies, size_t numDependencies,
					CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams)
{
	real_cuGraphAddMemAllocNode_t real = REAL(cuGraphAddMemAllocNode);
	CUresult rc;

	if (!hook_enter(real, !nodeParams))
		return real ? real(phGraphNode, hGraph, dependencies, numDependencies, nodeParams)
			    : CUDA_ERROR_NOT_FOUND;
	rc = real(phGraphNode, hGraph, dependencies, numDependencies, nodeParams);
	if (rc == CUDA_SUCCESS &&
	    nodeParams->poolProps.location.type == CU_MEM_LOCATION_TYPE_DEVICE)
		graph_memory_note(nodeParams->poolProps.location.id);
	hook_leave();
	return rc;
}

/* Pools we see created: where their memory lives and which handles they export (pool_use). */
CUresult CUDAAPI cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps)
{
	real_cuMemPoolCreate_t real = REAL(cuMemPoolCreate);
	CUresult rc;

	if (!hook_enter(real, !pool || !poolProps))
		return real ? real(pool, poolProps) : CUDA_ERROR_NOT_FOUND;
	rc = real(pool, poolProps);
	if (rc == CUDA_SUCCESS)
		pool_record(*pool, poolProps);
	else
		spw_log(LOG_INFO, "cuMemPoolCreate(location %d:%d, handle types %#x): %s",
			(int)poolProps->location.type, poolProps->location.id,
			(unsigned int)poolProps->handleTypes, cu_error_name(rc));
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuMemPoolDestroy(CUmemoryPool pool)
{
	real_cuMemPoolDestroy_t real = REAL(cuMemPoolDestroy);
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(pool) : CUDA_ERROR_NOT_FOUND;
	rc = real(pool);
	if (rc == CUDA_SUCCESS)
		pool_forget(pool);
	hook_leave();
	return rc;
}

/* Whether @p lies in memory the shim spilled (a piece, or a map of a host-NUMA handle). */
static int spilled(CUdeviceptr p, struct alloc_rec *r)
{
	return range_lookup(p, r) && r->spilled;
}

static void export_refused(const char *call, CUdeviceptr p, const struct alloc_rec *r, CUresult rc)
{
	counter_inc(CNT_export_refusals);
	spw_log(LOG_WARN,
		"%s(%#llx): %s; the allocation (%zu bytes on device %d) was spilled to host memory "
		"by spillway (SPILLWAY_VRAM_LIMIT), and the driver exports only device memory this "
		"way. Raise the budget so it stays in VRAM, or allocate it before the budget fills",
		call, (unsigned long long)p, cu_error_name(rc), r->size, r->dev);
}

/* Legacy IPC of a spilled piece: the driver's answer for host memory, INVALID_VALUE. */
CUresult CUDAAPI cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr)
{
	real_cuIpcGetMemHandle_t real = REAL(cuIpcGetMemHandle);
	struct alloc_rec r;
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(pHandle, dptr) : CUDA_ERROR_NOT_FOUND;
	if (spilled(dptr, &r)) {
		rc = CUDA_ERROR_INVALID_VALUE;
		export_refused("cuIpcGetMemHandle", dptr, &r, rc);
	} else {
		rc = real(pHandle, dptr);
	}
	hook_leave();
	return rc;
}

/* dma-buf export: the driver judges; when it refuses spilled memory, the log says why. */
CUresult CUDAAPI cuMemGetHandleForAddressRange(void *handle, CUdeviceptr dptr, size_t size,
					       CUmemRangeHandleType handleType,
					       unsigned long long flags)
{
	real_cuMemGetHandleForAddressRange_t real = REAL(cuMemGetHandleForAddressRange);
	struct alloc_rec r;
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(handle, dptr, size, handleType, flags) : CUDA_ERROR_NOT_FOUND;
	rc = real(handle, dptr, size, handleType, flags);
	if (rc != CUDA_SUCCESS && spilled(dptr, &r))
		export_refused("cuMemGetHandleForAddressRange", dptr, &r, rc);
	hook_leave();
	return rc;
}

/*
 * Shareable handles: spilled handles keep the types asked for (placement.c), so the driver
 * exports them; a refusal names the handle's placement.
 */
CUresult CUDAAPI cuMemExportToShareableHandle(void *shareableHandle,
					      CUmemGenericAllocationHandle handle,
					      CUmemAllocationHandleType handleType,
					      unsigned long long flags)
{
	real_cuMemExportToShareableHandle_t real = REAL(cuMemExportToShareableHandle);
	CUmemLocation asked;
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(shareableHandle, handle, handleType, flags)
			    : CUDA_ERROR_NOT_FOUND;
	rc = real(shareableHandle, handle, handleType, flags);
	if (rc != CUDA_SUCCESS) {
		int host = vmm_handle_asked(handle, &asked);

		spw_log(LOG_WARN,
			"cuMemExportToShareableHandle(handle type %#x) of a %s handle: %s",
			(unsigned int)handleType, host ? "spilled (host NUMA)" : "device",
			cu_error_name(rc));
	}
	hook_leave();
	return rc;
}

/* A spilled stream-ordered allocation belongs to no pool: the driver refuses, and we say why. */
CUresult CUDAAPI cuMemPoolExportPointer(CUmemPoolPtrExportData *shareData_out, CUdeviceptr ptr)
{
	real_cuMemPoolExportPointer_t real = REAL(cuMemPoolExportPointer);
	struct alloc_rec r;
	CUresult rc;

	if (!hook_enter(real, 0))
		return real ? real(shareData_out, ptr) : CUDA_ERROR_NOT_FOUND;
	rc = real(shareData_out, ptr);
	if (rc != CUDA_SUCCESS && spilled(ptr, &r))
		export_refused("cuMemPoolExportPointer", ptr, &r, rc);
	hook_leave();
	return rc;
}

/* ---- stream capture: the shim must know which captures run (core: capture_began) ---- */

static CUresult begin_capture(enum hook_id id, CUstream stream, CUstreamCaptureMode mode)
{
	void *real = real_fn(id);
	int per_thread = id == HOOK_cuStreamBeginCapture_v2_ptsz;
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (!hook_enter(real, 0))
		return ((real_cuStreamBeginCapture_v2_t)real)(stream, mode);
	rc = ((real_cuStreamBeginCapture_v2_t)real)(stream, mode);
	if (rc == CUDA_SUCCESS)
		capture_began(stream, per_thread, mode);
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
	return begin_capture(HOOK_cuStreamBeginCapture_v2, hStream, mode);
}

CUresult CUDAAPI cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode)
{
	return begin_capture(HOOK_cuStreamBeginCapture_v2_ptsz, hStream, mode);
}

static CUresult begin_capture_to_graph(enum hook_id id, CUstream stream, CUgraph graph,
				       const CUgraphNode *deps, const CUgraphEdgeData *edges,
				       size_t ndeps, CUstreamCaptureMode mode)
{
	real_cuStreamBeginCaptureToGraph_t real = (real_cuStreamBeginCaptureToGraph_t)real_fn(id);
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (!hook_enter(real, 0))
		return real(stream, graph, deps, edges, ndeps, mode);
	rc = real(stream, graph, deps, edges, ndeps, mode);
	if (rc == CUDA_SUCCESS)
		capture_began(stream, id == HOOK_cuStreamBeginCaptureToGraph_ptsz, mode);
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuStreamBeginCaptureToGraph(CUstream hStream, CUgraph hGraph,
					     const CUgraphNode *dependencies,
					     const CUgraphEdgeData *dependencyData,
					     size_t numDependencies, CUstreamCaptureMode mode)
{
	return begin_capture_to_graph(HOOK_cuStreamBeginCaptureToGraph, hStream, hGraph,
				      dependencies, dependencyData, numDependencies, mode);
}

CUresult CUDAAPI cuStreamBeginCaptureToGraph_ptsz(CUstream hStream, CUgraph hGraph,
						  const CUgraphNode *dependencies,
						  const CUgraphEdgeData *dependencyData,
						  size_t numDependencies, CUstreamCaptureMode mode)
{
	return begin_capture_to_graph(HOOK_cuStreamBeginCaptureToGraph_ptsz, hStream, hGraph,
				      dependencies, dependencyData, numDependencies, mode);
}

/* Whatever the driver answers, the capture is over once the stream no longer captures. */
static CUresult end_capture(enum hook_id id, CUstream stream, CUgraph *graph)
{
	real_cuStreamEndCapture_t real = (real_cuStreamEndCapture_t)real_fn(id);
	int per_thread = id == HOOK_cuStreamEndCapture_ptsz;
	CUresult rc;

	if (!real)
		return CUDA_ERROR_NOT_FOUND;
	if (!hook_enter(real, 0))
		return real(stream, graph);
	rc = real(stream, graph);
	if (stream_capture_status(stream, per_thread) == CU_STREAM_CAPTURE_STATUS_NONE)
		capture_ended(stream, per_thread);
	hook_leave();
	return rc;
}

CUresult CUDAAPI cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
	return end_capture(HOOK_cuStreamEndCapture, hStream, phGraph);
}

CUresult CUDAAPI cuStreamEndCapture_ptsz(CUstream hStream, CUgraph *phGraph)
{
	return end_capture(HOOK_cuStreamEndCapture_ptsz, hStream, phGraph);
}
