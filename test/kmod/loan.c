// SPDX-License-Identifier: GPL-2.0
/*
 * The pool lends capacity (ABI 1.3, docs/split-placement.md section 3): a
 * loan shrinks the pool by whole chunks and MemAvailable rises by as much;
 * RETURN, close and a killed holder grow it back; bad arguments, the user
 * limit, a short or fragmented pool, the critical level and foreign or
 * double returns get their errors; LIST_LOANS shows loans with the caller's
 * pid; pressure never releases lent capacity a second time.
 * Needs the module loaded with pool_mb=128 user_limit_mb=96 watchdog_ms=100
 * regrow_ms=500.
 */
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kmod.h"

#define POOL (128 * MiB)

static int lend(int dev, uint64_t size, struct spillway_loan *out)
{
	struct spillway_loan req = { .size = size };
	int ret = ioctl(dev, SPILLWAY_IOC_LEND, &req);

	if (out)
		*out = req;
	return ret;
}

static int give_back(int dev, uint64_t id)
{
	struct spillway_loan req = { .id = id };

	return ioctl(dev, SPILLWAY_IOC_RETURN, &req);
}

static uint64_t lent_bytes(int dev)
{
	struct spillway_info info;

	return get_info(dev, &info) ? ~0ULL : info.lent_bytes;
}

/* Waits up to 20 s for the pool to hold @bytes; returns whether it did. */
static int wait_pool(int dev, uint64_t bytes)
{
	struct spillway_info info;

	for (int i = 0; i < 200; i++) {
		if (get_info(dev, &info) == 0 && info.pool_bytes == bytes)
			return 1;
		usleep(100000);
	}
	diag("pool_bytes %llu, waited for %llu", (unsigned long long)info.pool_bytes,
	     (unsigned long long)bytes);
	return 0;
}

/*
 * MemAvailable plus the per-cpu free lists, settled (test/include/meminfo.sh,
 * which run-tests.sh uses for the pool's own figure), KiB; 0 on error.
 */
static long long mem_settled_kb(void)
{
	char exe[512], cmd[1200];
	long long kb = 0;
	ssize_t n;
	FILE *p;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = 0;
	*strrchr(exe, '/') = 0;
	snprintf(cmd, sizeof(cmd), ". '%s/../../include/meminfo.sh' && mem_available_settled_kb",
		 exe);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	if (fscanf(p, "%lld", &kb) != 1)
		kb = 0;
	pclose(p);
	return kb;
}

static uint32_t list_loans(int dev, struct spillway_buffer_info *entries, uint32_t capacity)
{
	struct spillway_list req = { .entries = (uintptr_t)entries, .capacity = capacity };

	if (ioctl(dev, SPILLWAY_IOC_LIST_LOANS, &req))
		return ~0U;
	return req.count;
}

static void test_lend_and_return(int dev)
{
	struct spillway_buffer_info entry;
	struct spillway_loan loan;
	struct spillway_info info;
	long long before, during, after;
	uint32_t n;

	before = mem_settled_kb();
	if (!ok(lend(dev, 47 * MiB + 1, &loan) == 0, "LEND 47 MiB + 1 byte"))
		return;
	ok(loan.id != 0 && loan.size == 48 * MiB,
	   "LEND rounds up to 2 MiB chunks (id %llu, size %llu)", (unsigned long long)loan.id,
	   (unsigned long long)loan.size);
	ok(get_info(dev, &info) == 0 && info.pool_bytes == POOL - 48 * MiB &&
		   info.lent_bytes == 48 * MiB && info.requested_bytes == POOL &&
		   info.released_bytes == 0,
	   "INFO: pool 80 MiB, lent 48 MiB, requested 128 MiB, nothing released");
	ok(sysfs_num("lent_bytes") == (long long)(48 * MiB) &&
		   sysfs_num("pool_bytes") == (long long)(POOL - 48 * MiB),
	   "sysfs lent_bytes and pool_bytes");
	during = mem_settled_kb();
	ok(before && during - before > 48 * 1024 * 9 / 10 && during - before < 48 * 1024 * 11 / 10,
	   "MemAvailable rose by the loan within 10 %% (%lld KiB for 49152)", during - before);

	memset(&entry, 0, sizeof(entry));
	n = list_loans(dev, &entry, 1);
	ok(n == 1 && entry.id == loan.id && entry.size == 48 * MiB && entry.pid == getpid() &&
		   entry.uid == 0 && entry.cgroup_id != 0,
	   "LIST_LOANS: the loan with its size, this pid, uid 0, a cgroup (pid %d)", entry.pid);
	ok(list_loans(dev, NULL, 0) == 1, "LIST_LOANS with capacity 0 counts the loan");

	ok(give_back(dev, loan.id) == 0, "RETURN");
	ok(lent_bytes(dev) == 0, "lent_bytes 0 at once");
	ok(wait_pool(dev, POOL), "the worker grew the pool back to 128 MiB");
	after = mem_settled_kb();
	ok(after && during - after > 48 * 1024 * 9 / 10 && during - after < 48 * 1024 * 11 / 10,
	   "MemAvailable fell back by the loan within 10 %% (%lld KiB)", during - after);
	ok_errno(give_back(dev, loan.id), EINVAL, "a second RETURN of the loan");
	ok(list_loans(dev, NULL, 0) == 0, "LIST_LOANS empty");
}

