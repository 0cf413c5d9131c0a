// (d) Many threads allocate, fill, check and free at once, VRAM and spilled mixed.
#include "common.h"
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

static std::atomic<long> errors{0}, allocs{0};

static void worker(int id, int rounds)
{
	static const size_t sizes[] = { 256u << 10, 1u << 20, 8u << 20, 64u << 20 };
	unsigned int seed = 12345u + id;
	cudaStream_t st;

	CHECK(cudaSetDevice(0));
	CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
	for (int r = 0; r < rounds; r++) {
		size_t len = sizes[rand_r(&seed) % 4];
		unsigned char tag = (unsigned char)(id * 7 + r), head = 0, tail = 0;
		void *p;

		if (cudaMalloc(&p, len) != cudaSuccess) {
			errors++;
			continue;
		}
		allocs++;
		if (cudaMemsetAsync(p, tag, len, st) != cudaSuccess ||
		    cudaMemcpyAsync(&head, p, 1, cudaMemcpyDeviceToHost, st) != cudaSuccess ||
		    cudaMemcpyAsync(&tail, (char *)p + len - 1, 1, cudaMemcpyDeviceToHost, st) != cudaSuccess ||
		    cudaStreamSynchronize(st) != cudaSuccess || head != tag || tail != tag)
			errors++;
		if (cudaFree(p) != cudaSuccess)
			errors++;
	}
	cudaStreamDestroy(st);
}

int main()
{
	const int threads = 16, rounds = 200;
	std::vector<std::thread> pool;

	CHECK(cudaSetDevice(0));
	CHECK(cudaFree(nullptr));
	auto t0 = std::chrono::steady_clock::now();
	for (int i = 0; i < threads; i++)
		pool.emplace_back(worker, i, rounds);
	for (auto &t : pool)
		t.join();
	double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	std::string s = shim_stats();
	long long spills = stat_of(s, "spills"), vram = stat_of(s, "vram_bytes", "\"device\":0"),
		  spill = stat_of(s, "spill_bytes");
	std::printf("%d threads x %d rounds: %ld allocations in %.2f s, %ld errors, %lld spilled, "
		    "left: vram %lld spill %lld\n", threads, rounds, allocs.load(), secs, errors.load(),
		    spills, vram, spill);
	bool pass = errors == 0 && spills > 0 && vram == 0;
	std::printf("RESULT d: %s\n", pass ? "PASS" : "FAIL");
	return pass ? 0 : 1;
}
