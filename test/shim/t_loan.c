/*
 * Split placement with the pool backend against a real /dev/spillway (ABI 1.3 loans,
 * docs/split-placement.md section 3; the VM tests load the module, elsewhere this program
 * reports a skip).  A split's host part is lent from the pool (SPILLWAY_IOC_LEND: the pool
 * shrinks, the loan is listed under this process) and returned at free; a spilled cuMemCreate
 * is lent too and returned at its last reference; a loan the pool refuses sends the request
 * whole through the dma-buf path; a process that exits with a live split leaves no loan.
 * Budget 64 MiB, reserve 8 MiB, large from 4 MiB, arenas of 16 MiB, the fake driver's host NUMA
 * node 1; the suite loads the module with a pool of 128 MiB.
 */
#include "shim_test.h"

#include <cuda.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pool_test.h"

static int fd = -1; /* the test's own /dev/spillway, for INFO and the lists */
static CUcontext ctx;

/* Loans listed for @pid: how many, and their bytes in *@bytes (-1 when the list fails). */
static int loans_of(pid_t pid, long long *bytes)
{
	static struct spillway_buffer_info entries[256];
	struct spillway_list list = { .entries = (uintptr_t)entries, .capacity = 256 };
	int n = 0;

	*bytes = 0;
	if (ioctl(fd, SPILLWAY_IOC_LIST_LOANS, &list) != 0)
		return -1;
	for (unsigned int i = 0; i < list.count && i < list.capacity; i++) {
		if (entries[i].pid == pid) {
			n++;
			*bytes += (long long)entries[i].size;
		}
	}
	return n;
}

static struct spillway_info info(void)
{
	struct spillway_info i = { 0 };

	if (ioctl(fd, SPILLWAY_IOC_INFO, &i) != 0)
		diag("SPILLWAY_IOC_INFO: %s", strerror(errno));
	return i;
}

/* The pool grows back on the module's worker: wait (the VM is emulated) until it holds @bytes. */
static uint64_t pool_back_to(uint64_t bytes)
{
	uint64_t now = info().pool_bytes;

	for (int i = 0; i < 600 && now != bytes; i++) {
		usleep(100 * 1000);
		now = info().pool_bytes;
	}
	return now;
}

static struct spillway_info before; /* at the start, once no loan is live */

TEST(a_split_borrows_its_host_part_from_the_pool)
{
	struct spillway_info during;
	CUdeviceptr p;
	long long bytes;
	pid_t pid;
	int n;

	ok(cuMemAlloc_v2(&p, 100 * MiB) == CUDA_SUCCESS && stat_of(NULL, "splits") == 1,
	   "cuMemAlloc of 100 MiB under a 64 MiB budget with SPILLWAY_BACKEND=pool is a split");
	n = loans_of(getpid(), &bytes);
	ok(n == 1 && bytes == (long long)(44 * MiB),
	   "SPILLWAY_IOC_LIST_LOANS: one loan of its 44 MiB host part under this process (%d: %lld)",
	   n, bytes);
	during = info();
	ok(during.lent_bytes == before.lent_bytes + 44 * MiB &&
		   during.pool_bytes == before.pool_bytes - 44 * MiB,
	   "INFO: lent_bytes rose and pool_bytes fell by 44 MiB (lent %llu, pool %llu from %llu)",
	   (unsigned long long)during.lent_bytes, (unsigned long long)during.pool_bytes,
	   (unsigned long long)before.pool_bytes);
	ok(stat_of(NULL, "lent_bytes") == (long long)(44 * MiB) &&
		   stat_of("\"host_numa\"", "bytes") == (long long)(44 * MiB) &&
		   stat_of("\"pool\"", "bytes") == 0 && stat_of(NULL, "loans") == 1,
	   "the statistics: 44 MiB lent, the host part under host_numa, no dma-buf, one loan");
	ok(pool_buffer_bytes_of(fd, getpid()) == 0, "no dma-buf of this process");
	memset((void *)p, 0x6b, 100 * MiB);
	ok(filled(p, 100 * MiB, 0x6b), "one pointer: data across the VRAM/host boundary");
	ok(logged("spill 104857600 bytes on device 0: 58720256 in VRAM, 46137344 in host memory "
		  "(pool-loan, host NUMA node 1): past SPILLWAY_VRAM_LIMIT"),
	   "the info line names the backend: pool-loan");
	pid = fork();
	if (pid == 0) {
		/* The shim drops the context's records (the driver refuses the rest in a child). */
		cuCtxDestroy_v2(ctx);
		_exit(0);
	}
	ok(pid > 0 && waitpid(pid, NULL, 0) == pid && loans_of(getpid(), &bytes) == 1 &&
		   info().lent_bytes == before.lent_bytes + 44 * MiB,
	   "a forked child that destroys the context (sharing the shim's open file) leaves the "
	   "parent's loan alone");
	ok(cuMemFree_v2(p) == CUDA_SUCCESS, "cuMemFree of the split");
	ok(loans_of(getpid(), &bytes) == 0 && info().lent_bytes == before.lent_bytes,
	   "free returned the loan: none listed, lent_bytes back to %llu",
	   (unsigned long long)before.lent_bytes);
	ok(stat_of(NULL, "lent_bytes") == 0 && stat_of(NULL, "lent_peak") == (long long)(44 * MiB),
	   "the statistics: nothing lent now, 44 MiB at peak");
	ok(pool_back_to(before.pool_bytes) == before.pool_bytes, "the pool grew back to %llu bytes",
	   (unsigned long long)before.pool_bytes);
}