static void test_bad_args(int dev)
{
	struct spillway_loan req;
	uint64_t big = UINT64_MAX - (2 * MiB - 1) + 1;

	ok_errno(lend(dev, 0, NULL), EINVAL, "LEND size 0");
	req = (struct spillway_loan){ .size = MiB, .flags = 1 };
	ok_errno(ioctl(dev, SPILLWAY_IOC_LEND, &req), EINVAL, "LEND flags 1");
	req = (struct spillway_loan){ .size = MiB, .reserved0 = 1 };
	ok_errno(ioctl(dev, SPILLWAY_IOC_LEND, &req), EINVAL, "LEND reserved0 1");
	req = (struct spillway_loan){ .size = MiB, .reserved[1] = 1 };
	ok_errno(ioctl(dev, SPILLWAY_IOC_LEND, &req), EINVAL, "LEND reserved[1] 1");
	ok_errno(lend(dev, UINT64_MAX, NULL), EINVAL, "LEND size 2^64 - 1 (rounding wraps)");
	ok_errno(lend(dev, big, NULL), EINVAL, "LEND the first size whose rounding wraps");
	/* Checked against the user limit, not wrapped to a small size. */
	ok_errno(lend(dev, big - 1, NULL), EDQUOT, "LEND the last size that rounds");
	ok_errno(give_back(dev, 0), EINVAL, "RETURN id 0");
	ok_errno(give_back(dev, 123456789), EINVAL, "RETURN an id never lent");
	req = (struct spillway_loan){ .flags = 1 };
	ok_errno(ioctl(dev, SPILLWAY_IOC_RETURN, &req), EINVAL, "RETURN flags 1");
	ok_errno(ioctl(dev, _IOW(SPILLWAY_IOC_MAGIC, 0x08, struct spillway_loan), &req), EINVAL,
		 "LEND's number with RETURN's direction");
	ok(sysfs_num("pool_bytes") == (long long)POOL && lent_bytes(dev) == 0,
	   "the refused calls changed nothing");

	/* A LEND whose reply can not be written: the caller never learns the id. */
	struct spillway_loan *ro =
		mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (ro != MAP_FAILED) {
		*ro = (struct spillway_loan){ .size = 2 * MiB };
		mprotect(ro, 4096, PROT_READ);
		ok_errno(ioctl(dev, SPILLWAY_IOC_LEND, ro), EFAULT, "LEND from a read-only page");
		ok(lent_bytes(dev) == 0 && list_loans(dev, NULL, 0) == 0,
		   "and the loan it made was returned");
		ok(wait_pool(dev, POOL), "the pool grew back");
		munmap(ro, 4096);
	}
}

