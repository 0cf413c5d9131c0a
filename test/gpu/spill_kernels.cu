// (a) Kernels write and verify data across VRAM and spilled allocations under
// SPILLWAY_VRAM_LIMIT, through cudaMalloc, cudaMallocAsync and a kernel that copies between
// the two kinds.  Exit status 0 only when every word checks.
#include "common.h"
#include <cstdint>
#include <vector>

__device__ __forceinline__ uint32_t pattern(uint32_t buf, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)buf << 40);
	x ^= x >> 31;
	return (uint32_t)x * 2654435761u + buf;
}

__global__ void write_kernel(uint32_t *p, uint64_t n, uint32_t buf)
{
	for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n;
	     i += (uint64_t)gridDim.x * blockDim.x)
		p[i] = pattern(buf, i);
}

__global__ void verify_kernel(const uint32_t *p, uint64_t n, uint32_t buf, unsigned long long *bad)
{
	unsigned long long local = 0;
	for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n;
	     i += (uint64_t)gridDim.x * blockDim.x)
		local += p[i] != pattern(buf, i);
	if (local)
		atomicAdd(bad, local);
}

__global__ void copy_kernel(uint32_t *dst, const uint32_t *src, uint64_t n)
{
	for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n;
	     i += (uint64_t)gridDim.x * blockDim.x)
		dst[i] = src[i];
}

int main()
{
	const size_t size = 512ull << 20, n = size / 4;
	const int count = 8;
	std::vector<uint32_t *> bufs(count);
	unsigned long long *bad, host_bad = 0;
	int failures = 0;

	CHECK(cudaSetDevice(0));
	CHECK(cudaMalloc(&bad, sizeof(*bad)));
	CHECK(cudaMemset(bad, 0, sizeof(*bad)));
	for (int b = 0; b < count; b++) {
		cudaPointerAttributes attr;
		CHECK(cudaMalloc(&bufs[b], size));
		CHECK(cudaPointerGetAttributes(&attr, bufs[b]));
		if (attr.type != cudaMemoryTypeDevice) {
			std::printf("buffer %d: pointer type %d, not device\n", b, (int)attr.type);
			failures++;
		}
	}
	std::string s = shim_stats();
	long long spilled = stat_of(s, "spill_bytes"), vram = stat_of(s, "vram_bytes", "\"device\":0");
	std::printf("allocated %d x 512 MiB: vram %lld MiB, spilled %lld MiB\n", count, vram >> 20,
		    spilled >> 20);
	for (int b = 0; b < count; b++)
		write_kernel<<<1024, 256>>>(bufs[b], n, b);
	CHECK(cudaGetLastError());
	for (int b = 0; b < count; b++)
		verify_kernel<<<1024, 256>>>(bufs[b], n, b, bad);
	CHECK(cudaDeviceSynchronize());
	CHECK(cudaMemcpy(&host_bad, bad, sizeof(host_bad), cudaMemcpyDeviceToHost));
	std::printf("write+verify across all buffers: %llu bad words\n", host_bad);
	failures += host_bad != 0;

	// Across the boundary: spilled (last) -> VRAM (first) and back, then verify both.
	copy_kernel<<<1024, 256>>>(bufs[0], bufs[count - 1], n);
	copy_kernel<<<1024, 256>>>(bufs[count - 2], bufs[1], n);
	CHECK(cudaMemset(bad, 0, sizeof(*bad)));
	verify_kernel<<<1024, 256>>>(bufs[0], n, count - 1, bad);
	verify_kernel<<<1024, 256>>>(bufs[count - 2], n, 1, bad);
	CHECK(cudaDeviceSynchronize());
	CHECK(cudaMemcpy(&host_bad, bad, sizeof(host_bad), cudaMemcpyDeviceToHost));
	std::printf("copies VRAM<->spilled: %llu bad words\n", host_bad);
	failures += host_bad != 0;

	// cudaMemcpy and cudaMemset on a spilled buffer.
	std::vector<uint32_t> sample(1024);
	CHECK(cudaMemset(bufs[count - 1], 0x7f, size));
	CHECK(cudaMemcpy(sample.data(), (char *)bufs[count - 1] + size - 4096, 4096, cudaMemcpyDeviceToHost));
	int memset_ok = 1;
	for (uint32_t v : sample)
		memset_ok &= v == 0x7f7f7f7fu;
	std::printf("cudaMemset+cudaMemcpy on spilled memory: %s\n", memset_ok ? "ok" : "WRONG");
	failures += !memset_ok;

	// Whole-buffer cudaMemcpy and cudaMemset on every buffer, so that a split one (part VRAM,
	// part host memory behind one pointer) is copied and set across its boundary.
	std::vector<uint32_t> whole(n), back(n);
	int copies_ok = 1;
	for (size_t i = 0; i < n; i++)
		whole[i] = (uint32_t)(i * 2654435761u);
	for (int b = 0; b < count; b++) {
		CHECK(cudaMemcpy(bufs[b], whole.data(), size, cudaMemcpyHostToDevice));
		CHECK(cudaMemcpy(back.data(), bufs[b], size, cudaMemcpyDeviceToHost));
		copies_ok &= back == whole;
		CHECK(cudaMemset(bufs[b], 0x3c, size));
		CHECK(cudaMemcpy(back.data(), bufs[b], size, cudaMemcpyDeviceToHost));
		for (size_t i = 0; i < n; i += 4099)
			copies_ok &= back[i] == 0x3c3c3c3cu;
		copies_ok &= back[n - 1] == 0x3c3c3c3cu;
	}
	std::printf("whole-buffer cudaMemcpy H2D/D2H and cudaMemset, every buffer (splits: %lld): %s\n",
		    stat_of(shim_stats(), "splits"), copies_ok ? "ok" : "WRONG");
	failures += !copies_ok;

	// Stream-ordered: allocate, write, verify, free on a stream, repeatedly.
	cudaStream_t st;
	CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
	CHECK(cudaMemsetAsync(bad, 0, sizeof(*bad), st));
	for (int r = 0; r < 6; r++) {
		uint32_t *p;
		CHECK(cudaMallocAsync(&p, size, st));
		write_kernel<<<1024, 256, 0, st>>>(p, n, 100 + r);
		verify_kernel<<<1024, 256, 0, st>>>(p, n, 100 + r, bad);
		CHECK(cudaFreeAsync(p, st));
	}
	CHECK(cudaMemcpyAsync(&host_bad, bad, sizeof(host_bad), cudaMemcpyDeviceToHost, st));
	CHECK(cudaStreamSynchronize(st));
	std::printf("cudaMallocAsync/cudaFreeAsync x6 (spilled, stream-ordered): %llu bad words\n", host_bad);
	failures += host_bad != 0;

	for (int b = 0; b < count; b++)
		CHECK(cudaFree(bufs[b]));
	s = shim_stats();
	std::printf("after frees: stats %s\n", s.c_str());
	if (spilled <= 0) {
		std::printf("nothing was spilled: is the shim loaded and SPILLWAY_VRAM_LIMIT set?\n");
		failures++;
	}
	std::printf("RESULT a: %s\n", failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
