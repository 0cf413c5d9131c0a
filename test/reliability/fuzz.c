// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz: random and structure-aware calls into /dev/spillway and its dma-bufs,
 * each result checked against what kmod/include/uapi/spillway.h documents.
 *
 *   fuzz [-n OPS] [-t THREADS] [-T OPS_PER_THREAD] [-s SEED] [-w WATCHDOG_MS]
 *        [-f FLOOR_MB] [-u USER_LIMIT_MB]
 *
 * Phase 1 runs OPS operations on one thread and checks the pool's accounting
 * (INFO, LIST_BUFFERS, every buffer's contents) exactly after each one.
 * Phase 2 runs THREADS threads at once with the same generator, where only
 * the errno sets and each thread's own data can be checked.  At the end every
 * buffer is closed and unmapped, the watermarks and pool size are restored,
 * and the pool must be back at its baseline.  The seed is printed first; the
 * same seed repeats phase 1 call for call.
 *
 * Runs as root in a test VM with the module loaded.  The parameters given
 * with -w, -f and -u must be those the module was loaded with.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/dma-buf.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common.h"

#define MAX_BUFS    40
#define MAX_MAPS    4
#define ANON_PAGES  16
#define MAX_REPORTS 40

/* A set of expected results: bit 0 = success, bit N = errno N. */
typedef unsigned __int128 eset;
#define E(x) ((eset)1 << (x))
#define E_OK E(0)

struct mapping {
	char *addr;
	uint64_t len; /* bytes, page multiple */
	uint64_t off; /* offset into the buffer, bytes */
	int prot;
};

struct buf {
	int fd; /* -1 once closed; the buffer lives on while mapped */
	uint64_t id;
	uint64_t size;	/* page-rounded */
	uint64_t *tags; /* per page: 0 = must read zero, else the value written */
	struct mapping maps[MAX_MAPS];
	int nmaps;
};

enum op {
	OP_ALLOC,
	OP_CLOSE,
	OP_MMAP,
	OP_MUNMAP,
	OP_TOUCH,
	OP_MADVISE,
	OP_MREMAP,
	OP_PIN,
	OP_INFO,
	OP_VERSION,
	OP_LIST,
	OP_RESIZE,
	OP_WATERMARKS,
	OP_READ,
	OP_BAD_FD,
	OP_BAD_CMD,
	OP_BAD_PTR,
	OP_DMABUF_IOCTL,
	OP_MMAP_DEV,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"alloc",    "close",   "mmap",	  "munmap",	  "touch",    "madvise",    "mremap",
	"test_pin", "info",    "version", "list",	  "resize",   "watermarks", "read",
	"bad_fd",   "bad_cmd", "bad_ptr", "dmabuf_ioctl", "mmap_dev",
};

/* Relative frequencies. */
static const unsigned int op_weight[OP_COUNT] = {
	[OP_ALLOC] = 16,     [OP_CLOSE] = 9,	    [OP_MMAP] = 13,    [OP_MUNMAP] = 7,
	[OP_TOUCH] = 6,	     [OP_MADVISE] = 3,	    [OP_MREMAP] = 3,   [OP_PIN] = 8,
	[OP_INFO] = 4,	     [OP_VERSION] = 2,	    [OP_LIST] = 5,     [OP_RESIZE] = 2,
	[OP_WATERMARKS] = 3, [OP_READ] = 4,	    [OP_BAD_FD] = 4,   [OP_BAD_CMD] = 7,
	[OP_BAD_PTR] = 7,    [OP_DMABUF_IOCTL] = 4, [OP_MMAP_DEV] = 1,
};

struct ctx {
	struct rng rng;
	int tid;
	bool exact;	 /* alone: accounting must match the model exactly */
	bool may_resize; /* only one thread changes the pool size and watermarks */
	int dev, dev_nb;
	char *anon;    /* ANON_PAGES read-write pages, then one PROT_NONE page */
	char *ro_page; /* PROT_READ page; structs are written into it by mprotect */
	struct buf bufs[MAX_BUFS];
	int nbufs;
	uint64_t op_index, quota;
	uint64_t ops, syscalls, ioctls, mismatches;
	uint64_t per_op[OP_COUNT];
	uint64_t alloc_ok, alloc_enomem, alloc_einval, pin_ok, events_read;
	uint64_t last_seq;
};

/* Set once before any thread starts. */
static struct {
	uint64_t seed;
	uint64_t base_pool;
	uint64_t pool_min, pool_max; /* what resizes stay within */
	uint64_t floor_bytes, user_limit_bytes;
	uint32_t watchdog_ms;
	bool test_ioctls;
	uint64_t wm_warn0, wm_crit0;
	char *guard; /* a read-write page followed by a PROT_NONE page */
	char *none_page;
	char *unmapped; /* far from anything mmap(NULL, ...) hands out */
	int null_fd, pipe_r, pipe_w, memfd;
	int closed_fd;	    /* a number that is not an open fd */
	uint64_t total_ram; /* bytes */
	pthread_mutex_t report_lock;
	int reports;
	uint64_t model_pool; /* exact phase: the pool's size as last resized */
	uint64_t cgroup_id;  /* this process's cgroup v2, charged for its buffers; 0: unknown */
} g = { .report_lock = PTHREAD_MUTEX_INITIALIZER };

static void report(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	c->mismatches++;
	pthread_mutex_lock(&g.report_lock);
	if (g.reports++ < MAX_REPORTS) {
		printf("# MISMATCH thread %d op %" PRIu64 " (%s): ", c->tid, c->op_index,
		       c->exact ? "phase 1" : "phase 2");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
		fflush(stdout);
	}
	pthread_mutex_unlock(&g.report_lock);
}

static void eset_str(eset s, char *out, size_t n)
{
	size_t used = 0;

	out[0] = 0;
	for (int e = 0; e < 128 && used < n; e++)
		if (s & E(e))
			used += snprintf(out + used, n - used, "%s%s", used ? "|" : "", errname(e));
}

/* Checks a result against the set; returns the result. */
static int expect(struct ctx *c, int got, eset allowed, const char *what)
{
	char want[128];

	if (got >= 0 && got < 128 && (allowed & E(got)))
		return got;
	eset_str(allowed, want, sizeof(want));
	report(c, "%s: got %s, expected %s", what, errname(got), want);
	return got;
}

static int do_ioctl(struct ctx *c, int fd, unsigned long cmd, void *arg)
{
	c->syscalls++;
	c->ioctls++;
	return spw_ioctl(fd, cmd, arg);
}

/* --- pointers that no copy_{from,to}_user may accept --- */

static void *bad_pointer(struct ctx *c, size_t size)
{
	switch (rng_below(&c->rng, 8)) {
	case 0:
		return NULL;
	case 1:
		return g.unmapped;
	case 2:
		return g.none_page;
	case 3:
		return KERNEL_PTR;
	case 4:
		return KTEXT_PTR;
	case 5:
		return NONCANON_PTR;
	case 6:
		return g.guard + PAGE - size / 2; /* straddles into PROT_NONE */
	default:
		return (void *)(uintptr_t)(1 + rng_below(&c->rng, PAGE - 1));
	}
}

/* Copies a struct into the read-only page: the kernel can read it but not write back. */
static void *in_ro_page(struct ctx *c, const void *src, size_t size)
{
	mprotect(c->ro_page, PAGE, PROT_READ | PROT_WRITE);
	memcpy(c->ro_page, src, size);
	mprotect(c->ro_page, PAGE, PROT_READ);
	return c->ro_page;
}

/* --- the model of this thread's buffers --- */

static uint64_t model_used(struct ctx *c)
{
	uint64_t sum = 0;

	for (int i = 0; i < c->nbufs; i++)
		sum += c->bufs[i].size;
	return sum;
}

static void forget_if_dead(struct ctx *c, int i)
{
	struct buf *b = &c->bufs[i];

	if (b->fd >= 0 || b->nmaps > 0)
		return;
	free(b->tags);
	c->bufs[i] = c->bufs[--c->nbufs];
}

static struct buf *pick_buf(struct ctx *c, bool with_fd)
{
	int cand[MAX_BUFS], n = 0;

	for (int i = 0; i < c->nbufs; i++)
		if (!with_fd || c->bufs[i].fd >= 0)
			cand[n++] = i;
	return n ? &c->bufs[cand[rng_below(&c->rng, n)]] : NULL;
}

static struct mapping *pick_map(struct ctx *c, struct buf **owner)
{
	int nb = 0, cand[MAX_BUFS];

	for (int i = 0; i < c->nbufs; i++)
		if (c->bufs[i].nmaps)
			cand[nb++] = i;
	if (!nb)
		return NULL;
	*owner = &c->bufs[cand[rng_below(&c->rng, nb)]];
	return &(*owner)->maps[rng_below(&c->rng, (*owner)->nmaps)];
}

/* Exact phase: INFO must agree with the model. */
static void check_accounting(struct ctx *c, const char *after)
{
	struct spillway_info info;
	int err = spw_info(c->dev, &info);

	c->syscalls++;
	c->ioctls++;
	if (err) {
		report(c, "INFO after %s: %s", after, errname(err));
		return;
	}
	if (info.used_bytes != model_used(c) || info.buffers != (uint64_t)c->nbufs ||
	    info.pool_bytes != g.model_pool || info.used_bytes + info.free_bytes != info.pool_bytes)
		report(c,
		       "after %s: INFO pool %" PRIu64 " used %" PRIu64 " free %" PRIu64
		       " buffers %" PRIu64 "; expected pool %" PRIu64 " used %" PRIu64
		       " buffers %d",
		       after, (uint64_t)info.pool_bytes, (uint64_t)info.used_bytes,
		       (uint64_t)info.free_bytes, (uint64_t)info.buffers, g.model_pool,
		       model_used(c), c->nbufs);
}

/* --- contents: the first and last word of a page carry its tag --- */

static void verify_pages(struct ctx *c, struct buf *b, struct mapping *m, const char *what)
{
	uint64_t pages = m->len / PAGE, n = pages < 12 ? pages : 12;

	if (!(m->prot & PROT_READ))
		return;
	for (uint64_t k = 0; k < n; k++) {
		uint64_t p = k < 2 ? k * (pages - 1) : rng_below(&c->rng, pages);
		uint64_t *w = (uint64_t *)(m->addr + p * PAGE);
		uint64_t want = b->tags[m->off / PAGE + p];
		uint64_t mid = want ? w[1] : w[PAGE / 16];

		if (w[0] != want || w[PAGE / 8 - 1] != want || (!want && mid)) {
			report(c,
			       "%s: buffer %" PRIu64 " page %" PRIu64 " holds %#" PRIx64
			       "/%#" PRIx64 ", expected %#" PRIx64 " (%s)",
			       what, b->id, m->off / PAGE + p, w[0], w[PAGE / 8 - 1], want,
			       want ? "data lost" : "not zeroed");
			return;
		}
	}
}

static void write_pages(struct ctx *c, struct buf *b, struct mapping *m)
{
	uint64_t pages = m->len / PAGE, n = pages < 8 ? pages : 8;

	if (!(m->prot & PROT_WRITE) || !(m->prot & PROT_READ))
		return;
	for (uint64_t k = 0; k < n; k++) {
		uint64_t p = rng_below(&c->rng, pages);
		uint64_t tag = rng_next(&c->rng) | 1;
		uint64_t *w = (uint64_t *)(m->addr + p * PAGE);

		w[0] = tag;
		w[PAGE / 8 - 1] = tag;
		b->tags[m->off / PAGE + p] = tag;
	}
}

/* --- operations --- */

static uint64_t alloc_size(struct ctx *c, uint64_t free_bytes, uint64_t pool)
{
	switch (rng_below(&c->rng, 40)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return PAGE - 1;
	case 3:
		return PAGE + 1;
	case 4:
		return free_bytes;
	case 5:
		return free_bytes + 1;
	case 6:
		return free_bytes ? free_bytes - PAGE + 1 : 1;
	case 7:
		return pool;
	case 8:
		return pool + 1;
	case 9:
		return UINT64_MAX;
	case 10:
		return UINT64_MAX - PAGE + 2; /* rounds up past zero */
	case 11:
		return 1ULL << 63;
	case 12:
		return rng_next(&c->rng);
	case 13:
		return 1ULL << (32 + rng_below(&c->rng, 20));
	case 14:
	case 15:
	case 16:
		return 1 + rng_below(&c->rng, 4 * MIB);
	default:
		return 1 + rng_below(&c->rng, 64 * 1024);
	}
}

static void op_alloc(struct ctx *c)
{
	struct spillway_alloc a = { 0 };
	struct spillway_info info;
	int bad_args = 0, err, fd_before, variant;
	eset want;
	void *arg = &a;

	if (c->nbufs >= MAX_BUFS)
		return;
	spw_info(c->dev, &info);
	c->syscalls++;
	a.size = alloc_size(c, info.free_bytes, info.pool_bytes);
	if (rng_chance(&c->rng, 4)) {
		a.flags = 1U << rng_below(&c->rng, 32);
		bad_args = 1;
	}
	if (rng_chance(&c->rng, 4)) {
		a.reserved[rng_below(&c->rng, 2)] = rng_next(&c->rng) | 1;
		bad_args = 1;
	}
	if (rng_chance(&c->rng, 10)) { /* out fields hold garbage on input: must be ignored */
		a.fd = (int32_t)rng_next(&c->rng);
		a.id = rng_next(&c->rng);
	}
	if (bad_args || a.size == 0 || a.size > g.pool_max)
		want = E(EINVAL);
	else if (c->exact && a.size > info.pool_bytes && a.size > info.requested_bytes)
		want = E(EINVAL);
	else if (c->exact)
		want = round_page(a.size) <= info.free_bytes ? E_OK : E(ENOMEM);
	else if (a.size > g.pool_min)
		want = E_OK | E(ENOMEM) | E(EINVAL);
	else
		want = E_OK | E(ENOMEM);

	variant = rng_below(&c->rng, 20);
	if (variant == 0) {
		arg = bad_pointer(c, sizeof(a));
		want = E(EFAULT);
	} else if (variant == 1) {
		/* read works, the write-back of fd and id fails: nothing may leak */
		arg = in_ro_page(c, &a, sizeof(a));
		if (want & E_OK)
			want = (want & ~E_OK) | E(EFAULT);
	}
	fd_before = lowest_free_fd();
	err = do_ioctl(c, c->dev, SPILLWAY_IOC_ALLOC, arg);
	expect(c, err, want, "ALLOC");
	if (err) {
		if (err == ENOMEM)
			c->alloc_enomem++;
		else if (err == EINVAL)
			c->alloc_einval++;
		if (c->exact && lowest_free_fd() != fd_before)
			report(c, "ALLOC failed with %s but an fd appeared", errname(err));
		if (c->exact)
			check_accounting(c, "failed ALLOC");
		return;
	}
	if (arg != &a) {
		report(c, "ALLOC through a bad pointer succeeded");
		return;
	}
	c->alloc_ok++;
	{
		struct buf *b = &c->bufs[c->nbufs];
		int fdflags = fcntl(a.fd, F_GETFD), flflags = fcntl(a.fd, F_GETFL);
		off_t end = lseek(a.fd, 0, SEEK_END);

		if (a.fd < 0 || fdflags < 0) {
			report(c, "ALLOC returned fd %d, not an open fd", a.fd);
			return;
		}
		if (!(fdflags & FD_CLOEXEC))
			report(c, "ALLOC fd %d lacks FD_CLOEXEC", a.fd);
		if ((flflags & O_ACCMODE) != O_RDWR)
			report(c, "ALLOC fd %d is not O_RDWR (flags %#x)", a.fd, flflags);
		if ((uint64_t)end != round_page(a.size))
			report(c,
			       "ALLOC of %" PRIu64 " bytes: dma-buf size %lld, expected %" PRIu64,
			       (uint64_t)a.size, (long long)end, round_page(a.size));
		for (int i = 0; i < c->nbufs; i++)
			if (c->bufs[i].id == a.id)
				report(c, "ALLOC id %" PRIu64 " already belongs to a live buffer",
				       (uint64_t)a.id);
		memset(b, 0, sizeof(*b));
		b->fd = a.fd;
		b->id = a.id;
		b->size = round_page(a.size);
		b->tags = calloc(b->size / PAGE, sizeof(uint64_t));
		if (!b->tags) {
			perror("calloc");
			exit(2);
		}
		c->nbufs++;
	}
	if (c->exact)
		check_accounting(c, "ALLOC");
}

static void op_close(struct ctx *c)
{
	struct buf *b = pick_buf(c, true);

	if (!b)
		return;
	c->syscalls++;
	if (close(b->fd))
		report(c, "close(dma-buf fd %d): %s", b->fd, errname(errno));
	b->fd = -1;
	forget_if_dead(c, (int)(b - c->bufs));
	if (c->exact)
		check_accounting(c, "close");
}

static void op_mmap(struct ctx *c)
{
	struct buf *b = pick_buf(c, true);
	uint64_t off = 0, len, pages;
	int prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED, r;
	eset want = E_OK;
	void *p;

	if (!b || b->nmaps >= MAX_MAPS)
		return;
	pages = b->size / PAGE;
	r = rng_below(&c->rng, 20);
	if (r < 14)
		off = 0;
	else if (r < 17)
		off = rng_below(&c->rng, pages) * PAGE;
	else if (r == 17)
		off = b->size + PAGE * rng_below(&c->rng, 2); /* at or past the end */
	else if (r == 18)
		off = 1 + rng_below(&c->rng, PAGE - 1); /* not page aligned */
	else
		off = 1ULL << (44 + rng_below(&c->rng, 16));
	r = rng_below(&c->rng, 20);
	if (off >= b->size)
		len = PAGE * (1 + rng_below(&c->rng, 2));
	else if (r < 12)
		len = b->size - off;
	else if (r < 16)
		len = PAGE * (1 + rng_below(&c->rng, (b->size - off) / PAGE));
	else if (r == 16)
		len = 0;
	else if (r == 17)
		len = b->size - off - PAGE + 1 +
		      rng_below(&c->rng, PAGE - 1); /* rounds up to fit */
	else if (r == 18 || rng_chance(&c->rng, 80))
		len = b->size - off + 1; /* one byte too many: a page too many */
	else
		len = 1ULL << (40 + rng_below(&c->rng, 8)); /* the kernel logs these: rarely */
	r = rng_below(&c->rng, 20);
	if (r == 0)
		prot = PROT_READ;
	else if (r == 1)
		prot = PROT_NONE;
	else if (r == 2)
		prot = PROT_READ | PROT_EXEC;
	if (rng_chance(&c->rng, 8))
		flags = MAP_PRIVATE;
	else if (rng_chance(&c->rng, 5))
		flags |= MAP_POPULATE;

	if (len == 0 || off % PAGE)
		want = E(EINVAL);
	else if (flags & MAP_PRIVATE)
		want = ~(eset)0 & ~E_OK; /* refused; the header names no errno */
	else if (len >= (1ULL << 40) || off >= (1ULL << 44))
		want = E(EINVAL) | E(ENOMEM) | E(EOVERFLOW);
	else if (off + round_page(len) > b->size)
		want = E(EINVAL);
	if (prot & PROT_EXEC)
		want |= E(EPERM); /* the dma-buf filesystem is noexec on 7.2, checked first */
	c->syscalls++;
	p = mmap(NULL, len, prot, flags, b->fd, off);
	r = p == MAP_FAILED ? errno : 0;
	expect(c, r, want, flags & MAP_PRIVATE ? "mmap MAP_PRIVATE" : "mmap");
	if (r)
		return;
	if (!(want & E_OK) || flags & MAP_PRIVATE) {
		munmap(p, len);
		return;
	}
	b->maps[b->nmaps++] = (struct mapping){ p, round_page(len), off, prot };
	verify_pages(c, b, &b->maps[b->nmaps - 1], "new mapping");
	write_pages(c, b, &b->maps[b->nmaps - 1]);
}

static void drop_map(struct ctx *c, struct buf *b, struct mapping *m)
{
	*m = b->maps[--b->nmaps];
	forget_if_dead(c, (int)(b - c->bufs));
}

static void op_munmap(struct ctx *c)
{
	struct buf *b;
	struct mapping *m = pick_map(c, &b);

	if (!m)
		return;
	c->syscalls++;
	if (m->len > PAGE && rng_chance(&c->rng, 30)) {
		/* unmap the first page only: the rest stays and keeps the buffer */
		if (munmap(m->addr, PAGE))
			report(c, "munmap of a mapping's first page: %s", errname(errno));
		m->addr += PAGE;
		m->len -= PAGE;
		m->off += PAGE;
		verify_pages(c, b, m, "after partial munmap");
		return;
	}
	if (munmap(m->addr, m->len))
		report(c, "munmap: %s", errname(errno));
	drop_map(c, b, m);
	if (c->exact)
		check_accounting(c, "munmap");
}

static void op_touch(struct ctx *c)
{
	struct buf *b;
	struct mapping *m = pick_map(c, &b);

	if (!m)
		return;
	verify_pages(c, b, m, "touch");
	write_pages(c, b, m);
}

static void op_madvise(struct ctx *c)
{
	struct buf *b;
	struct mapping *m = pick_map(c, &b);

	if (!m)
		return;
	c->syscalls++;
	expect(c, madvise(m->addr, m->len, MADV_DONTNEED) ? errno : 0, E_OK, "madvise DONTNEED");
	/* the pages refault from the buffer with their contents */
	verify_pages(c, b, m, "refault after MADV_DONTNEED");
}

static void op_mremap(struct ctx *c)
{
	struct buf *b;
	struct mapping *m = pick_map(c, &b);
	void *p;

	if (!m)
		return;
	c->syscalls++;
	if (m->len > PAGE && rng_chance(&c->rng, 40)) {
		p = mremap(m->addr, m->len, m->len - PAGE, 0);
		if (expect(c, p == MAP_FAILED ? errno : 0, E_OK, "mremap shrink") == 0)
			m->len -= PAGE;
		return;
	}
	/* VM_DONTEXPAND: growing must fail */
	p = mremap(m->addr, m->len, m->len + PAGE, rng_chance(&c->rng, 50) ? MREMAP_MAYMOVE : 0);
	if (p != MAP_FAILED) {
		report(c, "mremap grew a dma-buf mapping (VM_DONTEXPAND missing)");
		m->addr = p;
		munmap(m->addr + m->len, PAGE);
		return;
	}
	expect(c, errno, E(EFAULT), "mremap grow");
}

static void op_pin(struct ctx *c)
{
	struct spillway_test_pin tp = { 0 };
	struct buf *b = NULL;
	struct mapping *m = NULL;
	eset want = E_OK;
	bool whole = false;
	void *arg = &tp;
	const char *what = "TEST_PIN of a mapping";
	int err, r = rng_below(&c->rng, 16);

	if (r < 7 && (m = pick_map(c, &b))) {
		tp.addr = (uintptr_t)m->addr;
		tp.size = m->len;
		whole = true;
		if (rng_chance(&c->rng, 30) && m->len > PAGE) {
			uint64_t first = rng_below(&c->rng, m->len / PAGE);

			tp.addr += first * PAGE;
			tp.size = PAGE * (1 + rng_below(&c->rng, m->len / PAGE - first));
		}
		if (!(m->prot & PROT_WRITE)) {
			want = E(EFAULT); /* FOLL_WRITE on a read-only or PROT_NONE mapping */
			what = "TEST_PIN of a mapping without PROT_WRITE";
		}
	} else if (r < 9) {
		tp.addr = (uintptr_t)c->anon;
		tp.size = PAGE * (1 + rng_below(&c->rng, ANON_PAGES));
		whole = true;
		what = "TEST_PIN of anonymous memory";
	} else if (r < 10) {
		what = "TEST_PIN running into a PROT_NONE page";
		/* runs into the PROT_NONE page after the anonymous pages: partial or EFAULT */
		tp.addr = (uintptr_t)c->anon + (ANON_PAGES - 1) * PAGE;
		tp.size = 2 * PAGE;
		want = E_OK | E(EFAULT);
	} else if (r < 13) {
		tp.addr = (uintptr_t)bad_pointer(c, 0) & ~(PAGE - 1);
		tp.size = PAGE * (1 + rng_below(&c->rng, 64));
		want = E(EFAULT);
		what = "TEST_PIN of an unmapped, PROT_NONE or kernel address";
	} else {
		what = "TEST_PIN with invalid arguments";
		/* structurally invalid */
		tp.addr = (uintptr_t)c->anon;
		tp.size = PAGE;
		switch (rng_below(&c->rng, 6)) {
		case 0:
			tp.addr += 1 + rng_below(&c->rng, PAGE - 1);
			break;
		case 1:
			tp.size = 0;
			break;
		case 2:
			tp.size = PAGE + 1 + rng_below(&c->rng, PAGE - 1);
			break;
		case 3:
			tp.size = (1ULL << 30) + PAGE * (1 + rng_below(&c->rng, 4));
			break;
		case 4:
			tp.flags = 1U << rng_below(&c->rng, 32);
			break;
		default:
			if (rng_chance(&c->rng, 50))
				tp.reserved0 = 1;
			else
				tp.reserved[rng_below(&c->rng, 2)] = 1;
		}
		want = E(EINVAL);
	}
	if (rng_chance(&c->rng, 5))
		tp.pinned = rng_next(&c->rng); /* an out field: ignored on input */
	if (rng_chance(&c->rng, 5)) {
		arg = bad_pointer(c, sizeof(tp));
		want = E(EFAULT);
		what = "TEST_PIN through a bad pointer";
	}
	if (!g.test_ioctls)
		want = E(ENOTTY);
	err = do_ioctl(c, c->dev, SPILLWAY_IOC_TEST_PIN, arg);
	expect(c, err, want, what);
	if (err)
		return;
	c->pin_ok++;
	if (whole && (want & E(EFAULT)) == 0 && tp.pinned != tp.size / PAGE)
		report(c, "TEST_PIN of %" PRIu64 " mapped pages pinned %" PRIu64,
		       (uint64_t)tp.size / PAGE, (uint64_t)tp.pinned);
	if (tp.pinned > tp.size / PAGE)
		report(c, "TEST_PIN pinned %" PRIu64 " pages of a %" PRIu64 "-page range",
		       (uint64_t)tp.pinned, (uint64_t)tp.size / PAGE);
	if (m)
		verify_pages(c, b, m, "after TEST_PIN");
}

static void check_info_fields(struct ctx *c, const struct spillway_info *i)
{
	bool reserved = i->reserved0 != 0;

	for (size_t k = 0; k < sizeof(i->reserved) / sizeof(i->reserved[0]); k++)
		reserved |= i->reserved[k] != 0;
	if (reserved)
		report(c, "INFO: a reserved field is not zero");
	/* Every pin the fuzzer makes ends before its buffer goes. */
	if (i->lost_bytes)
		report(c, "INFO: %" PRIu64 " bytes lost at release", (uint64_t)i->lost_bytes);
	if (i->used_bytes + i->free_bytes != i->pool_bytes)
		report(c, "INFO: used %" PRIu64 " + free %" PRIu64 " != pool %" PRIu64,
		       (uint64_t)i->used_bytes, (uint64_t)i->free_bytes, (uint64_t)i->pool_bytes);
	if (i->level > SPILLWAY_LEVEL_CRITICAL || i->watermark_critical > i->watermark_warn)
		report(c, "INFO: level %u, watermarks warn %" PRIu64 " critical %" PRIu64, i->level,
		       (uint64_t)i->watermark_warn, (uint64_t)i->watermark_critical);
	if (i->watchdog_ms != g.watchdog_ms || i->floor_bytes != g.floor_bytes ||
	    i->user_limit_bytes != g.user_limit_bytes)
		report(c,
		       "INFO: watchdog_ms %u floor %" PRIu64 " user limit %" PRIu64
		       ", loaded with %u, %" PRIu64 ", %" PRIu64,
		       i->watchdog_ms, (uint64_t)i->floor_bytes, (uint64_t)i->user_limit_bytes,
		       g.watchdog_ms, g.floor_bytes, g.user_limit_bytes);
	if (i->pool_bytes % PAGE || i->used_bytes % PAGE)
		report(c, "INFO: pool or used bytes not a page multiple");
}

static void op_info(struct ctx *c)
{
	struct spillway_info info;
	int err;

	if (rng_chance(&c->rng, 15)) {
		struct spillway_info dummy = { 0 };

		err = do_ioctl(c, c->dev, SPILLWAY_IOC_INFO,
			       rng_chance(&c->rng, 50) ? bad_pointer(c, sizeof(info))
						       : in_ro_page(c, &dummy, sizeof(dummy)));
		expect(c, err, E(EFAULT), "INFO to a bad pointer");
		return;
	}
	memset(&info, 0xa5, sizeof(info)); /* the module must write every field */
	err = do_ioctl(c, c->dev, SPILLWAY_IOC_INFO, &info);
	if (expect(c, err, E_OK, "INFO"))
		return;
	check_info_fields(c, &info);
}

static void op_version(struct ctx *c)
{
	struct spillway_version v;
	int err;

	if (rng_chance(&c->rng, 25)) {
		err = do_ioctl(c, c->dev, SPILLWAY_IOC_VERSION, bad_pointer(c, sizeof(v)));
		expect(c, err, E(EFAULT), "VERSION to a bad pointer");
		return;
	}
	memset(&v, 0xa5, sizeof(v));
	err = do_ioctl(c, c->dev, SPILLWAY_IOC_VERSION, &v);
	if (expect(c, err, E_OK, "VERSION"))
		return;
	if (v.major != SPILLWAY_ABI_MAJOR || v.event_size != SPILLWAY_EVENT_SIZE ||
	    v.test_ioctls != (uint32_t)g.test_ioctls || v.reserved[0] || v.reserved[1])
		report(c,
		       "VERSION: %u.%u event_size %u test_ioctls %u reserved %#" PRIx64
		       "/%#" PRIx64,
		       v.major, v.minor, v.event_size, v.test_ioctls, (uint64_t)v.reserved[0],
		       (uint64_t)v.reserved[1]);
}

static void op_list(struct ctx *c)
{
	static const uint32_t caps[] = {
		0, 1, 2, 3, 8, 64, SPILLWAY_LIST_MAX, SPILLWAY_LIST_MAX + 1, UINT32_MAX
	};
	struct spillway_list l = { 0 };
	struct spillway_buffer_info *e;
	uint32_t cap = caps[rng_below(&c->rng, sizeof(caps) / sizeof(caps[0]))];
	size_t bytes;
	eset want = E_OK;
	int err, r = rng_below(&c->rng, 10);
	void *arg = &l;

	if (rng_chance(&c->rng, 30))
		cap = c->nbufs + rng_below(&c->rng, 3) - 1; /* around the count */
	if (cap > SPILLWAY_LIST_MAX)
		bytes = 4 * sizeof(*e) + PAGE;
	else
		bytes = (size_t)cap * sizeof(*e) + PAGE;
	e = malloc(bytes);
	if (!e)
		return;
	memset(e, 0x5a, bytes);
	l.entries = (uintptr_t)e;
	l.capacity = cap;
	l.count = rng_chance(&c->rng, 10) ? (uint32_t)rng_next(&c->rng) : 0; /* out: ignored */
	if (cap > SPILLWAY_LIST_MAX) {
		want = E(EINVAL);
	} else if (r == 0) {
		l.reserved[rng_below(&c->rng, 2)] = 1;
		want = E(EINVAL);
	} else if (r == 1) {
		l.entries = (uintptr_t)bad_pointer(c, sizeof(*e));
		/* nothing to write is no fault, else EFAULT */
		want = c->exact && (cap == 0 || c->nbufs == 0) ? E_OK | E(EFAULT)
		       : c->exact			       ? E(EFAULT)
							       : E_OK | E(EFAULT);
	} else if (r == 2) {
		arg = rng_chance(&c->rng, 50) ? bad_pointer(c, sizeof(l))
					      : in_ro_page(c, &l, sizeof(l));
		want = E(EFAULT);
	}
	err = do_ioctl(c, c->dev, SPILLWAY_IOC_LIST_BUFFERS, arg);
	expect(c, err, want, "LIST_BUFFERS");
	if (err || arg != &l || l.entries != (uintptr_t)e) {
		free(e);
		return;
	}
	if (l.reserved[0] || l.reserved[1])
		report(c, "LIST_BUFFERS: reserved not zero on output");
	if (c->exact && l.count != (uint32_t)c->nbufs)
		report(c, "LIST_BUFFERS count %u, expected %d", l.count, c->nbufs);
	for (uint32_t k = 0; k < cap && k < l.count; k++) {
		bool known = !c->exact;

		for (int i = 0; i < c->nbufs && !known; i++)
			known = c->bufs[i].id == e[k].id && c->bufs[i].size == e[k].size;
		if (!known || e[k].pid != getpid() || e[k].uid != 0 ||
		    (g.cgroup_id && e[k].cgroup_id != g.cgroup_id) || !e[k].size ||
		    e[k].size % PAGE) {
			report(c,
			       "LIST_BUFFERS entry %u: id %" PRIu64 " size %" PRIu64
			       " pid %d uid %u"
			       " cgroup %" PRIu64 "%s",
			       k, (uint64_t)e[k].id, (uint64_t)e[k].size, e[k].pid, e[k].uid,
			       (uint64_t)e[k].cgroup_id, known ? "" : " (no such live buffer)");
			break;
		}
	}
	/* nothing past min(count, capacity) may be written (the array has a spare page) */
	{
		uint32_t n = l.count < cap ? l.count : cap;
		const unsigned char *tail = (const unsigned char *)(e + n);

		for (size_t k = 0; k < sizeof(*e); k++)
			if (tail[k] != 0x5a) {
				report(c,
				       "LIST_BUFFERS wrote past entry %u (capacity %u, count %u)",
				       n, cap, l.count);
				break;
			}
	}
	free(e);
}

static void op_resize(struct ctx *c)
{
	struct spillway_resize rs = { 0 };
	struct spillway_info info;
	uint64_t target, old_pool, span = g.pool_max - g.pool_min;
	eset want = E_OK;
	void *arg = &rs;
	int err, r = rng_below(&c->rng, 12);

	if (!c->may_resize)
		return;
	spw_info(c->dev, &info);
	c->syscalls++;
	old_pool = info.pool_bytes;
	target = r < 4	 ? g.pool_min + rng_below(&c->rng, span)
		 : r < 6 ? info.pool_bytes
		 : r < 8 ? g.base_pool + rng_below(&c->rng, 2) * (1 + rng_below(&c->rng, PAGE))
		 : r < 9 ? info.used_bytes
			 : g.pool_min + rng_below(&c->rng, span / PAGE) * PAGE;
	if (target < g.pool_min)
		target = g.pool_min;
	if (target > g.pool_max)
		target = g.pool_max;
	rs.pool_bytes = target;
	rs.result_bytes = rng_chance(&c->rng, 10) ? rng_next(&c->rng) : 0; /* out */
	if (rng_chance(&c->rng, 8)) {
		switch (rng_below(&c->rng, 3)) {
		case 0:
			rs.flags = 1U << rng_below(&c->rng, 32);
			break;
		case 1:
			rs.reserved0 = 1;
			break;
		default:
			rs.reserved[rng_below(&c->rng, 2)] = rng_next(&c->rng) | 1;
		}
		want = E(EINVAL);
	} else if (rng_chance(&c->rng, 5)) {
		/*
		 * More than the machine's RAM: the module refuses it (EINVAL; the
		 * header does not list it yet).  Near 2^64 the page rounding
		 * would wrap to a tiny pool if done naively.
		 */
		static const uint64_t huge[] = { UINT64_MAX, UINT64_MAX - PAGE + 2, 1ULL << 63,
						 1ULL << 48 };

		rs.pool_bytes = rng_chance(&c->rng, 50)
					? huge[rng_below(&c->rng, 4)]
					: g.total_ram + PAGE * (1 + rng_below(&c->rng, 1024));
		want = E(EINVAL);
	}
	if (rng_chance(&c->rng, 6)) {
		arg = bad_pointer(c, sizeof(rs));
		want = E(EFAULT);
	} else if (rng_chance(&c->rng, 4)) {
		arg = in_ro_page(c, &rs, sizeof(rs));
		/* the resize may happen; only its report fails */
		want = want == E_OK ? E(EFAULT) : want;
	}
	err = do_ioctl(c, c->dev, SPILLWAY_IOC_RESIZE, arg);
	expect(c, err, want, "RESIZE");
	spw_info(c->dev, &info);
	c->syscalls++;
	if (!err && arg == &rs && c->exact) {
		uint64_t want_r = round_page(target);
		bool bad;

		if (rs.result_bytes != info.pool_bytes)
			report(c, "RESIZE result %" PRIu64 " but INFO pool %" PRIu64,
			       (uint64_t)rs.result_bytes, (uint64_t)info.pool_bytes);
		if (info.requested_bytes != want_r)
			report(c, "RESIZE to %" PRIu64 ": requested_bytes %" PRIu64, want_r,
			       (uint64_t)info.requested_bytes);
		/*
		 * Memory is plentiful in the VM: growing reaches the target (at most
		 * part of a 2 MiB chunk over); shrinking never goes below the target
		 * or the bytes in use, and never grows.
		 */
		if (want_r >= old_pool)
			bad = rs.result_bytes < want_r || rs.result_bytes >= want_r + 2 * MIB;
		else
			bad = rs.result_bytes < want_r || rs.result_bytes < info.used_bytes ||
			      rs.result_bytes > old_pool;
		if (bad)
			report(c, "RESIZE to %" PRIu64 " (used %" PRIu64 ") gave %" PRIu64, want_r,
			       (uint64_t)info.used_bytes, (uint64_t)rs.result_bytes);
	}
	g.model_pool = info.pool_bytes;
	if (c->exact)
		check_accounting(c, "RESIZE");
}

static void op_watermarks(struct ctx *c)
{
	struct spillway_watermarks w = { 0 };
	struct spillway_info before, after;
	eset want = E_OK;
	void *arg = &w;
	int err;

	if (!c->may_resize)
		return;
	/* far below MemAvailable in the VM, so the level stays ok */
	w.warn = rng_below(&c->rng, 48 * MIB);
	w.critical = rng_below(&c->rng, w.warn + 1);
	if (rng_chance(&c->rng, 8)) {
		w.critical = w.warn + 1 + rng_below(&c->rng, MIB);
		want = E(EINVAL);
	} else if (rng_chance(&c->rng, 8)) {
		switch (rng_below(&c->rng, 3)) {
		case 0:
			w.flags = 1U << rng_below(&c->rng, 32);
			break;
		case 1:
			w.reserved0 = 1;
			break;
		default:
			w.reserved[rng_below(&c->rng, 2)] = 1;
		}
		want = E(EINVAL);
	} else if (rng_chance(&c->rng, 6)) {
		arg = bad_pointer(c, sizeof(w));
		want = E(EFAULT);
	}
	spw_info(c->dev, &before);
	err = do_ioctl(c, c->dev, SPILLWAY_IOC_SET_WATERMARKS, arg);
	expect(c, err, want, "SET_WATERMARKS");
	spw_info(c->dev, &after);
	c->syscalls += 2;
	if (!err && (after.watermark_warn != w.warn || after.watermark_critical != w.critical))
		report(c, "SET_WATERMARKS %" PRIu64 "/%" PRIu64 ": INFO shows %" PRIu64 "/%" PRIu64,
		       (uint64_t)w.warn, (uint64_t)w.critical, (uint64_t)after.watermark_warn,
		       (uint64_t)after.watermark_critical);
	if (err && (after.watermark_warn != before.watermark_warn ||
		    after.watermark_critical != before.watermark_critical))
		report(c, "SET_WATERMARKS failed with %s but changed the watermarks", errname(err));
}

static void check_event(struct ctx *c, const struct spillway_event *ev)
{
	if (ev->type < SPILLWAY_EVENT_LEVEL || ev->type > SPILLWAY_EVENT_RELEASE ||
	    ev->level > SPILLWAY_LEVEL_CRITICAL || ev->prev_level > SPILLWAY_LEVEL_CRITICAL ||
	    (ev->type != SPILLWAY_EVENT_OVERFLOW && ev->seq <= c->last_seq))
		report(c, "event seq %" PRIu64 " (previous %" PRIu64 ") type %u level %u prev %u",
		       (uint64_t)ev->seq, c->last_seq, ev->type, ev->level, ev->prev_level);
	if (ev->type != SPILLWAY_EVENT_OVERFLOW)
		c->last_seq = ev->seq;
	c->events_read++;
}

static void op_read(struct ctx *c)
{
	static const size_t sizes[] = { 0, 1, 71, 72, 73, 100, 144, 4096 };
	struct spillway_event evs[4096 / sizeof(struct spillway_event) + 1];
	size_t size = sizes[rng_below(&c->rng, sizeof(sizes) / sizeof(sizes[0]))];
	bool bad = rng_chance(&c->rng, 20);
	/* the VFS may refuse a kernel address before the module checks the size */
	eset want = size < SPILLWAY_EVENT_SIZE ? E(EINVAL) | (bad ? E(EFAULT) : 0)
		    : bad		       ? E(EAGAIN) | E(EFAULT)
					       : E_OK | E(EAGAIN);
	ssize_t n;

	c->syscalls++;
	n = read(c->dev_nb, bad ? bad_pointer(c, size) : (void *)evs, size);
	expect(c, n < 0 ? errno : 0, want, "read events");
	if (n < 0 || bad)
		return;
	if (n == 0 || n % SPILLWAY_EVENT_SIZE || (size_t)n > size) {
		report(c, "read(%zu) of events returned %zd", size, n);
		return;
	}
	for (ssize_t k = 0; k < n / SPILLWAY_EVENT_SIZE; k++)
		check_event(c, &evs[k]);
}

static const unsigned long spillway_cmds[] = {
	SPILLWAY_IOC_VERSION,	SPILLWAY_IOC_INFO,	     SPILLWAY_IOC_ALLOC,
	SPILLWAY_IOC_RESIZE,	SPILLWAY_IOC_SET_WATERMARKS, SPILLWAY_IOC_LIST_BUFFERS,
	SPILLWAY_IOC_SET_SHARE, SPILLWAY_IOC_LIST_SHARES,    SPILLWAY_IOC_LEND,
	SPILLWAY_IOC_RETURN,	SPILLWAY_IOC_LIST_LOANS,     SPILLWAY_IOC_TEST_PIN,
};
#define N_CMDS (sizeof(spillway_cmds) / sizeof(spillway_cmds[0]))

static void op_bad_fd(struct ctx *c)
{
	unsigned long cmd = spillway_cmds[rng_below(&c->rng, N_CMDS)];
	char arg[256] = { 0 };
	struct buf *b;
	int fd, err;
	eset want = E(ENOTTY);

	switch (rng_below(&c->rng, 7)) {
	case 0:
		fd = -1;
		want = E(EBADF);
		break;
	case 1:
		fd = g.closed_fd;
		want = E(EBADF);
		break;
	case 2:
		fd = g.null_fd;
		break;
	case 3:
		fd = g.pipe_r;
		break;
	case 4:
		fd = g.memfd;
		break;
	case 5:
		fd = INT32_MAX;
		want = E(EBADF);
		break;
	default:
		b = pick_buf(c, true);
		fd = b ? b->fd : g.null_fd; /* a dma-buf knows none of our commands */
	}
	err = do_ioctl(c, fd, cmd, arg);
	expect(c, err, want, "spillway ioctl on a foreign or bad fd");
}

static bool known_cmd(unsigned long cmd)
{
	for (size_t i = 0; i < N_CMDS; i++)
		if (cmd == spillway_cmds[i])
			return spillway_cmds[i] != SPILLWAY_IOC_TEST_PIN || g.test_ioctls;
	return false;
}

static void op_bad_cmd(struct ctx *c)
{
	static const unsigned int dirs[] = { _IOC_NONE, _IOC_READ, _IOC_WRITE,
					     _IOC_READ | _IOC_WRITE };
	/* a zeroed, mapped buffer: a module that ignores the encoded size would succeed */
	static __thread uint64_t argbuf[PAGE / 8];
	unsigned long cmd, known = spillway_cmds[rng_below(&c->rng, N_CMDS)];
	eset want = E(ENOTTY);
	int r = rng_below(&c->rng, 10), err;

	memset(argbuf, 0, sizeof(argbuf));
	if (r < 4) {
		/* a documented number with another direction or size */
		do {
			cmd = _IOC(dirs[rng_below(&c->rng, 4)], SPILLWAY_IOC_MAGIC, _IOC_NR(known),
				   rng_chance(&c->rng, 50)
					   ? _IOC_SIZE(known) + 8 * (rng_below(&c->rng, 5) - 2)
					   : rng_below(&c->rng, 1 << _IOC_SIZEBITS));
		} while (cmd == known);
		want = E(ENOTTY) | E(EINVAL);
		if (_IOC_NR(known) == _IOC_NR(SPILLWAY_IOC_TEST_PIN) && !g.test_ioctls)
			want = E(ENOTTY);
	} else if (r < 7) {
		/* an undocumented number of our magic */
		unsigned int nr;

		do {
			nr = rng_below(&c->rng, 256);
		} while (nr <= _IOC_NR(SPILLWAY_IOC_LIST_LOANS) || nr == 0x40);
		cmd = _IOC(dirs[rng_below(&c->rng, 4)], SPILLWAY_IOC_MAGIC, nr,
			   rng_below(&c->rng, 512));
	} else if (r < 8) {
		/* TEST_PIN's number: exists only with test_ioctls */
		cmd = SPILLWAY_IOC_TEST_PIN;
		if (g.test_ioctls)
			return;
	} else if (r < 9) {
		/* a neighbouring magic (no VFS-generic ioctl lives at 0xb0-0xbf) */
		unsigned int magic = 0xb0 + rng_below(&c->rng, 16);

		if (magic == SPILLWAY_IOC_MAGIC)
			magic++;
		cmd = _IOC(dirs[rng_below(&c->rng, 4)], magic, _IOC_NR(known), _IOC_SIZE(known));
	} else {
		cmd = DMA_BUF_IOCTL_SYNC; /* a dma-buf command on the device */
	}
	if (known_cmd(cmd))
		return;
	err = do_ioctl(c, c->dev, cmd, argbuf);
	if (expect(c, err, want, "undocumented ioctl command") == 0)
		report(c, "(the command was %#lx)", cmd);
}

/* Every documented command through every kind of bad pointer. */
static void op_bad_ptr(struct ctx *c)
{
	unsigned long cmd = spillway_cmds[rng_below(&c->rng, N_CMDS)];
	int err, fd_before = lowest_free_fd();
	struct spillway_info before, after;

	if (!c->may_resize && (cmd == SPILLWAY_IOC_RESIZE || cmd == SPILLWAY_IOC_SET_WATERMARKS))
		cmd = SPILLWAY_IOC_INFO;
	if (c->exact)
		spw_info(c->dev, &before);
	err = do_ioctl(c, c->dev, cmd, bad_pointer(c, 48));
	expect(c, err, cmd == SPILLWAY_IOC_TEST_PIN && !g.test_ioctls ? E(ENOTTY) : E(EFAULT),
	       "documented ioctl with a bad pointer");
	if (!c->exact)
		return;
	spw_info(c->dev, &after);
	if (lowest_free_fd() != fd_before || after.used_bytes != before.used_bytes ||
	    after.buffers != before.buffers || after.pool_bytes != before.pool_bytes)
		report(c, "ioctl %#lx with a bad pointer changed state (fd or pool)", cmd);
}

static void op_dmabuf_ioctl(struct ctx *c)
{
	static const uint64_t valid[] = {
		DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE,
		DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW,	DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ,
		DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE,	DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW,
	};
	struct buf *b = pick_buf(c, true);
	struct dma_buf_sync s;
	eset want = E_OK;
	int err;
	void *arg = &s;

	if (!b)
		return;
	s.flags = valid[rng_below(&c->rng, 6)];
	switch (rng_below(&c->rng, 8)) {
	case 0:
		s.flags &= ~(uint64_t)DMA_BUF_SYNC_RW;
		want = E(EINVAL);
		break;
	case 1:
		s.flags |= 1ULL << (3 + rng_below(&c->rng, 61));
		want = E(EINVAL);
		break;
	case 2:
		arg = bad_pointer(c, sizeof(s));
		want = E(EFAULT);
		break;
	}
	err = do_ioctl(c, b->fd, DMA_BUF_IOCTL_SYNC, arg);
	expect(c, err, want, "DMA_BUF_IOCTL_SYNC");
}

static void op_mmap_dev(struct ctx *c)
{
	void *p;

	c->syscalls++;
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, c->dev, 0);
	if (p != MAP_FAILED) {
		report(c, "mmap of /dev/spillway itself succeeded (undocumented)");
		munmap(p, PAGE);
	}
}

