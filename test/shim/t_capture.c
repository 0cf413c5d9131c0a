/*
 * Stream capture and graph memory through the shim, on the fake driver, which answers as the
 * H100 did (test/gpu/driver_facts.c): pinning, unpinning or querying an outside event during
 * a non-relaxed capture is 900 and invalidates the capture, waiting on a captured event is 907
 * and invalidates it too, and waiting for a context is refused during any capture.  The shim
 * never spills, pins, records or queries into a capture, does its own housekeeping in relaxed
 * mode, pins nothing for a thread a capture forbids it; a queued free completes only on
 * CUDA_SUCCESS; graph memory counts in the budget and the report.
 *
 * Card: 256 MiB (FAKE_CUDA_VRAM). Budget: 64 MiB, no reserve. Chunk: 32 MiB. Report: physical.
 */
#include "shim_test.h"

#include <cuda.h>
#include <unistd.h>

typedef void (*stream_fn)(CUstream);

static CUstreamCaptureStatus status_of(CUstream s)
{
	CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;

	cuStreamGetCaptureInfo_v3(s, &st, NULL, NULL, NULL, NULL, NULL);
	return st;
}

/* A piece spilled before the capture (the budget is full of a 48 MiB VRAM buffer). */
static CUdeviceptr vram48, piece;

TEST(setup_a_full_budget)
{
	ok(cuMemAlloc_v2(&vram48, 48 * MiB) == CUDA_SUCCESS &&
		   cuMemAlloc_v2(&piece, 24 * MiB) == CUDA_SUCCESS,
	   "48 MiB in VRAM, then 24 MiB");
	ok(stat_of("\"device\":0", "spill_bytes") == (long long)(24 * MiB),
	   "the 24 MiB spilled (%lld)", stat_of("\"device\":0", "spill_bytes"));
}

TEST(captured_allocation_is_the_drivers)
{
	CUstream s;
	CUgraph g = NULL;
	CUdeviceptr p = 0;
	long long spills = stat_of(NULL, "spills");
	long regs = fake_registrations();

	cuStreamCreate(&s, 0);
	ok(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_SUCCESS,
	   "capture begins (global mode)");
	ok(cuMemAllocAsync(&p, 80 * MiB, s) == CUDA_SUCCESS && p,
	   "an 80 MiB cuMemAllocAsync over the budget on the capturing stream succeeds");
	ok(stat_of(NULL, "spills") == spills && fake_registrations() == regs,
	   "not spilled, nothing pinned: it is a graph allocation node");
	ok(status_of(s) == CU_STREAM_CAPTURE_STATUS_ACTIVE, "the capture is intact");
	ok(cuMemFreeAsync(p, s) == CUDA_SUCCESS, "its free in the capture goes to the driver too");
	ok(cuStreamEndCapture(s, &g) == CUDA_SUCCESS && g, "the capture ends with a graph");
	cuGraphDestroy(g);
	cuStreamDestroy_v2(s);
}

/* The legacy stream can not be captured (cuStreamBeginCapture refuses it): no query needed. */
TEST(the_legacy_stream_is_not_asked_about_capture)
{
	CUdeviceptr p = 0, q = 0;
	long asked = fake_calls("cuStreamGetCaptureInfo_v3");
	CUresult rc = cuMemAllocAsync(&p, 1 * MiB, NULL);

	asked = fake_calls("cuStreamGetCaptureInfo_v3") - asked;
	ok(rc == CUDA_SUCCESS && asked == 0,
	   "cuMemAllocAsync on the NULL stream: no cuStreamGetCaptureInfo (%ld)", asked);
	asked = fake_calls("cuStreamGetCaptureInfo_v3");
	rc = cuMemAllocAsync(&q, 1 * MiB, CU_STREAM_PER_THREAD);
	asked = fake_calls("cuStreamGetCaptureInfo_v3") - asked;
	ok(rc == CUDA_SUCCESS && asked == 1,
	   "on CU_STREAM_PER_THREAD, which can be captured, it is asked (%ld)", asked);
	ok(cuMemFreeAsync(p, NULL) == CUDA_SUCCESS &&
		   cuMemFreeAsync(q, CU_STREAM_PER_THREAD) == CUDA_SUCCESS &&
		   cuCtxSynchronize() == CUDA_SUCCESS,
	   "both freed");
}

