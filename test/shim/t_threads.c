/*
 * The registry under threads: 8 threads allocate, fill, verify and free pieces of mixed sizes
 * around the spill threshold, while others query pointers.  Afterwards every account is zero.
 */
#include "shim_test.h"

#include <cuda.h>
#include <pthread.h>

CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream);

#define THREADS 8
#define ROUNDS	1500
#define LIVE	4

static CUcontext ctx;
static int errors[THREADS], spilled_seen[THREADS];

static void *worker(void *arg)
{
	static const size_t sizes[] = { 64 << 10, 512 << 10, 2 << 20, 6 << 20 };
	int id = (int)(intptr_t)arg;
	CUdeviceptr live[LIVE] = { 0 };
	size_t len[LIVE] = { 0 };
	unsigned int seed = (unsigned int)id * 7919u + 1;

	cuCtxSetCurrent(ctx);
	for (int r = 0; r < ROUNDS; r++) {
		int slot = (int)(rand_r(&seed) % LIVE);
		unsigned char tag = (unsigned char)(id * 31 + slot);

		if (live[slot]) {
			const unsigned char *c = (const unsigned char *)live[slot];

			/* Another thread writing into our piece would show here. */
			if (c[0] != tag || c[len[slot] / 2] != tag || c[len[slot] - 1] != tag)
				errors[id]++;
			if ((r & 1) ? cuMemFree_v2(live[slot]) : cuMemFreeAsync(live[slot], NULL))
				errors[id]++;
			live[slot] = 0;
			continue;
		}
		len[slot] = sizes[rand_r(&seed) % 4];
		if (cuMemAlloc_v2(&live[slot], len[slot]) != CUDA_SUCCESS) {
			errors[id]++;
			live[slot] = 0;
			continue;
		}
		{
			unsigned int type = 0;

			if (cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
						  live[slot]) ||
			    type != CU_MEMORYTYPE_DEVICE)
				errors[id]++;
		}
		memset((void *)live[slot], tag, len[slot]);
		if (stat_of(NULL, "spill_bytes") > 0)
			spilled_seen[id] = 1;
	}
	for (int s = 0; s < LIVE; s++)
		if (live[s] && cuMemFree_v2(live[s]))
			errors[id]++;
	return NULL;
}

int main(void)
{
	pthread_t th[THREADS];
	int total_errors = 0, spilled = 0;
	CUdeviceptr p;

	ctx = shim_setup("SPILLWAY_VRAM_LIMIT=24M", "SPILLWAY_HEADROOM=0", "SPILLWAY_CHUNK=16M",
			 "SPILLWAY_BACKEND=host", "FAKE_CUDA_VRAM=512M", NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		total_errors += errors[i];
		spilled += spilled_seen[i];
	}
	ok(total_errors == 0,
	   "%d threads x %d rounds: no failed call, no corrupted piece (%d errors)", THREADS,
	   ROUNDS, total_errors);
	ok(spilled > 0, "the budget forced spills while threads ran");
	ok(stat_of(NULL, "spills") > 100, "many allocations were spilled (%lld)",
	   stat_of(NULL, "spills"));
	/* One more spill reclaims the last stream-ordered frees. */
	setenv("SPILLWAY_MIN_SPILL", "0", 1);
	ok(cuMemAlloc_v2(&p, 30 << 20) == CUDA_SUCCESS && cuMemFree_v2(p) == CUDA_SUCCESS,
	   "a final spill and free");
	ok(stat_of("\"device\":0", "vram_bytes") == 0 && fake_vram_used(0) == 0,
	   "VRAM accounts are zero, in the shim and in the driver");
	ok(stat_of(NULL, "spill_bytes") == 0, "spill account is zero (%lld)",
	   stat_of(NULL, "spill_bytes"));
	ok(stat_of("\"device\":0", "vram_peak") <= (long long)(24 << 20) + 8 * (512 << 10),
	   "VRAM peak stayed within the budget plus sub-threshold pieces (%lld)",
	   stat_of("\"device\":0", "vram_peak"));
	return done_testing();
}