TEST(a_spilled_cuMemCreate_borrows_until_its_last_reference)
{
	CUmemAllocationProp prop = { .type = CU_MEM_ALLOCATION_TYPE_PINNED,
				     .location = { CU_MEM_LOCATION_TYPE_DEVICE, 0 } };
	CUmemAccessDesc access = { .location = { CU_MEM_LOCATION_TYPE_DEVICE, 0 },
				   .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE };
	CUmemGenericAllocationHandle h;
	CUdeviceptr fill, va;
	long long bytes;

	ok(cuMemAlloc_v2(&fill, 56 * MiB) == CUDA_SUCCESS && fake_vram_used(0) == 56 * MiB,
	   "56 MiB fill the budget less the reserve");
	ok(cuMemCreate(&h, 20 * MiB, &prop, 0) == CUDA_SUCCESS &&
		   stat_of(NULL, "vmm_host_numa") == 1,
	   "cuMemCreate of 20 MiB for the device goes to host NUMA memory");
	ok(loans_of(getpid(), &bytes) == 1 && bytes == (long long)(20 * MiB) &&
		   info().lent_bytes == before.lent_bytes + 20 * MiB &&
		   stat_of(NULL, "lent_bytes") == (long long)(20 * MiB),
	   "it is lent from the pool: one 20 MiB loan listed, in INFO and the statistics");
	ok(logged("spill 20971520 bytes on device 0: 0 in VRAM, 20971520 in host memory "
		  "(cuMemCreate, pool-loan, host NUMA node 1)"),
	   "the info line names the backend: pool-loan");
	ok(cuMemAddressReserve(&va, 20 * MiB, 0, 0, 0) == CUDA_SUCCESS &&
		   cuMemMap(va, 20 * MiB, 0, h, 0) == CUDA_SUCCESS &&
		   cuMemSetAccess(va, 20 * MiB, &access, 1) == CUDA_SUCCESS,
	   "mapped and granted");
	memset((void *)va, 0x2d, 20 * MiB);
	ok(filled(va, 20 * MiB, 0x2d), "the handle's memory holds data");
	ok(cuMemRelease(h) == CUDA_SUCCESS && loans_of(getpid(), &bytes) == 1,
	   "released but still mapped: the loan stays (the driver keeps the memory)");
	ok(cuMemUnmap(va, 20 * MiB) == CUDA_SUCCESS && loans_of(getpid(), &bytes) == 0 &&
		   info().lent_bytes == before.lent_bytes && stat_of(NULL, "lent_bytes") == 0,
	   "unmapped, its last reference: the loan is returned");
	ok(cuMemAddressFree(va, 20 * MiB) == CUDA_SUCCESS && cuMemFree_v2(fill) == CUDA_SUCCESS,
	   "freed");
	ok(pool_back_to(before.pool_bytes) == before.pool_bytes, "the pool grew back");
}

TEST(a_loan_larger_than_the_pool_fails_as_a_whole_spill_does)
{
	struct spillway_info after;
	CUdeviceptr p;
	long long bytes;

	ok(cuMemAlloc_v2(&p, 200 * MiB) == CUDA_ERROR_OUT_OF_MEMORY,
	   "200 MiB (144 MiB host part) from a 128 MiB pool: OUT_OF_MEMORY under "
	   "SPILLWAY_BACKEND=pool, as a whole spill that does not fit");
	ok(logged("the pool lends no 150994944 bytes (Cannot allocate memory); spilling whole"),
	   "the loan was refused with ENOMEM, then the whole spill");
	after = info();
	ok(loans_of(getpid(), &bytes) == 0 && after.lent_bytes == before.lent_bytes &&
		   after.pool_bytes == before.pool_bytes && pool_buffer_bytes_of(fd, getpid()) == 0,
	   "nothing left behind: no loan, no buffer, the pool as it was");
	ok(stat_of(NULL, "loan_refusals") == 1 && stat_of(NULL, "splits") == 1 &&
		   stat_of(NULL, "spill_bytes") == 0,
	   "the statistics: one refusal, no new split, nothing spilled");
}