static void test_user_limit(int dev)
{
	struct spillway_loan a;
	int buf;

	if (!ok(lend(dev, 80 * MiB, &a) == 0, "LEND 80 MiB"))
		return;
	buf = alloc_buf(dev, 16 * MiB, NULL);
	ok(buf >= 0, "ALLOC 16 MiB: 96 MiB with the loan, at the user limit");
	ok_errno(lend(dev, 4096, NULL), EDQUOT, "LEND one more chunk over the user limit");
	ok_errno(alloc_buf(dev, 4096, NULL), EDQUOT, "ALLOC one page over the limit: loans count");
	if (buf >= 0)
		close(buf);
	ok(give_back(dev, a.id) == 0, "RETURN the 80 MiB");
	ok(wait_pool(dev, POOL), "grown back");
}

static void test_short_pool(int dev)
{
	struct spillway_resize rs = { .pool_bytes = 8 * MiB };
	struct spillway_info info;
	struct spillway_loan loan;
	int q, r, s, t;

	ok(ioctl(dev, SPILLWAY_IOC_RESIZE, &rs) == 0 && rs.result_bytes == 8 * MiB,
	   "RESIZE to 8 MiB: four chunks");
	/* 1 MiB, then three 2 MiB buffers each across two chunks. */
	q = alloc_buf(dev, MiB, NULL);
	r = alloc_buf(dev, 2 * MiB, NULL);
	s = alloc_buf(dev, 2 * MiB, NULL);
	t = alloc_buf(dev, 2 * MiB, NULL);
	ok(q >= 0 && r >= 0 && s >= 0 && t >= 0, "four buffers, 7 MiB");
	close(r);
	close(s);
	memset(&info, 0, sizeof(info));
	get_info(dev, &info);
	ok(info.free_bytes == 5 * MiB, "5 MiB free (%llu)", (unsigned long long)info.free_bytes);
	ok_errno(lend(dev, 4 * MiB, NULL), ENOMEM, "LEND 4 MiB with 5 MiB free in one whole chunk");
	ok(get_info(dev, &info) == 0 && info.pool_bytes == 8 * MiB && info.lent_bytes == 0,
	   "the refused LEND freed nothing");
	ok(lend(dev, 2 * MiB, &loan) == 0 && get_info(dev, &info) == 0 &&
		   info.pool_bytes == 6 * MiB && info.free_bytes == 3 * MiB,
	   "LEND 2 MiB takes the whole free chunk; the buffers stay");
	ok_errno(lend(dev, 2 * MiB, NULL), ENOMEM, "LEND 2 MiB more: no whole free chunk left");
	ok_errno(lend(dev, 10 * MiB, NULL), ENOMEM, "LEND more than the pool");
	close(q);
	close(t);
	/* A resize counts the loan as part of the request. */
	rs.pool_bytes = 16 * MiB;
	ok(ioctl(dev, SPILLWAY_IOC_RESIZE, &rs) == 0 && rs.result_bytes == 14 * MiB &&
		   lent_bytes(dev) == 2 * MiB,
	   "RESIZE to 16 MiB with 2 MiB lent: the pool holds 14 MiB (%llu)",
	   (unsigned long long)rs.result_bytes);
	ok(give_back(dev, loan.id) == 0 && wait_pool(dev, 16 * MiB), "RETURN: back to 16 MiB");
	rs.pool_bytes = POOL;
	ok(ioctl(dev, SPILLWAY_IOC_RESIZE, &rs) == 0 && rs.result_bytes == POOL,
	   "RESIZE back to 128 MiB");
}

