// GPU read and write bandwidth of one buffer, by where the buffer lives.
//
//   bandwidth [--size-gib N] [--reps N] [--modes malloc,mapped,memcpy]
//
// malloc: cudaMalloc. Without the shim this is VRAM; under LD_PRELOAD of
//         libspillway-cuda.so with SPILLWAY_VRAM_LIMIT below the buffer size,
//         it is memory spilled by the shim (the point of the benchmark).
// mapped: cudaHostAlloc(Mapped | Portable), read and written by the kernel
//         in place over PCIe (zero-copy): the ceiling for spilled memory.
// memcpy: cudaMemcpy from pinned host memory to cudaMalloc memory and back.
//
// Every buffer is poisoned, written by the write kernel and checked by the
// read kernel (sum of all 32-bit words) before it is timed: a figure is only
// printed for memory the GPU really read and wrote. Prints one JSON object
// on stdout; a human-readable table on stderr. Exit status 1 on any error.
#include "cuda_check.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// Word i of the buffer holds i: the sum over n words is n(n-1)/2, so a read
// that skips or repeats memory, or a write that did not land, is caught.
__global__ void write_kernel(uint4 *buf, size_t n_vec)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n_vec;
	     i += stride) {
		uint32_t w = (uint32_t)(i * 4);
		buf[i] = make_uint4(w, w + 1, w + 2, w + 3);
	}
}

// Four independent 16-byte loads per thread per iteration keep enough reads
// in flight to fill PCIe as well as HBM.
__global__ void read_kernel(const uint4 *__restrict__ buf, size_t n_vec,
			    unsigned long long *sum)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	unsigned long long acc = 0;
	for (; i + 3 * stride < n_vec; i += 4 * stride) {
		uint4 a = buf[i], b = buf[i + stride], c = buf[i + 2 * stride],
		      d = buf[i + 3 * stride];
		acc += (unsigned long long)a.x + a.y + a.z + a.w;
		acc += (unsigned long long)b.x + b.y + b.z + b.w;
		acc += (unsigned long long)c.x + c.y + c.z + c.w;
		acc += (unsigned long long)d.x + d.y + d.z + d.w;
	}
	for (; i < n_vec; i += stride) {
		uint4 a = buf[i];
		acc += (unsigned long long)a.x + a.y + a.z + a.w;
	}
	for (int off = 16; off > 0; off >>= 1)
		acc += __shfl_down_sync(0xffffffffu, acc, off);
	if ((threadIdx.x & 31) == 0)
		atomicAdd(sum, acc);
}

struct Stats {
	double median, min, max;
	std::vector<double> all;
};

static Stats stats(std::vector<double> v)
{
	Stats s;
	s.all = v;
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	s.min = v.front();
	s.max = v.back();
	return s;
}

static std::string json_stats(const Stats &s)
{
	char head[256];
	snprintf(head, sizeof(head),
		 "{\"median_gbps\": %.2f, \"min_gbps\": %.2f, \"max_gbps\": %.2f, \"all_gbps\": [",
		 s.median, s.min, s.max);
	std::string out = head;
	for (size_t i = 0; i < s.all.size(); i++) {
		char v[32];
		snprintf(v, sizeof(v), "%s%.2f", i ? ", " : "", s.all[i]);
		out += v;
	}
	return out + "]}";
}

struct Ctx {
	int blocks, threads = 512;
	cudaEvent_t start, stop;
	unsigned long long *sum;
};

// Times fn() once with events; returns GB/s for the given byte count.
template <typename F> static double timed_gbps(Ctx &c, size_t bytes, F fn)
{
	CHECK(cudaEventRecord(c.start));
	fn();
	CHECK(cudaGetLastError());
	CHECK(cudaEventRecord(c.stop));
	CHECK(cudaEventSynchronize(c.stop));
	float ms;
	CHECK(cudaEventElapsedTime(&ms, c.start, c.stop));
	return bytes / (ms * 1e-3) / 1e9;
}

static void verify(Ctx &c, void *dev, size_t bytes, const char *what)
{
	size_t n_vec = bytes / 16, n_words = bytes / 4;
	CHECK(cudaMemset(dev, 0xff, bytes));
	write_kernel<<<c.blocks, c.threads>>>((uint4 *)dev, n_vec);
	CHECK(cudaGetLastError());
	CHECK(cudaMemset(c.sum, 0, sizeof(*c.sum)));
	read_kernel<<<c.blocks, c.threads>>>((const uint4 *)dev, n_vec, c.sum);
	CHECK(cudaGetLastError());
	unsigned long long got;
	CHECK(cudaMemcpy(&got, c.sum, sizeof(got), cudaMemcpyDeviceToHost));
	// Words hold their index mod 2^32; for buffers under 16 GiB that is
	// the index itself.
	unsigned long long want =
		(unsigned long long)n_words * (n_words - 1) / 2;
	if (got != want) {
		fprintf(stderr, "%s: checksum %llu, expected %llu\n", what, got,
			want);
		exit(1);
	}
}

static std::string kernel_rw(Ctx &c, void *dev, size_t bytes, int reps,
			     const char *what, Stats *read_out)
{
	size_t n_vec = bytes / 16;
	verify(c, dev, bytes, what);
	std::vector<double> rd, wr;
	for (int r = 0; r < reps; r++) {
		wr.push_back(timed_gbps(c, bytes, [&] {
			write_kernel<<<c.blocks, c.threads>>>((uint4 *)dev,
							      n_vec);
		}));
		rd.push_back(timed_gbps(c, bytes, [&] {
			read_kernel<<<c.blocks, c.threads>>>(
				(const uint4 *)dev, n_vec, c.sum);
		}));
	}
	Stats r = stats(rd), w = stats(wr);
	*read_out = r;
	fprintf(stderr, "%-8s read  %8.1f GB/s (min %.1f, max %.1f)\n", what,
		r.median, r.min, r.max);
	fprintf(stderr, "%-8s write %8.1f GB/s (min %.1f, max %.1f)\n", what,
		w.median, w.min, w.max);
	return "{\"read\": " + json_stats(r) + ", \"write\": " + json_stats(w);
}