TEST(graph_memory_counts_in_budget_and_report)
{
	CUDA_MEM_ALLOC_NODE_PARAMS np = { 0 };
	CUgraph g;
	CUgraphNode node;
	CUgraphExec exec;
	CUstream s;
	CUdeviceptr later;
	size_t free_b = 0, total = 0;
	long long spills;
	long queries;
	CUresult rc;

	cuStreamCreate(&s, 0);
	cuGraphCreate(&g, 0);
	np.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
	np.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	np.poolProps.location.id = 0;
	np.bytesize = 128 * MiB;
	ok(cuGraphAddMemAllocNode(&node, g, NULL, 0, &np) == CUDA_SUCCESS && np.dptr,
	   "a 128 MiB graph allocation node (twice the budget)");
	ok(cuGraphInstantiateWithFlags(&exec, g, 0) == CUDA_SUCCESS &&
		   cuGraphLaunch(exec, s) == CUDA_SUCCESS,
	   "instantiated and launched: the driver backs it in VRAM");
	ok(stat_of("\"device\":0", "graph_bytes") == (long long)(128 * MiB),
	   "the statistics show 128 MiB of graph memory (%lld)",
	   stat_of("\"device\":0", "graph_bytes"));
	ok(cuMemGetInfo_v2(&free_b, &total) == CUDA_SUCCESS && free_b == 0,
	   "the physical report has no free VRAM left in the budget (%zu)", free_b);
	spills = stat_of(NULL, "spills");
	ok(cuMemAlloc_v2(&later, 4 * MiB) == CUDA_SUCCESS && stat_of(NULL, "spills") == spills + 1,
	   "a later 4 MiB request spills: the graph's memory took the budget");
	ok(logged("graph memory on device 0"), "the log says graph memory is over the budget");
	cuMemFree_v2(later);
	spills = stat_of(NULL, "splits");
	ok(cuMemAlloc_v2(&later, 40 * MiB) == CUDA_SUCCESS && stat_of(NULL, "splits") == spills &&
		   stat_of("\"device\":0", "vram_bytes") == (long long)(48 * MiB),
	   "a 40 MiB request (over the chunk) is not split: the graph's memory left no VRAM "
	   "(vram %lld MiB)",
	   stat_of("\"device\":0", "vram_bytes") >> 20);
	cuMemFree_v2(later);
	ok(cuMemFreeAsync(np.dptr, s) == CUDA_SUCCESS && cuStreamSynchronize(s) == CUDA_SUCCESS &&
		   cuDeviceGraphMemTrim(0) == CUDA_SUCCESS,
	   "graph memory freed and trimmed");
	cuMemGetInfo_v2(&free_b, &total);
	ok(stat_of("\"device\":0", "graph_bytes") == 0 && free_b == 16 * MiB,
	   "and the budget is back: %zu MiB free", free_b >> 20);
	queries = fake_calls("cuDeviceGetGraphMemAttribute");
	rc = cuMemAlloc_v2(&later, 4 * MiB);
	queries = fake_calls("cuDeviceGetGraphMemAttribute") - queries;
	ok(rc == CUDA_SUCCESS && queries == 1,
	   "an allocation in VRAM asks the driver for the graph memory once (%ld times)", queries);
	cuMemFree_v2(later);
	cuGraphExecDestroy(exec);
	cuGraphDestroy(g);
	cuStreamDestroy_v2(s);
}