/* Critical: LEND is refused, and the release leaves lent capacity alone. */
static void test_pressure(int dev)
{
	struct spillway_watermarks high = { .warn = 1ULL << 50, .critical = 1ULL << 50 };
	struct spillway_watermarks marks;
	struct spillway_info info, after;
	struct spillway_loan loan;

	if (!ok(get_info(dev, &info) == 0 && lend(dev, 16 * MiB, &loan) == 0, "LEND 16 MiB"))
		return;
	marks = (struct spillway_watermarks){ .warn = info.watermark_warn,
					      .critical = info.watermark_critical };
	ok(sysfs_write("pool_floor_mb", "32") == 0, "pool floor 32 MiB");
	ok(ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &high) == 0 && get_info(dev, &after) == 0 &&
		   after.level == SPILLWAY_LEVEL_CRITICAL,
	   "marks above MemAvailable: critical");
	ok(after.pool_bytes == 32 * MiB && after.lent_bytes == 16 * MiB &&
		   after.released_bytes == info.released_bytes + (POOL - 48 * MiB),
	   "the release went down to the floor and left the loan alone (released %llu)",
	   (unsigned long long)(after.released_bytes - info.released_bytes));
	ok_errno(lend(dev, 2 * MiB, NULL), ENOMEM, "LEND at the critical level");
	ok(ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &marks) == 0, "marks back");
	ok(wait_pool(dev, POOL - 16 * MiB), "regrow stops at the request less the loan: 112 MiB");
	ok(get_info(dev, &after) == 0 && after.lent_bytes == 16 * MiB &&
		   after.requested_bytes == POOL,
	   "the loan is still 16 MiB of the 128 MiB requested");
	ok(give_back(dev, loan.id) == 0 && wait_pool(dev, POOL), "RETURN: back to 128 MiB");
	sysfs_write("pool_floor_mb", "0");
}

static void test_foreign_and_close(int dev)
{
	struct spillway_loan loan, other;
	int dev2 = open_dev(), status;
	pid_t pid;

	if (!ok(lend(dev, 8 * MiB, &loan) == 0, "LEND 8 MiB"))
		return;
	ok_errno(give_back(dev2, loan.id), EINVAL, "RETURN through another open file");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int own;

		/* nobody, with a file of its own, sees no loan of root's */
		chmod("/dev/spillway", 0666);
		if (setgroups(0, NULL) || setresuid(65534, 65534, 65534))
			_exit(2);
		own = open("/dev/spillway", O_RDWR);
		ok(own >= 0 && list_loans(own, NULL, 0) == 0,
		   "uid 65534 lists none of root's loans");
		ok_errno(give_back(own, loan.id), EINVAL, "uid 65534 RETURNs root's loan");
		_exit(tap_exit());
	}
	waitpid(pid, &status, 0);
	chmod("/dev/spillway", 0660);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tap_failures++;
	ok(lend(dev2, 16 * MiB, &other) == 0 && list_loans(dev, NULL, 0) == 2 &&
		   lent_bytes(dev) == 24 * MiB,
	   "a second file lends 16 MiB; root lists both loans");
	close(dev2);
	ok(lent_bytes(dev) == 8 * MiB && list_loans(dev, NULL, 0) == 1,
	   "close returned the second file's loan only");
	ok(wait_pool(dev, POOL - 8 * MiB), "and the pool grew back by it");
	ok(give_back(dev, loan.id) == 0 && wait_pool(dev, POOL), "RETURN the first");
}

static void test_killed_holder(int dev)
{
	struct spillway_buffer_info entries[4];
	int pipefd[2], status;
	uint32_t n;
	char c = 0;
	pid_t pid;

	if (pipe(pipefd))
		return;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int own = open("/dev/spillway", O_RDWR);

		if (own < 0 || lend(own, 8 * MiB, NULL) || lend(own, 8 * MiB, NULL))
			_exit(1);
		if (write(pipefd[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	if (!ok(read(pipefd[0], &c, 1) == 1, "a child holds two loans of 8 MiB")) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return;
	}
	memset(entries, 0, sizeof(entries));
	n = list_loans(dev, entries, 4);
	ok(n == 2 && entries[0].pid == pid && entries[1].pid == pid && entries[0].size == 8 * MiB &&
		   entries[0].id != entries[1].id,
	   "LIST_LOANS shows both with the child's pid %d (%u entries)", pid, n);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(pipefd[0]);
	ok(WIFSIGNALED(status) && lent_bytes(dev) == 0 && list_loans(dev, NULL, 0) == 0,
	   "SIGKILL: the loans ended with the process");
	ok(wait_pool(dev, POOL), "the pool grew back to 128 MiB");
}

int main(void)
{
	int dev = open_dev();

	test_lend_and_return(dev);
	test_bad_args(dev);
	test_user_limit(dev);
	test_short_pool(dev);
	test_pressure(dev);
	test_foreign_and_close(dev);
	test_killed_holder(dev);
	close(dev);
	return tap_exit();
}