static void (*const op_fn[OP_COUNT])(struct ctx *) = {
	[OP_ALLOC] = op_alloc,
	[OP_CLOSE] = op_close,
	[OP_MMAP] = op_mmap,
	[OP_MUNMAP] = op_munmap,
	[OP_TOUCH] = op_touch,
	[OP_MADVISE] = op_madvise,
	[OP_MREMAP] = op_mremap,
	[OP_PIN] = op_pin,
	[OP_INFO] = op_info,
	[OP_VERSION] = op_version,
	[OP_LIST] = op_list,
	[OP_RESIZE] = op_resize,
	[OP_WATERMARKS] = op_watermarks,
	[OP_READ] = op_read,
	[OP_BAD_FD] = op_bad_fd,
	[OP_BAD_CMD] = op_bad_cmd,
	[OP_BAD_PTR] = op_bad_ptr,
	[OP_DMABUF_IOCTL] = op_dmabuf_ioctl,
	[OP_MMAP_DEV] = op_mmap_dev,
};

static enum op pick_op(struct ctx *c)
{
	unsigned int total = 0, r;

	for (int i = 0; i < OP_COUNT; i++)
		total += op_weight[i];
	r = rng_below(&c->rng, total);
	for (int i = 0; i < OP_COUNT; i++) {
		if (r < op_weight[i])
			return i;
		r -= op_weight[i];
	}
	return OP_INFO;
}

