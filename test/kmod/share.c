// SPDX-License-Identifier: GPL-2.0
/*
 * Per-cgroup shares of the pool (ABI 1.2): SET_SHARE, LIST_SHARES, charging
 * to the cgroup v2 of the process that opened /dev/spillway, limits (EDQUOT)
 * and guarantees (ENOMEM) down the hierarchy, removed cgroups, and every
 * SET_SHARE error.
 *
 * Each cgroup's device fd is opened by a forked child moved into the cgroup
 * first (its pid written to cgroup.procs); the child passes the fd back over
 * a unix socket and exits.  Buffers allocated through that fd are charged to
 * the child's cgroup, wherever the allocating process is: the opener's
 * cgroup at open() is the one charged.
 *
 * Needs pool_mb=64, no other buffers, root, and cgroup2 (mounted here on
 * /sys/fs/cgroup when it is not).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cgroup.h"
#include "kmod.h"

#define CGROOT "/sys/fs/cgroup"
#define P      CGROOT "/spillway-share" /* parent of A, B, C, D */
#define A      P "/a"
#define B      P "/b"
#define C      P "/c"
#define D      P "/d"
#define O      CGROOT "/spillway-share-other" /* P's sibling */
#define POOL   (64 * MiB)
#define PAGE   4096ULL

static int dev;
static uint64_t id_p, id_a, id_b, id_o;

static int set_share_fd(int cgfd, uint64_t id, uint64_t max, uint64_t min,
			struct spillway_share *out)
{
	struct spillway_share req = {
		.cgroup_id = id, .cgroup_fd = cgfd, .max_bytes = max, .min_bytes = min
	};
	int ret = ioctl(dev, SPILLWAY_IOC_SET_SHARE, &req);

	if (out)
		*out = req;
	return ret;
}

static int set_share(uint64_t id, uint64_t max, uint64_t min)
{
	return set_share_fd(-1, id, max, min, NULL);
}

/* An ALLOC that must fail with @want; a buffer it made anyway is freed. */
static void alloc_fails(int d, uint64_t size, int want, const char *name)
{
	int fd = alloc_buf(d, size, NULL);

	ok_errno(fd, want, name);
	if (fd >= 0)
		close(fd);
}

static struct spillway_share shares[64];
static uint32_t nshares;

static int list_shares(void)
{
	struct spillway_list req = { .entries = (uintptr_t)shares, .capacity = 64 };
	int ret;

	memset(shares, 0xa5, sizeof(shares));
	ret = ioctl(dev, SPILLWAY_IOC_LIST_SHARES, &req);
	nshares = ret ? 0 : req.count;
	return ret;
}

/* The LIST_SHARES entry of @id, or NULL when it is not listed. */
static struct spillway_share *listed(uint64_t id)
{
	if (list_shares())
		return NULL;
	for (uint32_t i = 0; i < nshares && i < 64; i++)
		if (shares[i].cgroup_id == id)
			return &shares[i];
	return NULL;
}

/* used_bytes of @id in LIST_SHARES, or -1 when it is not listed. */
static long long used_of(uint64_t id)
{
	struct spillway_share *s = listed(id);

	return s ? (long long)s->used_bytes : -1;
}

static void test_setup(void)
{
	mkdir(CGROOT, 0755);
	if (access(CGROOT "/cgroup.controllers", F_OK))
		mount("none", CGROOT, "cgroup2", 0, NULL);
	rmdir(A);
	rmdir(B);
	rmdir(C);
	rmdir(D);
	rmdir(P);
	rmdir(O);
	ok(!mkdir(P, 0755) && !mkdir(A, 0755) && !mkdir(B, 0755) && !mkdir(O, 0755),
	   "cgroups %s, its children a and b, and its sibling %s", P, O);
	id_p = cg_id(P);
	id_a = cg_id(A);
	id_b = cg_id(B);
	id_o = cg_id(O);
	diag("cgroup ids: P %" PRIu64 ", a %" PRIu64 ", b %" PRIu64 ", other %" PRIu64, id_p, id_a,
	     id_b, id_o);
	list_shares();
	ok(nshares == 0, "LIST_SHARES lists nothing before any buffer or share (%u)", nshares);
}