TEST(in_a_fragmented_pool_a_refused_loan_spills_whole_as_a_dma_buf)
{
	struct spillway_alloc small[128], large[128];
	struct spillway_loan loan = { .size = 2 * MiB };
	long long held = 0, bytes;
	int pairs = 0, lend_rc, lend_err;
	CUdeviceptr p;

	/*
	 * Buffers take pages from chunks in use first (kmod/pool.c): a 4 KiB buffer starts each
	 * 2 MiB chunk and a buffer of the rest fills it; freeing the fillers leaves every chunk
	 * with one busy page, so no whole chunk is free and almost every page is.
	 */
	while (pairs < 128 && info().free_bytes >= 2 * MiB) {
		small[pairs] = (struct spillway_alloc){ .size = 4096 };
		large[pairs] = (struct spillway_alloc){ .size = 2 * MiB - 4096 };
		if (ioctl(fd, SPILLWAY_IOC_ALLOC, &small[pairs]) != 0)
			break;
		if (ioctl(fd, SPILLWAY_IOC_ALLOC, &large[pairs]) != 0) {
			close(small[pairs].fd);
			break;
		}
		held += 4096;
		pairs++;
	}
	for (int i = 0; i < pairs; i++)
		close(large[i].fd);
	lend_rc = ioctl(fd, SPILLWAY_IOC_LEND, &loan);
	lend_err = errno;
	if (lend_rc == 0)
		ioctl(fd, SPILLWAY_IOC_RETURN, &loan);
	ok(pairs >= 60 && lend_rc == -1 && lend_err == ENOMEM && info().free_bytes >= 100 * MiB,
	   "the pool fragmented: %d chunks hold one page each, LEND of 2 MiB -> ENOMEM (%s), "
	   "%llu bytes free",
	   pairs, lend_rc ? strerror(lend_err) : "lent", (unsigned long long)info().free_bytes);
	ok(cuMemAlloc_v2(&p, 100 * MiB) == CUDA_SUCCESS && stat_of(NULL, "splits") == 1 &&
		   stat_of("\"pool\"", "bytes") == (long long)(100 * MiB),
	   "100 MiB: the loan is refused, the request spilled whole into a pool dma-buf");
	ok(loans_of(getpid(), &bytes) == 0 &&
		   pool_buffer_bytes_of(fd, getpid()) == held + (long long)(100 * MiB),
	   "no loan; the module lists the 100 MiB buffer under this process");
	ok(logged("the pool lends no 46137344 bytes (Cannot allocate memory); spilling whole") &&
		   logged("spill 104857600 bytes on device 0: 0 in VRAM, 104857600 in host memory "
			  "(pool)"),
	   "the info lines: the refusal, then the whole spill through the pool");
	memset((void *)p, 0x71, 100 * MiB);
	ok(filled(p, 100 * MiB, 0x71), "the dma-buf holds data");
	ok(cuMemFree_v2(p) == CUDA_SUCCESS && pool_buffer_bytes_of(fd, getpid()) == held, "freed");
	for (int i = 0; i < pairs; i++)
		close(small[i].fd);
	ok(pool_buffer_bytes_of(fd, getpid()) == 0, "the fragmenting buffers are gone");
}

/*
 * The children of the last cases: fresh processes (exec'd, so their shims start anew) that print
 * what they saw for the parent to check.  "exit" splits 100 MiB and exits with the split live;
 * "auto" (SPILLWAY_BACKEND=auto) splits 100 MiB, then asks for 160 MiB, whose host part the pool
 * can not lend.
 */
static int child(const char *mode)
{
	CUdeviceptr p, q;
	long long bytes;
	int n;

	if (cuInit(0) != CUDA_SUCCESS || cuCtxCreate_v4(&ctx, NULL, 0, 0) != CUDA_SUCCESS ||
	    cuMemAlloc_v2(&p, 100 * MiB) != CUDA_SUCCESS)
		return 2;
	if (strcmp(mode, "auto") == 0 && cuMemAlloc_v2(&q, 160 * MiB) != CUDA_SUCCESS)
		return 3;
	n = loans_of(getpid(), &bytes);
	printf("loans %d %lld splits %lld host %lld pool %lld\n", n, bytes, stat_of(NULL, "splits"),
	       stat_of("\"host\"", "bytes"), stat_of("\"pool\"", "bytes"));
	return 0; /* what it allocated stays live: exit must end the loan */
}