static void release_all(struct ctx *c)
{
	while (c->nbufs) {
		struct buf *b = &c->bufs[c->nbufs - 1];

		verify_pages(c, b, b->nmaps ? &b->maps[0] : &(struct mapping){ 0 }, "final check");
		while (b->nmaps) {
			munmap(b->maps[b->nmaps - 1].addr, b->maps[b->nmaps - 1].len);
			b->nmaps--;
		}
		if (b->fd >= 0)
			close(b->fd);
		b->fd = -1;
		forget_if_dead(c, c->nbufs - 1);
	}
}

static int ctx_init(struct ctx *c, int tid, uint64_t seed, bool exact)
{
	memset(c, 0, sizeof(*c));
	c->tid = tid;
	c->rng.s = seed;
	c->exact = exact;
	c->may_resize = tid == 0;
	c->dev = dev_open(O_RDWR);
	c->dev_nb = dev_open(O_RDWR | O_NONBLOCK);
	c->anon = mmap(NULL, (ANON_PAGES + 1) * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	c->ro_page = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->dev < 0 || c->dev_nb < 0 || c->anon == MAP_FAILED || c->ro_page == MAP_FAILED) {
		perror("ctx_init");
		return -1;
	}
	mprotect(c->anon + ANON_PAGES * PAGE, PAGE, PROT_NONE);
	return 0;
}