/* Buffers in a and b: usage, the parent's sum, LIST_BUFFERS' cgroup_id. */
static void test_charging(void)
{
	struct spillway_buffer_info e[8];
	struct spillway_list req = { .entries = (uintptr_t)e, .capacity = 8 };
	int da = open_in(A), db = open_in(B), fa, fb;
	uint64_t ida = 0, idb = 0;
	long long used;
	bool seen_a = false, seen_b = false;

	if (!ok(da >= 0 && db >= 0, "device fds opened by children in a and in b"))
		return;
	fa = alloc_buf(da, 4 * MiB, &ida);
	fb = alloc_buf(db, 2 * MiB - 100, &idb);
	ok(fa >= 0 && fb >= 0, "ALLOC 4 MiB through a's fd, 2 MiB - 100 through b's");
	used = used_of(id_a);
	ok(used == (long long)(4 * MiB), "a uses 4 MiB (%lld)", used);
	used = used_of(id_b);
	ok(used == (long long)(2 * MiB), "b uses 2 MiB, rounded up to pages (%lld)", used);
	used = used_of(id_p);
	ok(used == (long long)(6 * MiB), "the parent uses the sum, 6 MiB (%lld)", used);
	used = used_of(cg_id(CGROOT));
	ok(used == (long long)(6 * MiB), "the root cgroup (id %" PRIu64 ") uses 6 MiB too (%lld)",
	   cg_id(CGROOT), used);
	ok(used_of(id_o) == -1, "the sibling, with nothing, is not listed");
	ok(!ioctl(dev, SPILLWAY_IOC_LIST_BUFFERS, &req) && req.count == 2,
	   "LIST_BUFFERS: 2 buffers");
	for (uint32_t i = 0; i < req.count && i < 8; i++) {
		if (e[i].id == ida)
			seen_a = e[i].cgroup_id == id_a;
		if (e[i].id == idb)
			seen_b = e[i].cgroup_id == id_b;
	}
	ok(seen_a && seen_b, "LIST_BUFFERS cgroup_id is the inode number of a's and b's directory");
	close(fa);
	close(fb);
	used = used_of(id_p) + used_of(cg_id(CGROOT));
	ok(used == -2 && nshares == 0, "the buffers gone, nothing is charged or listed (%u listed)",
	   nshares);
	close(da);
	close(db);
}

