// (e) GPU read bandwidth: spilled memory (host backend: memfd + cuMemHostRegister) against
// cudaHostAlloc(Mapped) memory and VRAM, in the same process.
#include "common.h"
#include <cstdint>
#include <cuda.h>

__global__ void read_kernel(const uint4 *p, size_t n, unsigned long long *sink)
{
	uint4 acc = make_uint4(0, 0, 0, 0);
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		uint4 v = p[i];
		acc.x ^= v.x; acc.y ^= v.y; acc.z ^= v.z; acc.w ^= v.w;
	}
	if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x12345678u)
		atomicAdd(sink, 1ull);
}

static double gbps(const void *p, size_t bytes, unsigned long long *sink)
{
	cudaEvent_t a, b;
	float ms, best = 1e30f;
	int sms;

	CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
	CHECK(cudaEventCreate(&a));
	CHECK(cudaEventCreate(&b));
	read_kernel<<<sms * 8, 512>>>((const uint4 *)p, bytes / 16, sink);  // warm-up
	for (int r = 0; r < 5; r++) {
		CHECK(cudaEventRecord(a));
		read_kernel<<<sms * 8, 512>>>((const uint4 *)p, bytes / 16, sink);
		CHECK(cudaEventRecord(b));
		CHECK(cudaEventSynchronize(b));
		CHECK(cudaEventElapsedTime(&ms, a, b));
		if (ms < best)
			best = ms;
	}
	return bytes / (best * 1e-3) / 1e9;
}

int main()
{
	const size_t big = 4ull << 30, small = 512ull << 20;
	unsigned long long *sink;
	void *spilled, *mapped_host, *mapped_dev, *vram;

	CHECK(cudaSetDevice(0));
	CHECK(cudaMalloc(&sink, sizeof(*sink)));
	CHECK(cudaMalloc(&vram, small));          // fits SPILLWAY_VRAM_LIMIT: VRAM
	CHECK(cudaMalloc(&spilled, big));         // does not: spilled
	CHECK(cudaHostAlloc(&mapped_host, big, cudaHostAllocMapped));
	CHECK(cudaHostGetDevicePointer(&mapped_dev, mapped_host, 0));
	CHECK(cudaMemset(spilled, 1, big));
	CHECK(cudaMemset(mapped_dev, 1, big));
	CHECK(cudaMemset(vram, 1, small));
	// A cuMemCreate past the budget: the shim creates it on host NUMA memory.
	CUmemAllocationProp prop = {};
	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = 0;
	CUmemGenericAllocationHandle handle;
	CUdeviceptr vmm;
	CUmemAccessDesc access = {};
	access.location = prop.location;
	access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	// Resolved the way PyTorch does it (through cuGetProcAddress, hence the shim).
	decltype(&cuMemCreate) create = nullptr;
	decltype(&cuMemAddressReserve) reserve = nullptr;
	decltype(&cuMemMap) map = nullptr;
	decltype(&cuMemSetAccess) set_access = nullptr;
	cudaDriverEntryPointQueryResult q;
	CHECK(cudaGetDriverEntryPointByVersion("cuMemCreate", (void **)&create, 12000, cudaEnableDefault, &q));
	CHECK(cudaGetDriverEntryPointByVersion("cuMemAddressReserve", (void **)&reserve, 12000, cudaEnableDefault, &q));
	CHECK(cudaGetDriverEntryPointByVersion("cuMemMap", (void **)&map, 12000, cudaEnableDefault, &q));
	CHECK(cudaGetDriverEntryPointByVersion("cuMemSetAccess", (void **)&set_access, 12000, cudaEnableDefault, &q));
	if (create(&handle, big, &prop, 0) != CUDA_SUCCESS ||
	    reserve(&vmm, big, 0, 0, 0) != CUDA_SUCCESS || map(vmm, big, 0, handle, 0) != CUDA_SUCCESS ||
	    set_access(vmm, big, &access, 1) != CUDA_SUCCESS) {
		std::printf("VMM setup failed\n");
		return 1;
	}
	CHECK(cudaMemset((void *)vmm, 1, big));
	std::string s = shim_stats();
	long long spill_bytes = stat_of(s, "spill_bytes"), host_bytes = stat_of(s, "bytes", "\"host\"");
	double g_spill = gbps(spilled, big, sink), g_mapped = gbps(mapped_dev, big, sink),
	       g_vram = gbps(vram, small, sink), g_vmm = gbps((void *)vmm, big, sink);
	long long numa_bytes = stat_of(s, "bytes", "\"host_numa\"");
	std::printf("spilled by the shim: %lld MiB (host backend %lld MiB)\n", spill_bytes >> 20,
		    host_bytes >> 20);
	std::printf("GPU read bandwidth, best of 5: spilled by the shim (4 GiB) %.1f GB/s; "
		    "cudaHostAlloc mapped (4 GiB) %.1f GB/s; VRAM (512 MiB) %.1f GB/s; "
		    "cuMemCreate spilled to host NUMA (%lld MiB) %.1f GB/s\n",
		    g_spill, g_mapped, g_vram, numa_bytes >> 20, g_vmm);
	// Both 4 GiB buffers spilled but for what the 1 GiB budget kept in VRAM (split placement,
	// core/split.c, which takes host-NUMA memory where the driver offers it).
	bool pass = spill_bytes + (1LL << 30) >= 2 * (long long)big && numa_bytes >= (long long)big;
	std::printf("RESULT e: %s spilled=%.1f mapped=%.1f vram=%.1f host_numa=%.1f\n",
		    pass ? "PASS" : "FAIL", g_spill, g_mapped, g_vram, g_vmm);
	return pass ? 0 : 1;
}