static void ctx_fini(struct ctx *c)
{
	release_all(c);
	if (c->exact)
		check_accounting(c, "cleanup");
	close(c->dev);
	close(c->dev_nb);
	munmap(c->anon, (ANON_PAGES + 1) * PAGE);
	munmap(c->ro_page, PAGE);
}

static void run_ops(struct ctx *c, uint64_t n)
{
	for (c->op_index = 0; c->op_index < n; c->op_index++) {
		enum op op = pick_op(c);

		op_fn[op](c);
		c->per_op[op]++;
		c->ops++;
	}
}

static void *thread_main(void *arg)
{
	struct ctx *c = arg;

	run_ops(c, c->quota);
	return NULL;
}

/*
 * This process's cgroup v2 id, the inode number of its directory: the
 * module charges buffers to the cgroup their /dev/spillway was opened in.
 * Until cgroup2 is first mounted, /proc/self/cgroup has no "0::" line and
 * every process is in the root cgroup (a move needs the filesystem): id 1,
 * the inode number of a kernfs root on 64-bit.  Mounted elsewhere than on
 * /sys/fs/cgroup, outside the root cgroup: 0, unknown.
 */
static uint64_t own_cgroup_id(void)
{
	char line[4096], path[4200];
	uint64_t id = 1;
	struct statfs sfs;
	struct stat st;
	FILE *f = fopen("/proc/self/cgroup", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s", line + 3);
		if (!statfs("/sys/fs/cgroup", &sfs) && sfs.f_type == CGROUP2_SUPER_MAGIC &&
		    !stat(path, &st))
			id = st.st_ino;
		else if (strcmp(line + 3, "/"))
			id = 0;
	}
	if (f)
		fclose(f);
	return id;
}