/* Limits: a's own, then the parent's over b; EDQUOT at the exact page. */
static void test_max(void)
{
	int da = open_in(A), db = open_in(B), fa1, fa2, fb1, fb2, fd, ret;
	struct spillway_share out = { 0 };
	long long used;

	if (!ok(da >= 0 && db >= 0, "device fds opened in a and in b"))
		return;
	fa1 = alloc_buf(da, 4 * MiB, NULL);
	ret = set_share_fd(-1, id_a, 8 * MiB, 0, &out);
	ok(!ret && out.cgroup_id == id_a && out.used_bytes == 4 * MiB && out.max_bytes == 8 * MiB &&
		   out.cgroup_fd == -1,
	   "SET a max 8 MiB by id: returns its id and used 4 MiB (%" PRIu64 ")",
	   (uint64_t)out.used_bytes);
	fa2 = alloc_buf(da, 4 * MiB, NULL);
	ok(fa1 >= 0 && fa2 >= 0, "a allocates up to its max exactly (8 MiB)");
	alloc_fails(da, PAGE, EDQUOT, "a: one more page over its max");
	fd = alloc_buf(dev, PAGE, NULL);
	ok(fd >= 0, "a page from outside a is not a's business");
	close(fd);

	ok(!set_share(id_p, 10 * MiB, 0), "SET the parent max 10 MiB");
	fb1 = alloc_buf(db, 2 * MiB, NULL);
	ok(fb1 >= 0, "b takes the parent's last 2 MiB");
	alloc_fails(db, PAGE, EDQUOT,
		    "b, without a max of its own: one page over the parent's max");
	close(fa2);
	fb2 = alloc_buf(db, 4 * MiB, NULL);
	ok(fb2 >= 0, "once a freed 4 MiB, b takes them (the parent at 10 MiB again)");
	alloc_fails(db, PAGE, EDQUOT, "b: one page over the parent's max again");

	ok(!set_share(id_p, 0, 0), "SET the parent 0/0 removes its share");
	ok(listed(id_p) && listed(id_p)->max_bytes == 0 && used_of(id_p) == (long long)(10 * MiB),
	   "the parent stays listed, max 0, with its 10 MiB used");
	fd = alloc_buf(db, PAGE, NULL);
	ok(fd >= 0, "b allocates past the removed limit");
	close(fd);

	ret = set_share_fd(-1, id_a, 4097, 0, &out);
	ok(!ret && out.max_bytes == 8192, "SET max 4097 bytes is rounded up to 8192 (%" PRIu64 ")",
	   (uint64_t)out.max_bytes);
	alloc_fails(da, PAGE, EDQUOT, "a, using 4 MiB, over a max lowered under its usage");
	used = used_of(id_a);
	ok(used == (long long)(4 * MiB), "lowering the max took nothing away (%lld)", used);
	ok(!set_share(id_a, 0, 0) && listed(id_a) && listed(id_a)->max_bytes == 0,
	   "SET a 0/0: listed without a share while it has buffers");
	close(fa1);
	close(fb1);
	close(fb2);
	list_shares();
	ok(nshares == 0, "without shares or buffers nothing is listed (%u)", nshares);
	close(da);
	close(db);
}

/* Guarantees: a's min is kept from b and from the sibling, not from a. */
static void test_min(void)
{
	int da = open_in(A), db = open_in(B), dout = open_in(O), fo, fa, fp, fd;
	struct spillway_share *s;
	struct spillway_info info;

	if (!ok(da >= 0 && db >= 0 && dout >= 0, "device fds opened in a, b and the sibling"))
		return;
	ok(!set_share(id_a, 0, 32 * MiB), "SET a min 32 MiB (of a 64 MiB pool)");
	s = listed(id_a);
	ok(s && s->min_bytes == 32 * MiB && s->max_bytes == 0 && s->used_bytes == 0,
	   "LIST_SHARES shows a's min, no max, nothing used");
	fo = alloc_buf(dout, 32 * MiB, NULL);
	ok(fo >= 0, "the sibling takes the 32 MiB outside a's guarantee");
	alloc_fails(dout, PAGE, ENOMEM, "the sibling: one page into a's guarantee");
	alloc_fails(db, PAGE, ENOMEM, "b, a's own sibling: one page into a's guarantee");
	alloc_fails(dev, PAGE, ENOMEM, "this test's own cgroup: one page into a's guarantee");
	fa = alloc_buf(da, 32 * MiB, NULL);
	ok(fa >= 0, "a still gets its whole min, 32 MiB");
	get_info(dev, &info);
	ok(info.free_bytes == 0, "the pool is full (%llu free)",
	   (unsigned long long)info.free_bytes);
	close(fa);
	close(fo);
	fa = alloc_buf(da, 16 * MiB, NULL);
	alloc_fails(db, 32 * MiB + PAGE, ENOMEM,
		    "a using 16 of its 32 MiB: b gets no 32 MiB + a page of the 48 free");
	fd = alloc_buf(db, 32 * MiB, NULL);
	ok(fa >= 0 && fd >= 0, "b gets 32 MiB: what a's unused 16 MiB leave");
	close(fd);
	close(fa);

	ok_errno(set_share(id_o, 0, 40 * MiB), ENOSPC, "SET the sibling min 40 MiB: 72 MiB > pool");
	ok(!set_share(id_o, 0, 32 * MiB), "SET the sibling min 32 MiB: 64 MiB, the pool's size");
	ok_errno(set_share(id_b, 0, 1 * MiB), ENOSPC, "SET b min 1 MiB on top: 65 MiB > pool");
	ok_errno(set_share(id_p, 0, 33 * MiB), ENOSPC,
		 "SET the parent min 33 MiB (a's 32 inside it): 33 + 32 MiB > pool");
	ok(!set_share(id_p, 0, 32 * MiB), "SET the parent min 32 MiB: a's no longer counts apart");
	ok(!set_share(id_b, 0, 1 * MiB), "now b's min 1 MiB is inside the parent's: accepted");
	/* The sibling holds 32 MiB: its guarantee is used up. */
	fo = alloc_buf(dout, 32 * MiB, NULL);
	fp = alloc_buf(db, 32 * MiB, NULL);
	ok(fo >= 0 && fp >= 0,
	   "the sibling takes its 32 MiB, b the parent's 32 (a's nested min is not kept from b)");
	ok(!set_share(id_b, 0, 0) && !set_share(id_p, 0, 0) && !set_share(id_o, 0, 0) &&
		   !set_share(id_a, 0, 0),
	   "SET 0/0 removes every min");
	close(fp);
	close(fo);
	list_shares();
	ok(nshares == 0, "nothing listed (%u)", nshares);
	close(da);
	close(db);
	close(dout);
}