static const char *memory_type_name(void *p)
{
	cudaPointerAttributes a;
	if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
		cudaGetLastError();
		return "error";
	}
	switch (a.type) {
	case cudaMemoryTypeDevice: return "device";
	case cudaMemoryTypeHost: return "host";
	case cudaMemoryTypeManaged: return "managed";
	default: return "unregistered";
	}
}

int main(int argc, char **argv)
{
	double size_gib = 4;
	int reps = 10;
	std::string modes = "malloc,mapped,memcpy";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--size-gib") && i + 1 < argc)
			size_gib = atof(argv[++i]);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--modes") && i + 1 < argc)
			modes = argv[++i];
		else {
			fprintf(stderr,
				"usage: %s [--size-gib N] [--reps N] [--modes malloc,mapped,memcpy]\n",
				argv[0]);
			return 2;
		}
	}
	if (size_gib <= 0 || size_gib >= 16 || reps < 1) {
		fprintf(stderr, "--size-gib must be in (0, 16), --reps >= 1\n");
		return 2;
	}
	size_t bytes = (size_t)(size_gib * (1ull << 30)) & ~(size_t)4095;

	Ctx c;
	cudaDeviceProp prop;
	CHECK(cudaGetDeviceProperties(&prop, 0));
	c.blocks = prop.multiProcessorCount * 4;
	CHECK(cudaEventCreate(&c.start));
	CHECK(cudaEventCreate(&c.stop));
	CHECK(cudaMalloc(&c.sum, sizeof(*c.sum)));
	int drv, rt;
	CHECK(cudaDriverGetVersion(&drv));
	CHECK(cudaRuntimeGetVersion(&rt));

	std::string out = "{\"device\": \"" + std::string(prop.name) + "\"";
	char buf[256];
	snprintf(buf, sizeof(buf),
		 ", \"cuda_driver_api\": %d, \"cuda_runtime\": %d, \"bytes\": %zu, \"reps\": %d, \"shim_loaded\": %s",
		 drv, rt, bytes, reps,
		 getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "spillway")
			 ? "true" : "false");
	out += buf;

	Stats ignored;
	if (modes.find("malloc") != std::string::npos) {
		size_t free0, free1, total;
		CHECK(cudaMemGetInfo(&free0, &total));
		void *dev;
		CHECK(cudaMalloc(&dev, bytes));
		CHECK(cudaMemGetInfo(&free1, &total));
		std::string r = kernel_rw(c, dev, bytes, reps, "malloc", &ignored);
		snprintf(buf, sizeof(buf),
			 ", \"pointer_type\": \"%s\", \"reported_free_before\": %zu, \"reported_free_after\": %zu}",
			 memory_type_name(dev), free0, free1);
		out += ", \"malloc\": " + r + buf;
		CHECK(cudaFree(dev));
	}
	if (modes.find("mapped") != std::string::npos) {
		void *host, *dev;
		CHECK(cudaHostAlloc(&host, bytes,
				    cudaHostAllocMapped | cudaHostAllocPortable));
		CHECK(cudaHostGetDevicePointer(&dev, host, 0));
		out += ", \"mapped\": " +
		       kernel_rw(c, dev, bytes, reps, "mapped", &ignored) + "}";
		CHECK(cudaFreeHost(host));
	}
	if (modes.find("memcpy") != std::string::npos) {
		void *host, *dev;
		CHECK(cudaHostAlloc(&host, bytes, cudaHostAllocPortable));
		CHECK(cudaMalloc(&dev, bytes));
		memset(host, 0x5a, bytes);
		// Check that the copy landed: every word is 0x5a5a5a5a.
		CHECK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
		CHECK(cudaMemset(c.sum, 0, sizeof(*c.sum)));
		read_kernel<<<c.blocks, c.threads>>>((const uint4 *)dev,
						     bytes / 16, c.sum);
		CHECK(cudaGetLastError());
		unsigned long long got;
		CHECK(cudaMemcpy(&got, c.sum, sizeof(got),
				 cudaMemcpyDeviceToHost));
		if (got != (unsigned long long)(bytes / 4) * 0x5a5a5a5aull) {
			fprintf(stderr, "memcpy: checksum mismatch\n");
			return 1;
		}
		std::vector<double> h2d, d2h;
		for (int r = 0; r < reps; r++) {
			h2d.push_back(timed_gbps(c, bytes, [&] {
				CHECK(cudaMemcpyAsync(dev, host, bytes,
						      cudaMemcpyHostToDevice));
			}));
			d2h.push_back(timed_gbps(c, bytes, [&] {
				CHECK(cudaMemcpyAsync(host, dev, bytes,
						      cudaMemcpyDeviceToHost));
			}));
		}
		Stats a = stats(h2d), b = stats(d2h);
		fprintf(stderr, "memcpy   H2D   %8.1f GB/s (min %.1f, max %.1f)\n",
			a.median, a.min, a.max);
		fprintf(stderr, "memcpy   D2H   %8.1f GB/s (min %.1f, max %.1f)\n",
			b.median, b.min, b.max);
		out += ", \"memcpy\": {\"h2d\": " + json_stats(a) +
		       ", \"d2h\": " + json_stats(b) + "}";
		CHECK(cudaFree(dev));
		CHECK(cudaFreeHost(host));
	}
	printf("%s}\n", out.c_str());
	return 0;
}