TEST(free_during_capture_is_held)
{
	CUstream s;
	CUgraph g = NULL;
	long records = fake_calls("cuEventRecord"), queries = fake_calls("cuEventQuery");

	cuStreamCreate(&s, 0);
	ok(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_RELAXED) == CUDA_SUCCESS,
	   "capture begins (relaxed mode, as PyTorch's)");
	ok(cuMemFreeAsync(piece, s) == CUDA_SUCCESS, "cuMemFreeAsync of the spilled piece on it");
	ok(fake_calls("cuEventRecord") == records && fake_calls("cuEventQuery") == queries,
	   "no event was recorded into the capture or queried");
	ok(stat_of("\"device\":0", "spill_bytes") == (long long)(24 * MiB) &&
		   stat_of(NULL, "capture_held_frees") == 1,
	   "the piece is held, not reused (a launch of the graph may still read it)");
	ok(logged("during stream capture: held"), "the log says why");
	ok(status_of(s) == CU_STREAM_CAPTURE_STATUS_ACTIVE &&
		   cuStreamEndCapture(s, &g) == CUDA_SUCCESS,
	   "the capture is intact and ends well");
	cuGraphDestroy(g);
	cuStreamDestroy_v2(s);
}

TEST(no_pinning_during_a_global_capture)
{
	CUstream s, other;
	CUgraph g = NULL;
	CUdeviceptr p = 0;
	long long spills = stat_of(NULL, "spills"), arenas = stat_of(NULL, "arenas_created");

	cuStreamCreate(&s, 0);
	cuStreamCreate(&other, 0);
	ok(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_SUCCESS,
	   "a global capture on one stream");
	/* Without the shim the driver answers 900 here and invalidates the capture (driver_facts). */
	ok(cuMemAllocAsync(&p, 40 * MiB, other) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
	   "40 MiB over the budget on another stream: the driver's own answer, 900");
	ok(stat_of(NULL, "spills") == spills && stat_of(NULL, "arenas_created") == arenas &&
		   stat_of(NULL, "capture_vram") == 1,
	   "the shim tried no pinning: it asked the driver for VRAM");
	ok(logged("a stream capture is under way and forbids pinning"), "the log says why");
	ok(cuStreamEndCapture(s, &g) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
	   "the capture ends as it would without the shim (901)");
	cuStreamDestroy_v2(s);
	cuStreamDestroy_v2(other);
}

TEST(pinning_during_a_relaxed_thread_capture)
{
	CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
	CUstream s, other;
	CUgraph g = NULL;
	CUdeviceptr p = 0;
	long long spills = stat_of(NULL, "spills");

	cuStreamCreate(&s, 0);
	cuStreamCreate(&other, 0);
	cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL);
	/* What PyTorch's caching allocator does around cudaMalloc during a capture. */
	cuThreadExchangeStreamCaptureMode(&mode);
	ok(cuMemAllocAsync(&p, 40 * MiB, other) == CUDA_SUCCESS &&
		   stat_of(NULL, "spills") == spills + 1,
	   "in relaxed mode the request over the budget spills as usual");
	cuThreadExchangeStreamCaptureMode(&mode);
	ok(status_of(s) == CU_STREAM_CAPTURE_STATUS_ACTIVE &&
		   cuStreamEndCapture(s, &g) == CUDA_SUCCESS,
	   "the capture is intact and ends well");
	ok(cuMemFreeAsync(p, other) == CUDA_SUCCESS && cuStreamSynchronize(other) == CUDA_SUCCESS,
	   "freed");
	cuGraphDestroy(g);
	cuStreamDestroy_v2(s);
	cuStreamDestroy_v2(other);
}

/*
 * The PyTorch cudaMallocAsync failure seen on the H100: frees queued before a capture were
 * reclaimed during it, and querying their events (recorded outside it) invalidated it.
 */