static int setup_globals(void)
{
	struct spillway_version v;
	struct spillway_info info;
	int fds[2], dev = dev_open(O_RDWR);

	if (dev < 0) {
		printf("not ok - fuzz: open %s: %s\n", DEV_PATH, errname(errno));
		return -1;
	}
	if (spw_version(dev, &v) || spw_info(dev, &info)) {
		printf("not ok - fuzz: VERSION or INFO failed: %s\n", errname(errno));
		return -1;
	}
	g.test_ioctls = v.test_ioctls;
	g.base_pool = g.model_pool = info.pool_bytes;
	g.pool_min = info.pool_bytes / 2;
	g.pool_max = info.pool_bytes * 2;
	g.wm_warn0 = info.watermark_warn;
	g.wm_crit0 = info.watermark_critical;
	close(dev);
	if (info.used_bytes || info.buffers || !info.pool_bytes) {
		printf("not ok - fuzz: the pool is not idle at start (pool %" PRIu64
		       " used %" PRIu64 " buffers %" PRIu64 ")\n",
		       (uint64_t)info.pool_bytes, (uint64_t)info.used_bytes,
		       (uint64_t)info.buffers);
		return -1;
	}
	g.guard = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g.none_page = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/*
	 * mmap(NULL, ...) fills the address space from the top down, so 16 TiB
	 * stays unmapped; a hole that munmap left could be handed out again.
	 */
	g.unmapped = (char *)0x100000000000ULL;
	if (g.guard == MAP_FAILED || g.none_page == MAP_FAILED || pipe2(fds, O_CLOEXEC) ||
	    mmap(g.unmapped, 64 * PAGE, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != g.unmapped)
		return -1;
	munmap(g.unmapped, 64 * PAGE);
	mprotect(g.guard + PAGE, PAGE, PROT_NONE);
	g.pipe_r = fds[0];
	g.pipe_w = fds[1];
	g.null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	g.memfd = memfd_create("fuzz", MFD_CLOEXEC);
	g.closed_fd = 900;
	{
		struct sysinfo si;

		sysinfo(&si);
		g.total_ram = (uint64_t)si.totalram * si.mem_unit;
	}
	close(g.closed_fd);
	g.cgroup_id = own_cgroup_id();
	if (g.cgroup_id)
		printf("# cgroup v2 id %" PRIu64 ": every LIST_BUFFERS entry must have it\n",
		       g.cgroup_id);
	else
		printf("# cgroup v2 id unknown (cgroup2 not on /sys/fs/cgroup): not checked\n");
	return g.null_fd < 0 || g.memfd < 0 ? -1 : 0;
}

/* Puts the watermarks and the pool size back as loaded. */
static int restore(void)
{
	struct spillway_watermarks w = { .warn = g.wm_warn0, .critical = g.wm_crit0 };
	struct spillway_resize rs = { .pool_bytes = g.base_pool };
	int dev = dev_open(O_RDWR), err;

	err = spw_ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &w);
	if (!err)
		err = spw_ioctl(dev, SPILLWAY_IOC_RESIZE, &rs);
	close(dev);
	return err;
}

