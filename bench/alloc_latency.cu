// Latency of cudaMalloc and cudaFree as the application sees it.
//
//   alloc_latency [--fill-gib N] [--iters N]
//
// Run without the shim, under the shim with no limit (pass-through), and
// under the shim with SPILLWAY_VRAM_LIMIT=<fill> and --fill-gib <fill> so
// that every timed allocation is past the budget (spilled). Each size is
// allocated and freed --iters times (fewer for 1 GiB); the CPU time of each
// call is measured with CLOCK_MONOTONIC. One JSON object on stdout.
#include "cuda_check.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

static double now_us()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double pct(std::vector<double> v, double p)
{
	std::sort(v.begin(), v.end());
	size_t i = std::min(v.size() - 1, (size_t)(p * (v.size() - 1) + 0.5));
	return v[i];
}

__global__ void touch(char *p, size_t n)
{
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x * 4096)
		p[i] = 1;
}

static const char *where(void *p)
{
	cudaPointerAttributes a;
	if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
		cudaGetLastError();
		return "error";
	}
	return a.type == cudaMemoryTypeDevice ? "device"
	       : a.type == cudaMemoryTypeHost ? "host"
	       : a.type == cudaMemoryTypeManaged ? "managed"
					      : "unregistered";
}

int main(int argc, char **argv)
{
	double fill_gib = 0;
	int iters = 200;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fill-gib") && i + 1 < argc)
			fill_gib = atof(argv[++i]);
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--fill-gib N] [--iters N]\n",
				argv[0]);
			return 2;
		}
	}
	if (iters < 5 || fill_gib < 0) {
		fprintf(stderr, "--iters must be >= 5, --fill-gib >= 0\n");
		return 2;
	}
	CHECK(cudaFree(0)); // context creation stays out of the figures
	void *fill = nullptr;
	if (fill_gib > 0)
		CHECK(cudaMalloc(&fill, (size_t)(fill_gib * (1ull << 30))));

	// cudaMemGetInfo's own latency: an allocator that asks the driver how
	// much is free before each allocation pays it on every call.
	std::vector<double> mgi;
	for (int i = 0; i < iters; i++) {
		size_t f, t;
		double t0 = now_us();
		CHECK(cudaMemGetInfo(&f, &t));
		mgi.push_back(now_us() - t0);
	}
	fprintf(stderr, "cudaMemGetInfo %8.2f us (p90 %.2f)\n", pct(mgi, 0.5), pct(mgi, 0.9));

	// 256 KiB is under the shim's default SPILLWAY_MIN_SPILL (1 MiB).
	const size_t sizes[] = {256ull << 10, 2ull << 20, 64ull << 20, 1ull << 30};
	std::string out = "{\"fill_gib\": " + std::to_string(fill_gib) +
			  ", \"mem_get_info_us_median\": " + std::to_string(pct(mgi, 0.5)) +
			  ", \"sizes\": [";
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t size = sizes[s];
		int n = size >= (1ull << 30) ? std::max(5, iters / 20) : iters;
		std::vector<double> ma, fr;
		const char *kind = "?";
		for (int i = 0; i < n + 1; i++) {
			void *p;
			double t0 = now_us();
			CHECK(cudaMalloc(&p, size));
			double t1 = now_us();
			if (i == 0) {
				kind = where(p);
				// The memory must be usable, not only handed out.
				touch<<<64, 256>>>((char *)p, size);
				CHECK(cudaGetLastError());
				CHECK(cudaDeviceSynchronize());
			}
			double t2 = now_us();
			CHECK(cudaFree(p));
			double t3 = now_us();
			if (i > 0) { // the first round warms the path
				ma.push_back(t1 - t0);
				fr.push_back(t3 - t2);
			}
		}
		char buf[512];
		snprintf(buf, sizeof(buf),
			 "%s{\"bytes\": %zu, \"iters\": %d, \"pointer_type\": \"%s\", "
			 "\"malloc_us_median\": %.2f, \"malloc_us_p90\": %.2f, "
			 "\"free_us_median\": %.2f, \"free_us_p90\": %.2f}",
			 s ? ", " : "", size, n, kind, pct(ma, 0.5), pct(ma, 0.9),
			 pct(fr, 0.5), pct(fr, 0.9));
		out += buf;
		fprintf(stderr,
			"%10zu B (%s): malloc %8.2f us (p90 %.2f), free %8.2f us (p90 %.2f)\n",
			size, kind, pct(ma, 0.5), pct(ma, 0.9), pct(fr, 0.5),
			pct(fr, 0.9));
	}
	if (fill)
		CHECK(cudaFree(fill));
	printf("%s]}\n", out.c_str());
	return 0;
}