/* A removed cgroup's share goes; buffers outliving it stay charged. */
static void test_removed(void)
{
	int dd, fd1, fd2, fd, cgfd;
	uint64_t id_c, id_d;
	struct spillway_share *s;
	long long used;

	ok(!mkdir(C, 0755) && !mkdir(D, 0755), "cgroups c and d");
	id_c = cg_id(C);
	id_d = cg_id(D);
	ok(!set_share(id_c, 56 * MiB, 48 * MiB), "SET c max 56 MiB, min 48 MiB");
	alloc_fails(dev, 17 * MiB, ENOMEM,
		    "outside c, 17 MiB does not fit beside c's 48 MiB guarantee");
	cgfd = open(C, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(!rmdir(C), "rmdir c");
	fd = alloc_buf(dev, 17 * MiB, NULL);
	ok(fd >= 0, "c removed: its guarantee no longer holds back an ALLOC");
	close(fd);
	list_shares();
	ok(nshares == 0, "c removed: its share is no longer listed (%u listed)", nshares);
	ok_errno(set_share(id_c, 8 * MiB, 0), ENOENT, "SET by the id of removed c");
	ok_errno(set_share_fd(cgfd, 0, 8 * MiB, 0, NULL), ENOENT,
		 "SET by an fd still open on removed c's directory");
	close(cgfd);

	dd = open_in(D);
	ok(dd >= 0, "a device fd opened in d");
	ok(!set_share(id_d, 8 * MiB, 0), "SET d max 8 MiB");
	fd1 = alloc_buf(dd, 6 * MiB, NULL);
	ok(fd1 >= 0 && used_of(id_d) == (long long)(6 * MiB), "d allocates 6 MiB");
	ok(!cg_rmdir(D), "rmdir d (empty: its opener exited)");
	s = listed(id_d);
	ok(s && s->max_bytes == 0 && s->used_bytes == 6 * MiB,
	   "removed d is still listed with its 6 MiB, its share dropped");
	ok(used_of(id_p) == (long long)(6 * MiB), "the parent still counts d's 6 MiB");
	fd2 = alloc_buf(dd, 4 * MiB, NULL);
	used = used_of(id_d);
	ok(fd2 >= 0 && used == (long long)(10 * MiB),
	   "d's fd allocates past d's dropped max, charged to removed d (%lld)", used);
	close(dd);
	ok(used_of(id_d) == (long long)(10 * MiB),
	   "closing the device fd leaves the buffers charged");
	close(fd1);
	close(fd2);
	list_shares();
	ok(nshares == 0, "d's buffers gone: d and the parent are no longer listed (%u)", nshares);
}

static void test_list(void)
{
	struct spillway_share e[4];
	struct spillway_list req = { .entries = (uintptr_t)e, .capacity = 0 };
	uint64_t ids[2] = { id_a, id_b };
	int status, ret;

	ok(!set_share(id_a, 8 * MiB, 0) && !set_share(id_b, 8 * MiB, 0), "shares on a and b");
	ret = ioctl(dev, SPILLWAY_IOC_LIST_SHARES, &req);
	ok(!ret && req.count == 2, "capacity 0: count 2, nothing written (%u)", req.count);
	memset(e, 0x5a, sizeof(e));
	req.capacity = 1;
	ok(!ioctl(dev, SPILLWAY_IOC_LIST_SHARES, &req) && req.count == 2,
	   "capacity 1: count still 2");
	ok((e[0].cgroup_id == ids[0] || e[0].cgroup_id == ids[1]) && e[0].cgroup_fd == -1 &&
		   e[0].max_bytes == 8 * MiB && e[1].cgroup_id == 0x5a5a5a5a5a5a5a5aULL,
	   "capacity 1: one entry written (fd -1), the next untouched");
	req.capacity = SPILLWAY_LIST_MAX + 1;
	ok_errno(ioctl(dev, SPILLWAY_IOC_LIST_SHARES, &req), EINVAL, "LIST_SHARES capacity 65537");
	req.capacity = 4;
	req.reserved[1] = 1;
	ok_errno(ioctl(dev, SPILLWAY_IOC_LIST_SHARES, &req), EINVAL,
		 "LIST_SHARES reserved not zero");
	req.reserved[1] = 0;
	req.entries = 8;
	ok_errno(ioctl(dev, SPILLWAY_IOC_LIST_SHARES, &req), EFAULT,
		 "LIST_SHARES to a bad pointer");
	fflush(stdout);
	if (fork() == 0) {
		/* A group member without CAP_SYS_ADMIN may list, not set. */
		struct spillway_list r = { .entries = (uintptr_t)e, .capacity = 4 };

		if (setgid(65534) || setuid(65534))
			_exit(2);
		if (ioctl(dev, SPILLWAY_IOC_LIST_SHARES, &r) || r.count != 2)
			_exit(3);
		if (set_share(id_a, 0, 0) != -1 || errno != EPERM)
			_exit(4);
		_exit(0);
	}
	wait(&status);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "uid 65534 (no CAP_SYS_ADMIN): LIST_SHARES works, SET_SHARE gets EPERM (status %#x)",
	   status);
	ok(!set_share(id_a, 0, 0) && !set_share(id_b, 0, 0) && !list_shares() && nshares == 0,
	   "shares removed");
}