int main(int argc, char **argv)
{
	uint64_t ops = 100000, per_thread = 5000;
	int threads = 4, opt;
	const char *seed_arg = NULL;
	struct ctx *c0, *cs;
	pthread_t *tids;
	struct spillway_info end;
	uint64_t total_ops, total_sys, total_ioctl, mism = 0, per_op[OP_COUNT] = { 0 };
	double t0, t1, t2;
	int dev;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "n:t:T:s:w:f:u:")) != -1) {
		switch (opt) {
		case 'n':
			ops = strtoull(optarg, NULL, 0);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'T':
			per_thread = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed_arg = optarg;
			break;
		case 'w':
			g.watchdog_ms = atoi(optarg);
			break;
		case 'f':
			g.floor_bytes = strtoull(optarg, NULL, 0) * MIB;
			break;
		case 'u':
			g.user_limit_bytes = strtoull(optarg, NULL, 0) * MIB;
			break;
		default:
			fprintf(stderr,
				"usage: fuzz [-n OPS] [-t THREADS] [-T OPS_PER_THREAD] [-s SEED]"
				" [-w WATCHDOG_MS] [-f FLOOR_MB] [-u USER_LIMIT_MB]\n");
			return 2;
		}
	}
	if (!g.watchdog_ms)
		g.watchdog_ms = 250;
	g.seed = seed_from_arg_or_clock(seed_arg);
	diag("fuzz seed %" PRIu64 " (repeat with -s %" PRIu64 ")", g.seed, g.seed);
	if (setup_globals())
		return 1;

	/* phase 1: one thread, exact accounting */
	c0 = malloc(sizeof(*c0));
	if (!c0 || ctx_init(c0, 0, g.seed, true))
		return 1;
	t0 = now_s();
	run_ops(c0, ops);
	ctx_fini(c0);
	t1 = now_s();
	ok(c0->mismatches == 0,
	   "fuzz: %" PRIu64 " operations (%" PRIu64 " syscalls, %" PRIu64
	   " ioctls) on one thread in"
	   " %.1f s: every result as documented, accounting exact (seed %" PRIu64 ")",
	   c0->ops, c0->syscalls, c0->ioctls, t1 - t0, g.seed);
	diag("phase 1: %" PRIu64 " buffers allocated, %" PRIu64 " ENOMEM, %" PRIu64
	     " EINVAL, %" PRIu64 " pins, %" PRIu64 " events read",
	     c0->alloc_ok, c0->alloc_enomem, c0->alloc_einval, c0->pin_ok, c0->events_read);

	/* phase 2: racing threads */
	cs = calloc(threads, sizeof(*cs));
	tids = calloc(threads, sizeof(*tids));
	if (!cs || !tids)
		return 1;
	for (int i = 0; i < threads; i++) {
		if (ctx_init(&cs[i], i, g.seed ^ (0x5eed0000ULL + i), false))
			return 1;
		cs[i].quota = per_thread;
	}
	for (int i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, thread_main, &cs[i]))
			return 1;
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	for (int i = 0; i < threads; i++) {
		ctx_fini(&cs[i]);
		mism += cs[i].mismatches;
	}
	t2 = now_s();
	total_ops = c0->ops;
	total_sys = c0->syscalls;
	total_ioctl = c0->ioctls;
	for (int i = 0; i < threads; i++) {
		total_ops += cs[i].ops;
		total_sys += cs[i].syscalls;
		total_ioctl += cs[i].ioctls;
		for (int k = 0; k < OP_COUNT; k++)
			per_op[k] += cs[i].per_op[k];
	}
	for (int k = 0; k < OP_COUNT; k++)
		per_op[k] += c0->per_op[k];
	ok(mism == 0,
	   "fuzz: %d racing threads x %" PRIu64 " operations in %.1f s: every errno as documented,"
	   " no data lost",
	   threads, per_thread, t2 - t1);

	/* cleanup must leave the pool as loaded */
	if (restore())
		diag("restoring watermarks and pool size failed: %s", errname(errno));
	dev = dev_open(O_RDWR);
	spw_info(dev, &end);
	close(dev);
	ok(end.used_bytes == 0 && end.buffers == 0 && end.pool_bytes == g.base_pool &&
		   end.watermark_warn == g.wm_warn0 && end.watermark_critical == g.wm_crit0,
	   "fuzz: after cleanup the pool is back to %" PRIu64 " bytes, 0 used, 0 buffers"
	   " (INFO: pool %" PRIu64 " used %" PRIu64 " buffers %" PRIu64 ")",
	   g.base_pool, (uint64_t)end.pool_bytes, (uint64_t)end.used_bytes, (uint64_t)end.buffers);
	printf("# totals: %" PRIu64 " operations, %" PRIu64 " syscalls, %" PRIu64 " ioctls;",
	       total_ops, total_sys, total_ioctl);
	for (int k = 0; k < OP_COUNT; k++)
		printf(" %s %" PRIu64, op_names[k], per_op[k]);
	printf("\n");
	printf("FUZZ_STATS ops=%" PRIu64 " syscalls=%" PRIu64 " ioctls=%" PRIu64 " seed=%" PRIu64
	       "\n",
	       total_ops, total_sys, total_ioctl, g.seed);
	return tap_failures ? 1 : 0;
}
