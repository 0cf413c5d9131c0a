/*
 * The pool backend against a real /dev/spillway (the VM tests load the module; elsewhere this
 * program reports a skip).  Spills come from SPILLWAY_IOC_ALLOC buffers, are visible in
 * SPILLWAY_IOC_LIST_BUFFERS under this process while in use, and go back at free.
 */
#include "shim_test.h"

#include <cuda.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "pool_test.h"

int main(void)
{
	struct spillway_info info = { 0 };
	CUdeviceptr a, b;
	int fd = open("/dev/spillway", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("ok 1 - pool backend # SKIP /dev/spillway is absent (the VM tests run this)\n1..1\n");
		return 0;
	}
	/* The budget is all reserve: large requests spill whole, not split (t_loan splits). */
	if (!shim_setup("SPILLWAY_BACKEND=pool", "SPILLWAY_VRAM_LIMIT=4M", "SPILLWAY_RESERVE=4M",
			"SPILLWAY_HEADROOM=0", "SPILLWAY_CHUNK=32M", NULL))
		return done_testing();
	ok(cuMemAlloc_v2(&a, 8 * MiB) == CUDA_SUCCESS &&
		   cuMemAlloc_v2(&b, 40 * MiB) == CUDA_SUCCESS,
	   "two spills with SPILLWAY_BACKEND=pool");
	ok(stat_of("\"pool\"", "bytes") == (long long)(48 * MiB), "both came from the pool (%lld)",
	   stat_of("\"pool\"", "bytes"));
	ok(pool_buffer_bytes_of(fd, getpid()) == (long long)(72 * MiB),
	   "the module lists this process's buffers: a 32 MiB arena and a 40 MiB one (%lld)",
	   pool_buffer_bytes_of(fd, getpid()));
	memset((void *)b, 0x3c, 40 * MiB);
	ok(((unsigned char *)b)[40 * MiB - 1] == 0x3c && ((unsigned char *)b)[0] == 0x3c,
	   "pool memory holds data");
	ok(cuMemFree_v2(b) == CUDA_SUCCESS &&
		   pool_buffer_bytes_of(fd, getpid()) == (long long)(32 * MiB),
	   "freeing the large spill returns its buffer to the pool");
	ok(ioctl(fd, SPILLWAY_IOC_INFO, &info) == 0, "SPILLWAY_IOC_INFO");
	ok(cuMemAlloc_v2(&b, (size_t)info.free_bytes + 64 * MiB) == CUDA_ERROR_OUT_OF_MEMORY,
	   "a spill larger than the pool's free bytes fails with OUT_OF_MEMORY (backend pool)");
	ok(cuMemFree_v2(a) == CUDA_SUCCESS && stat_of("\"pool\"", "bytes") == 0, "all freed");
	return done_testing();
}
