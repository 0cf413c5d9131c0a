/*
 * Fork: in a child forked after the driver was initialised every CUDA call returns
 * CUDA_ERROR_NOT_INITIALIZED (the real driver's answer, test/gpu/driver_facts.c "fork"; the
 * fake copies it).  The shim passes that on, touches none of the parent's memory, and its
 * own locks are not inherited held: children forked while other threads allocate and free
 * answer and exit within 10 seconds.
 */
#include "shim_test.h"

#include <cuda.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static CUcontext ctx;
static CUdeviceptr parent_piece; /* spilled in the parent */
static volatile int stop;

static void *churn(void *arg)
{
	CUdeviceptr p;

	cuCtxSetCurrent(ctx);
	while (!stop) {
		if (cuMemAlloc_v2(&p, (size_t)(arg ? 3 << 20 : 256 << 10)) == CUDA_SUCCESS)
			cuMemFree_v2(p);
	}
	return NULL;
}

static int child(void)
{
	CUdeviceptr p;
	char buf[4096];
	int (*stats)(char *, size_t) =
		(int (*)(char *, size_t))dlsym(RTLD_DEFAULT, "spillway_stats_json");

	alarm(10);
	if (cuCtxSetCurrent(ctx) != CUDA_ERROR_NOT_INITIALIZED)
		return 4;
	if (cuMemAlloc_v2(&p, 4 << 20) != CUDA_ERROR_NOT_INITIALIZED)
		return 2;
	if (cuMemFree_v2(parent_piece) != CUDA_ERROR_NOT_INITIALIZED)
		return 5;
	if (!stats || stats(buf, sizeof(buf)) <= 0)
		return 3;
	return 0;
}

int main(void)
{
	pthread_t th[4];
	int good = 0, forks = 40;

	ctx = shim_setup("SPILLWAY_VRAM_LIMIT=2M", "SPILLWAY_HEADROOM=0", "SPILLWAY_BACKEND=host",
			 NULL);
	ok(cuMemAlloc_v2(&parent_piece, 4 << 20) == CUDA_SUCCESS &&
		   stat_of("\"device\":0", "spill_bytes") == 4 << 20,
	   "the parent spills 4 MiB");
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, churn, (void *)(intptr_t)(i & 1));
	for (int i = 0; i < forks; i++) {
		int status = -1;
		pid_t pid = fork();

		if (pid == 0)
			_exit(child());
		waitpid(pid, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			good++;
		else
			printf("# child %d: status %#x\n", i, status);
		usleep(2000);
	}
	stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ok(good == forks,
	   "%d of %d children forked mid-allocation got CUDA_ERROR_NOT_INITIALIZED from every call "
	   "through the shim, its statistics, and exited",
	   good, forks);
	ok(cuMemFree_v2(parent_piece) == CUDA_SUCCESS, "the parent's piece is still the parent's");
	ok(stat_of(NULL, "spills") > 0, "the parent's threads were spilling meanwhile (%lld)",
	   stat_of(NULL, "spills"));
	ok(stat_of("\"device\":0", "vram_bytes") == 0 &&
		   stat_of("\"device\":0", "spill_bytes") == 0,
	   "the parent's accounts are zero afterwards");
	return done_testing();
}