/* Run child(@mode) with SPILLWAY_BACKEND=@backend: its first line in @out, its pid in *@pid. */
static int run_child(const char *mode, const char *backend, char *out, size_t len, pid_t *pid)
{
	char report[96];
	int pipefd[2], status = -1;
	ssize_t n = 0;

	out[0] = '\0';
	if (pipe(pipefd) != 0)
		return -1;
	/* Only "exit" writes its exit report: the last case looks for it. */
	snprintf(report, sizeof(report), "%s:%s", strcmp(mode, "exit") ? "info" : "info,stats",
		 shim_log_path);
	*pid = fork();
	if (*pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		setenv("SPILLWAY_LOG", report, 1);
		setenv("SPILLWAY_BACKEND", backend, 1);
		execl("/proc/self/exe", "t_loan", mode, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	if (*pid > 0) {
		n = read(pipefd[0], out, len - 1);
		waitpid(*pid, &status, 0);
	}
	close(pipefd[0]);
	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	return status;
}

TEST(with_backend_auto_a_refused_loan_spills_whole_into_host_memory)
{
	char out[256];
	long long bytes;
	pid_t pid;
	int status = run_child("auto", "auto", out, sizeof(out), &pid);

	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		   strcmp(out, "loans 1 46137344 splits 1 host 167772160 pool 0") == 0,
	   "SPILLWAY_BACKEND=auto: 100 MiB split with a 44 MiB loan; 160 MiB, whose 104 MiB host "
	   "part the pool can not lend, spilled whole into host memory (status %#x: %s)",
	   status, out[0] ? out : "no output");
	ok(loans_of(pid, &bytes) == 0 && pool_back_to(before.pool_bytes) == before.pool_bytes,
	   "it exited: no loan left, the pool grew back");
}

TEST(a_process_that_exits_with_a_live_split_leaves_no_loan)
{
	char out[256];
	long long bytes;
	pid_t pid;
	int status = run_child("exit", "pool", out, sizeof(out), &pid);

	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		   strcmp(out, "loans 1 46137344 splits 1 host 0 pool 0") == 0,
	   "a child split 100 MiB with a 44 MiB loan and exited without freeing (status %#x: %s)",
	   status, out[0] ? out : "no output");
	ok(loans_of(pid, &bytes) == 0 && info().lent_bytes == before.lent_bytes,
	   "no loan of it is left: the module ended it with the open file");
	ok(logged("\"lent_bytes\":46137344,\"lent_peak\":46137344"),
	   "its exit report counted the 44 MiB lent");
	ok(pool_back_to(before.pool_bytes) == before.pool_bytes, "the pool grew back");
}

int main(int argc, char **argv)
{
	struct spillway_loan probe = { .size = 2 * MiB };
	int rc;

	fd = open("/dev/spillway", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("ok 1 - pool loans # SKIP /dev/spillway is absent (the VM tests run this)\n"
		       "1..1\n");
		return 0;
	}
	if (argc > 1)
		return child(argv[1]);
	rc = ioctl(fd, SPILLWAY_IOC_LEND, &probe);
	if (!ok(rc == 0 && ioctl(fd, SPILLWAY_IOC_RETURN, &probe) == 0,
		"the module lends and takes back 2 MiB (SPILLWAY_IOC_LEND/RETURN, ABI 1.3): %s",
		rc ? strerror(errno) : "yes"))
		return done_testing();
	before = info();
	before.pool_bytes = pool_back_to(before.requested_bytes);
	shim_log_to("t_loan");
	ctx = shim_setup("SPILLWAY_BACKEND=pool", "SPILLWAY_VRAM_LIMIT=64M", "SPILLWAY_RESERVE=8M",
			 "SPILLWAY_LARGE=4M", "SPILLWAY_CHUNK=16M", "SPILLWAY_HEADROOM=16M",
			 "FAKE_CUDA_VRAM=1G", "FAKE_CUDA_NUMA_NODES=2", "FAKE_CUDA_HOST_NUMA_ID=1",
			 NULL);
	if (!ctx)
		return done_testing();
	rc = tap_run();
	shim_log_remove();
	return rc;
}