TEST(reclaiming_queued_frees_leaves_a_capture_alone)
{
	CUstream s, other;
	CUgraph g = NULL;
	CUdeviceptr a, b;

	cuStreamCreate(&s, 0);
	cuStreamCreate(&other, 0);
	ok(cuMemAlloc_v2(&a, 20 * MiB) == CUDA_SUCCESS &&
		   cuMemAlloc_v2(&b, 20 * MiB) == CUDA_SUCCESS,
	   "two spilled pieces");
	ok(cuMemFreeAsync(a, other) == CUDA_SUCCESS, "one freed on a stream: queued");
	cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL);
	ok(cuMemFreeAsync(b, other) == CUDA_SUCCESS, "the other freed during a global capture");
	ok(status_of(s) == CU_STREAM_CAPTURE_STATUS_ACTIVE &&
		   cuStreamEndCapture(s, &g) == CUDA_SUCCESS,
	   "the capture is intact: the queued free's event was queried in relaxed mode");
	cuGraphDestroy(g);
	cuStreamSynchronize(other);
	cuStreamDestroy_v2(s);
	cuStreamDestroy_v2(other);
}

TEST(queued_free_completes_only_on_success)
{
	stream_fn block = (stream_fn)dlsym(RTLD_DEFAULT, "fake_stream_block");
	stream_fn release = (stream_fn)dlsym(RTLD_DEFAULT, "fake_stream_release");
	CUdeviceptr p, q;
	CUstream s;
	long long before;

	cuStreamCreate(&s, 0);
	ok(cuMemAlloc_v2(&p, 20 * MiB) == CUDA_SUCCESS, "a 20 MiB piece spills");
	before = stat_of("\"device\":0", "spill_bytes");
	block(s);
	ok(cuMemFreeAsync(p, s) == CUDA_SUCCESS, "freed on a stream with queued work");
	setenv("FAKE_CUDA_FAIL", "cuEventQuery", 1);
	release(s);
	ok(cuMemAlloc_v2(&q, 20 * MiB) == CUDA_SUCCESS &&
		   stat_of("\"device\":0", "spill_bytes") == before + (long long)(20 * MiB),
	   "while cuEventQuery answers an error the piece stays queued");
	unsetenv("FAKE_CUDA_FAIL");
	ok(logged("cuEventQuery of a queued free: CUDA_ERROR_UNKNOWN (999)"), "logged once");
	cuMemFree_v2(q);
	ok(stat_of("\"device\":0", "spill_bytes") == before - (long long)(20 * MiB),
	   "once it answers CUDA_SUCCESS, the piece goes back");
	cuStreamDestroy_v2(s);
}

TEST(cuMemFree_during_a_global_capture_holds_the_piece)
{
	CUstream s;
	CUgraph g = NULL;
	CUdeviceptr p;
	long long before;

	cuStreamCreate(&s, 0);
	ok(cuMemAlloc_v2(&p, 20 * MiB) == CUDA_SUCCESS, "a 20 MiB piece spills");
	before = stat_of("\"device\":0", "spill_bytes");
	cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL);
	ok(cuMemFree_v2(p) == CUDA_SUCCESS && stat_of("\"device\":0", "spill_bytes") == before,
	   "cuMemFree during the capture: held, since the context cannot be synchronized");
	ok(logged("during stream capture: held"), "the log says why");
	ok(cuStreamEndCapture(s, &g) == CUDA_SUCCESS, "the capture ends well");
	cuGraphDestroy(g);
	cuStreamDestroy_v2(s);
}

int main(void)
{
	shim_log_to("t_capture");
	if (!shim_setup("FAKE_CUDA_VRAM=256M", "SPILLWAY_VRAM_LIMIT=64M", "SPILLWAY_RESERVE=0",
			"SPILLWAY_CHUNK=32M", "SPILLWAY_BACKEND=host", "SPILLWAY_REPORT=physical",
			"SPILLWAY_HEADROOM=0", NULL))
		return done_testing();
	{
		int rc = tap_run();

		shim_log_remove();
		return rc;
	}
}