static void test_set_errors(void)
{
	struct spillway_share req;
	int tmp = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int procs = open(A "/cgroup.procs", O_RDONLY | O_CLOEXEC);
	int cga = open(A, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct spillway_share out = { 0 };
	int ret;

	ret = set_share_fd(cga, 0, 2 * MiB, MiB, &out);
	ok(!ret && out.cgroup_id == id_a && out.min_bytes == MiB && out.max_bytes == 2 * MiB,
	   "SET by an fd on a's directory: cgroup_id is a's (%" PRIu64 ")",
	   (uint64_t)out.cgroup_id);
	ok(!set_share_fd(cga, 0, 0, 0, NULL) && !listed(id_a), "SET 0/0 by fd removes it");
	ok_errno(set_share_fd(1000, 0, MiB, 0, NULL), EBADF, "SET cgroup_fd 1000 (not open)");
	ok_errno(set_share_fd(-2, 0, MiB, 0, NULL), EBADF, "SET cgroup_fd -2");
	ok_errno(set_share_fd(tmp, 0, MiB, 0, NULL), ENOTDIR, "SET cgroup_fd on /tmp");
	ok_errno(set_share_fd(procs, 0, MiB, 0, NULL), ENOTDIR,
		 "SET cgroup_fd on a's cgroup.procs file");
	ok_errno(set_share(0, MiB, 0), ENOENT, "SET cgroup_id 0");
	ok_errno(set_share(0x7fffffffffffULL, MiB, 0), ENOENT, "SET an unknown cgroup_id");
	ok_errno(set_share(id_a, MiB, 2 * MiB), EINVAL, "SET min 2 MiB above max 1 MiB");
	ok(!set_share(id_a, 0, 2 * MiB) && !set_share(id_a, 0, 0),
	   "min with max 0 (no limit) is fine");
	ret = set_share_fd(-1, id_a, ~0ULL, 0, &out);
	ok(!ret && out.max_bytes == ~0ULL - (PAGE - 1) && listed(id_a) &&
		   listed(id_a)->max_bytes == ~0ULL - (PAGE - 1) && !set_share(id_a, 0, 0),
	   "max 2^64 - 1 is kept as the largest page multiple (%#" PRIx64 ")",
	   (uint64_t)out.max_bytes);
	memset(&req, 0, sizeof(req));
	req.cgroup_fd = -1;
	req.cgroup_id = id_a;
	req.flags = 1;
	ok_errno(ioctl(dev, SPILLWAY_IOC_SET_SHARE, &req), EINVAL, "SET flags 1");
	req.flags = 0;
	req.reserved[2] = 1;
	ok_errno(ioctl(dev, SPILLWAY_IOC_SET_SHARE, &req), EINVAL, "SET reserved[2] 1");
	ok_errno(ioctl(dev, SPILLWAY_IOC_SET_SHARE, (void *)8), EFAULT, "SET from a bad pointer");
	list_shares();
	ok(nshares == 0, "no failed SET left a share (%u listed)", nshares);
	close(tmp);
	close(procs);
	close(cga);
}

#define CHURN_CGROUPS 6
#define CHURN_WORKERS 4
#define CHURN_MS      3000

/* What the workers did, in memory shared with them: buffers, EDQUOT, ENOMEM. */
static unsigned long *churn_counts;

static void churn_path(char *buf, size_t len, int i)
{
	snprintf(buf, len, P "/churn%d", i);
}

/*
 * A worker: moves itself into a random churn cgroup (made if missing),
 * opens the device there, moves back to P so that the cgroup can be
 * removed, allocates, holds the buffer a moment, frees it.  Exit status 0,
 * or the step that went wrong.
 */
static void churn_worker(unsigned int seed, double until)
{
	char cg[128], procs[160], pid[32];
	int d, fd;

	snprintf(pid, sizeof(pid), "%d", getpid());
	srand(seed);
	while (now_ms() < until) {
		churn_path(cg, sizeof(cg), rand() % CHURN_CGROUPS);
		mkdir(cg, 0755);
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
		if (write_file(procs, pid))
			continue; /* removed meanwhile */
		d = open("/dev/" SPILLWAY_DEVICE_NAME, O_RDWR | O_CLOEXEC);
		if (write_file(P "/cgroup.procs", pid))
			_exit(2);
		if (d < 0)
			_exit(3);
		fd = alloc_buf(d, (1 + rand() % 16) * 64 * 1024, NULL);
		if (fd < 0 && errno != EDQUOT && errno != ENOMEM)
			_exit(4);
		__atomic_add_fetch(&churn_counts[fd >= 0	   ? 0
						 : errno == EDQUOT ? 1
								   : 2],
				   1, __ATOMIC_RELAXED);
		close(d);
		usleep(rand() % 2000);
		if (fd >= 0)
			close(fd);
	}
	_exit(0);
}

/*
 * In one LIST_SHARES snapshot, the root cgroup and P each use exactly what
 * the churn cgroups (all of the other entries) use: every buffer is in one.
 */
static bool churn_snapshot_adds_up(void)
{
	uint64_t root = 0, parent = 0, children = 0, root_id = cg_id(CGROOT);

	if (list_shares())
		return false;
	for (uint32_t i = 0; i < nshares && i < 64; i++) {
		if (shares[i].cgroup_id == root_id)
			root = shares[i].used_bytes;
		else if (shares[i].cgroup_id == id_p)
			parent = shares[i].used_bytes;
		else
			children += shares[i].used_bytes;
	}
	return root == parent && parent == children;
}

/*
 * Workers open, allocate and free in cgroups that this process meanwhile
 * gives shares, lists and removes: every errno is one the header documents,
 * every snapshot adds up, and afterwards nothing is left.
 */
static void test_churn(void)
{
	unsigned long sets = 0, set_bad = 0, lists = 0, list_bad = 0, rmdirs = 0;
	int status, failed = 0, ret, i;
	pid_t workers[CHURN_WORKERS];
	double until = now_ms() + CHURN_MS;
	struct spillway_info info;
	uint64_t max, min;
	char cg[128];

	churn_counts = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!ok(churn_counts != MAP_FAILED, "shared counters for the churn"))
		return;
	fflush(stdout);
	for (i = 0; i < CHURN_WORKERS; i++) {
		workers[i] = fork();
		if (workers[i] == 0)
			churn_worker(i + 1, until);
	}
	srand(42);
	while (now_ms() < until) {
		churn_path(cg, sizeof(cg), rand() % CHURN_CGROUPS);
		switch (rand() % 4) {
		case 0:
			max = (uint64_t)(rand() % 5) * MiB;
			min = max ? (uint64_t)rand() % (max + 1) : (uint64_t)(rand() % 3) * MiB;
			ret = set_share(cg_id(cg), max, min);
			sets++;
			/* ENOENT: the cgroup is gone (id 0 when stat failed). */
			if (ret && errno != ENOENT)
				set_bad++;
			break;
		case 1:
			if (!rmdir(cg))
				rmdirs++;
			break;
		case 2:
			lists++;
			if (!churn_snapshot_adds_up())
				list_bad++;
			break;
		default:
			usleep(500);
		}
	}
	for (i = 0; i < CHURN_WORKERS; i++) {
		waitpid(workers[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	}
	ok(!failed && churn_counts[0],
	   "%d workers opened, allocated and freed in churning cgroups (%d failed): %lu buffers,"
	   " %lu EDQUOT, %lu ENOMEM",
	   CHURN_WORKERS, failed, churn_counts[0], churn_counts[1], churn_counts[2]);
	ok(sets && !set_bad, "%lu SET_SHARE meanwhile, each 0 or ENOENT (%lu not)", sets, set_bad);
	ok(lists && !list_bad && rmdirs,
	   "%lu LIST_SHARES snapshots: root = parent = the sum of its children (%lu not); %lu rmdirs",
	   lists, list_bad, rmdirs);
	for (i = 0; i < CHURN_CGROUPS; i++) {
		churn_path(cg, sizeof(cg), i);
		set_share(cg_id(cg), 0, 0);
		cg_rmdir(cg);
	}
	list_shares();
	get_info(dev, &info);
	ok(nshares == 0 && info.used_bytes == 0 && info.buffers == 0,
	   "after the churn nothing is listed (%u) or used (%llu bytes, %llu buffers)", nshares,
	   (unsigned long long)info.used_bytes, (unsigned long long)info.buffers);
	munmap(churn_counts, 4096);
}

static void test_done(void)
{
	struct spillway_info info;

	get_info(dev, &info);
	ok(info.used_bytes == 0 && info.buffers == 0 && info.free_bytes == POOL &&
		   info.pool_bytes == POOL,
	   "the pool is all free again (%llu of %llu free, %llu buffers)",
	   (unsigned long long)info.free_bytes, (unsigned long long)info.pool_bytes,
	   (unsigned long long)info.buffers);
	ok(!cg_rmdir(A) && !cg_rmdir(B) && !cg_rmdir(P) && !cg_rmdir(O), "cgroups removed");
	list_shares();
	ok(nshares == 0, "LIST_SHARES lists nothing at the end (%u)", nshares);
}

int main(void)
{
	dev = open_dev();
	test_setup();
	test_charging();
	test_max();
	test_min();
	test_removed();
	test_list();
	test_set_errors();
	test_churn();
	test_done();
	close(dev);
	return tap_exit();
}
