/*
 * Fork safety: children forked while other threads allocate and free inherit no held lock.
 * Each child uses the shim (allocation, free, stats) and must exit within 10 seconds.
 */
#include "shim_test.h"

#include <cuda.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static CUcontext ctx;
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
	cuCtxSetCurrent(ctx);
	if (cuMemAlloc_v2(&p, 4 << 20) != CUDA_SUCCESS || cuMemFree_v2(p) != CUDA_SUCCESS)
		return 2;
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
	ok(good == forks, "%d of %d children forked mid-allocation used the shim and exited", good,
	   forks);
	ok(stat_of(NULL, "spills") > 0, "the parent's threads were spilling meanwhile (%lld)",
	   stat_of(NULL, "spills"));
	ok(stat_of("\"device\":0", "vram_bytes") == 0 &&
		   stat_of("\"device\":0", "spill_bytes") == 0,
	   "the parent's accounts are zero afterwards");
	return done_testing();
}
