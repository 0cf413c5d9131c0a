// SPDX-License-Identifier: GPL-2.0
/*
 * stress: many threads use /dev/spillway at once for a bounded time.
 *
 *   stress [-d SECONDS] [-s SEED] [-a ALLOCATORS] [-m MAPPERS]
 *
 * Allocators allocate, map, fill, pin (TEST_PIN when the module has it) and
 * publish buffers in a shared table or free them; mappers map published
 * buffers through dup()ed fds and check their contents while a closer closes
 * table fds under them; a resizer grows and shrinks the pool and swings the
 * watermarks so the watchdog changes level and releases free chunks; a forker
 * shares mappings with child processes; a churner cycles anonymous memory so
 * that a page the pool gave back too early gets overwritten; two readers
 * follow the event stream, one of them too slowly, so it must get OVERFLOW
 * records.  Every page carries a tag derived from its buffer, so a page
 * handed to two buffers, lost, or not zeroed is seen.  At the end the pool
 * must be back as loaded, and each reader's records must add up to the
 * module's event count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define SLOTS	    48
#define MAX_PAGES   512 /* buffers up to 2 MiB */
#define MAX_REPORTS 40

struct slot {
	pthread_mutex_t lock;
	int fd; /* -1: empty */
	uint64_t id, size, seed;
};

static struct slot table[SLOTS];
static atomic_bool stop;
static atomic_int reports;
static atomic_uint_fast64_t failures;
static uint64_t base_pool, pool_min, pool_max, wm_warn0, wm_crit0;
static bool test_ioctls;
static int dev;

static struct {
	atomic_uint_fast64_t allocs, enomem, mmaps, pins, published, closes, dup_maps, resizes,
		level_swings, forks, churn_mb, madvises;
} n;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	failures++;
	if (atomic_fetch_add(&reports, 1) >= MAX_REPORTS)
		return;
	printf("# FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static uint64_t tag(uint64_t seed, uint64_t page)
{
	struct rng r = { seed ^ (page * 0x9e3779b97f4a7c15ULL) };

	return rng_next(&r) | 1;
}

static void fill(char *p, uint64_t size, uint64_t seed)
{
	for (uint64_t pg = 0; pg < size / PAGE; pg++) {
		uint64_t *w = (uint64_t *)(p + pg * PAGE);

		w[0] = w[PAGE / 8 - 1] = tag(seed, pg);
	}
}

/* checks every page (or every page's zero words when seed is 0) */
static bool check(const char *p, uint64_t size, uint64_t seed, uint64_t id, const char *who)
{
	for (uint64_t pg = 0; pg < size / PAGE; pg++) {
		const uint64_t *w = (const uint64_t *)(p + pg * PAGE);
		uint64_t want = seed ? tag(seed, pg) : 0;

		if (w[0] != want || w[PAGE / 8 - 1] != want || (!seed && w[PAGE / 16])) {
			fail("%s: buffer %" PRIu64 " page %" PRIu64 " holds %#" PRIx64
			     ", expected %#" PRIx64 " (%s)",
			     who, id, pg, w[0], want, seed ? "corrupted" : "not zeroed");
			return false;
		}
	}
	return true;
}

static void pin(char *p, uint64_t size, const char *who)
{
	struct spillway_test_pin tp = { .addr = (uintptr_t)p, .size = size };
	int err;

	if (!test_ioctls)
		return;
	err = spw_ioctl(dev, SPILLWAY_IOC_TEST_PIN, &tp);
	if (err || tp.pinned != size / PAGE)
		fail("%s: TEST_PIN of %" PRIu64 " pages: %s, pinned %" PRIu64, who, size / PAGE,
		     errname(err), (uint64_t)tp.pinned);
	else
		n.pins++;
}

static void *allocator(void *arg)
{
	struct rng r = { (uintptr_t)arg };

	while (!stop) {
		struct spillway_alloc a = { .size = PAGE * (1 + rng_below(&r, MAX_PAGES)) };
		uint64_t seed = rng_next(&r) | 1;
		int err = spw_ioctl(dev, SPILLWAY_IOC_ALLOC, &a);
		char *p;

		if (err == ENOMEM) {
			n.enomem++;
			usleep(1000);
			continue;
		}
		if (err) {
			fail("ALLOC %" PRIu64 ": %s", (uint64_t)a.size, errname(err));
			continue;
		}
		n.allocs++;
		p = mmap(NULL, a.size, PROT_READ | PROT_WRITE, MAP_SHARED, a.fd, 0);
		if (p == MAP_FAILED) {
			fail("mmap of a new buffer: %s", errname(errno));
			close(a.fd);
			continue;
		}
		n.mmaps++;
		check(p, a.size, 0, a.id, "new buffer");
		fill(p, a.size, seed);
		if (rng_chance(&r, 50))
			pin(p, a.size, "allocator");
		check(p, a.size, seed, a.id, "allocator");
		munmap(p, a.size);
		if (rng_chance(&r, 60)) {
			struct slot *s = &table[rng_below(&r, SLOTS)];

			pthread_mutex_lock(&s->lock);
			if (s->fd >= 0) {
				close(s->fd);
				n.closes++;
			}
			s->fd = a.fd;
			s->id = a.id;
			s->size = a.size;
			s->seed = seed;
			pthread_mutex_unlock(&s->lock);
			n.published++;
		} else {
			close(a.fd);
			n.closes++;
		}
	}
	return NULL;
}

static void *mapper(void *arg)
{
	struct rng r = { (uintptr_t)arg };

	while (!stop) {
		struct slot *s = &table[rng_below(&r, SLOTS)], copy;
		bool rw = rng_chance(&r, 70);
		char *p;
		int fd = -1;

		pthread_mutex_lock(&s->lock);
		copy = *s;
		if (s->fd >= 0)
			fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
		pthread_mutex_unlock(&s->lock);
		if (fd < 0) {
			usleep(200);
			continue;
		}
		p = mmap(NULL, copy.size, rw ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd,
			 0);
		/* the closer may close the table's fd now: ours keeps the buffer */
		if (p == MAP_FAILED) {
			fail("mmap of a published buffer: %s", errname(errno));
			close(fd);
			continue;
		}
		n.dup_maps++;
		check(p, copy.size, copy.seed, copy.id, "mapper");
		if (rw)
			pin(p, copy.size, "mapper");
		if (rng_chance(&r, 20)) {
			madvise(p, copy.size, MADV_DONTNEED);
			n.madvises++;
			check(p, copy.size, copy.seed, copy.id, "mapper after MADV_DONTNEED");
		}
		if (rng_chance(&r, 50)) {
			close(fd); /* the mapping alone keeps the buffer */
			fd = -1;
		}
		check(p, copy.size, copy.seed, copy.id, "mapper, second look");
		munmap(p, copy.size);
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

static void *closer(void *arg)
{
	struct rng r = { (uintptr_t)arg };

	while (!stop) {
		struct slot *s = &table[rng_below(&r, SLOTS)];

		pthread_mutex_lock(&s->lock);
		if (s->fd >= 0) {
			close(s->fd);
			s->fd = -1;
			n.closes++;
		}
		pthread_mutex_unlock(&s->lock);
		usleep(2000);
	}
	return NULL;
}

/* Grows and shrinks the pool. */
static void *resizer(void *arg)
{
	struct rng r = { (uintptr_t)arg };

	while (!stop) {
		struct spillway_resize rs = {
			.pool_bytes = pool_min + rng_below(&r, (pool_max - pool_min) / PAGE) * PAGE
		};
		int err = spw_ioctl(dev, SPILLWAY_IOC_RESIZE, &rs);

		if (err || rs.result_bytes % PAGE)
			fail("RESIZE to %" PRIu64 ": %s, result %" PRIu64, (uint64_t)rs.pool_bytes,
			     errname(err), (uint64_t)rs.result_bytes);
		n.resizes++;
		usleep(3000 + rng_below(&r, 10000));
	}
	return NULL;
}

/*
 * Swings the level ok -> warn -> critical -> ok through the watermarks, a
 * little slower than the watchdog samples (watchdog_ms=20 in run-in-vm.sh), so
 * that hundreds of events pass and critical releases free chunks again and again.
 */
static void *swinger(void *arg)
{
	struct rng r = { (uintptr_t)arg };
	const uint64_t huge = 1ULL << 40;
	int phase = 0;

	while (!stop) {
		struct spillway_watermarks w = { .warn = wm_warn0, .critical = wm_crit0 };
		int err;

		phase = (phase + 1) % 3;
		if (phase == 1)
			w.warn = huge;
		else if (phase == 2)
			w.warn = w.critical = huge;
		err = spw_ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &w);
		if (err)
			fail("SET_WATERMARKS: %s", errname(err));
		n.level_swings++;
		usleep(25000 + rng_below(&r, 20000));
	}
	return NULL;
}

static void *forker(void *arg)
{
	struct rng r = { (uintptr_t)arg };

	while (!stop) {
		struct spillway_alloc a = { .size = PAGE * (1 + rng_below(&r, 16)) };
		uint64_t seed = rng_next(&r) | 1;
		int status, err = spw_ioctl(dev, SPILLWAY_IOC_ALLOC, &a);
		char *p;
		pid_t pid;

		if (err) {
			if (err != ENOMEM)
				fail("forker ALLOC: %s", errname(err));
			usleep(5000);
			continue;
		}
		p = mmap(NULL, a.size, PROT_READ | PROT_WRITE, MAP_SHARED, a.fd, 0);
		close(a.fd); /* only the mapping holds the buffer now */
		if (p == MAP_FAILED) {
			fail("forker mmap: %s", errname(errno));
			continue;
		}
		fill(p, a.size, seed);
		pid = fork();
		if (pid == 0) {
			/* the child shares the pages: it checks them and leaves a mark */
			bool ok = check(p, a.size, seed, a.id, "child after fork");

			((uint64_t *)p)[1] = 0xc0ffee;
			_exit(ok ? 0 : 1);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			fail("forked child failed (status %#x)", pid < 0 ? -1 : status);
		else if (((uint64_t *)p)[1] != 0xc0ffee)
			fail("the child's write to a shared mapping is not visible in the parent");
		munmap(p, a.size);
		n.forks++;
		usleep(20000);
	}
	return NULL;
}

static void *churner(void *arg)
{
	const uint64_t size = 16 * MIB;
	uint64_t seed = (uintptr_t)arg;

	while (!stop) {
		char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);

		if (p == MAP_FAILED) {
			usleep(10000);
			continue;
		}
		fill(p, size, ++seed);
		check(p, size, seed, 0, "anonymous churn memory");
		munmap(p, size);
		n.churn_mb += size / MIB;
	}
	return NULL;
}

struct reader {
	bool slow;
	uint64_t records, overflows, level_events, release_events;
	uint64_t first_seq, last_seq;
	uint64_t lost;		    /* reported by OVERFLOW records after the first record */
	uint64_t lost_before_first; /* ... and before it */
	uint64_t pending_lost;	    /* since the last record */
	uint32_t last_level;
	bool have_level;
};

static void reader_take(struct reader *rd, const struct spillway_event *ev)
{
	if (ev->type == SPILLWAY_EVENT_OVERFLOW) {
		if (!ev->count)
			fail("OVERFLOW record with count 0");
		rd->overflows++;
		if (rd->first_seq)
			rd->lost += ev->count;
		else
			rd->lost_before_first += ev->count;
		rd->pending_lost += ev->count;
		rd->have_level = false;
		return;
	}
	if (ev->type != SPILLWAY_EVENT_LEVEL && ev->type != SPILLWAY_EVENT_RELEASE) {
		fail("event type %u", ev->type);
		return;
	}
	/* consecutive, except for what an OVERFLOW record said was lost */
	if (!rd->first_seq)
		rd->first_seq = ev->seq;
	else if (ev->seq != rd->last_seq + 1 + rd->pending_lost)
		fail("%s reader: seq %" PRIu64 " after %" PRIu64 " with %" PRIu64 " reported lost",
		     rd->slow ? "slow" : "fast", (uint64_t)ev->seq, rd->last_seq, rd->pending_lost);
	rd->pending_lost = 0;
	rd->last_seq = ev->seq;
	rd->records++;
	if (ev->type == SPILLWAY_EVENT_LEVEL) {
		rd->level_events++;
		if (ev->level > SPILLWAY_LEVEL_CRITICAL || ev->level == ev->prev_level ||
		    (rd->have_level && ev->prev_level != rd->last_level))
			fail("%s reader: LEVEL event %u -> %u after level %u",
			     rd->slow ? "slow" : "fast", ev->prev_level, ev->level, rd->last_level);
		rd->last_level = ev->level;
		rd->have_level = true;
	} else {
		rd->release_events++;
		if (!ev->count || ev->count % PAGE)
			fail("RELEASE event of %" PRIu64 " bytes", (uint64_t)ev->count);
	}
}

/* Reads records; returns how many, 0 when none are queued (nonblocking fd). */
static int reader_read(struct reader *rd, int fd, int max)
{
	struct spillway_event evs[16];
	ssize_t got = read(fd, evs, (size_t)(max < 16 ? max : 16) * sizeof(evs[0]));

	if (got < 0) {
		if (errno != EAGAIN)
			fail("read events: %s", errname(errno));
		return 0;
	}
	if (got == 0 || got % SPILLWAY_EVENT_SIZE) {
		fail("read of events returned %zd bytes", got);
		return 0;
	}
	for (int k = 0; k < got / SPILLWAY_EVENT_SIZE; k++)
		reader_take(rd, &evs[k]);
	return (int)(got / SPILLWAY_EVENT_SIZE);
}

struct reader_arg {
	struct reader rd;
	int fd;
	uint64_t records_while_running;
};

static void *reader_thread(void *arg)
{
	struct reader_arg *ra = arg;

	while (!stop) {
		struct pollfd pfd = { .fd = ra->fd, .events = POLLIN | POLLPRI };

		if (ra->rd.slow) {
			usleep(500000); /* far slower than the events come */
			reader_read(&ra->rd, ra->fd, 1);
			continue;
		}
		/* readable means POLLIN|POLLPRI, and a record is there to read */
		if (poll(&pfd, 1, 100) > 0 &&
		    ((pfd.revents & (POLLIN | POLLPRI)) != (POLLIN | POLLPRI) ||
		     !reader_read(&ra->rd, ra->fd, 16)))
			fail("poll said %#x, but no record could be read", pfd.revents);
	}
	ra->records_while_running = ra->rd.records;
	return NULL;
}

static void drain_and_check(struct reader_arg *ra, uint64_t events_total, uint64_t events_at_open,
			    const char *name)
{
	struct reader *rd = &ra->rd;
	uint64_t span;
	bool good;

	while (reader_read(rd, ra->fd, 16))
		;
	/*
	 * Records read plus records reported lost cover the whole span of
	 * sequence numbers the reader saw, nothing after its open was skipped
	 * silently before its first record, and its last record is the newest.
	 */
	span = rd->records ? rd->last_seq - rd->first_seq + 1 : 0;
	good = rd->records + rd->lost == span &&
	       (!rd->records || (rd->last_seq == events_total &&
				 rd->first_seq <= events_at_open + 1 + rd->lost_before_first)) &&
	       (rd->records || events_total == events_at_open);
	ok(good,
	   "stress: %s event reader: %" PRIu64 " records (%" PRIu64 " level, %" PRIu64
	   " release) + %" PRIu64 " reported lost in %" PRIu64 " OVERFLOW records = seq %" PRIu64
	   "..%" PRIu64 "; module's count %" PRIu64,
	   name, rd->records, rd->level_events, rd->release_events, rd->lost, rd->overflows,
	   rd->first_seq, rd->last_seq, events_total);
}

int main(int argc, char **argv)
{
	int duration = 15, allocators = 2, mappers = 2, opt, nthreads = 0;
	const char *seed_arg = NULL;
	struct spillway_version v;
	struct spillway_info info, end;
	struct reader_arg fast = { 0 }, slow = { .rd.slow = true };
	pthread_t th[32];
	uint64_t seed, events_at_open;
	double t0, t1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "d:s:a:m:")) != -1) {
		switch (opt) {
		case 'd':
			duration = atoi(optarg);
			break;
		case 's':
			seed_arg = optarg;
			break;
		case 'a':
			allocators = atoi(optarg);
			break;
		case 'm':
			mappers = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: stress [-d SECONDS] [-s SEED] [-a ALLOCATORS] [-m MAPPERS]\n");
			return 2;
		}
	}
	if (allocators + mappers > 24)
		return 2;
	seed = seed_from_arg_or_clock(seed_arg);
	diag("stress seed %" PRIu64, seed);
	dev = dev_open(O_RDWR);
	fast.fd = dev_open(O_RDWR | O_NONBLOCK);
	slow.fd = dev_open(O_RDWR | O_NONBLOCK);
	if (dev < 0 || fast.fd < 0 || slow.fd < 0 || spw_version(dev, &v) || spw_info(dev, &info)) {
		printf("not ok - stress: open or query %s: %s\n", DEV_PATH, errname(errno));
		return 1;
	}
	events_at_open = info.events;
	test_ioctls = v.test_ioctls;
	base_pool = info.pool_bytes;
	pool_min = base_pool / 2;
	pool_max = base_pool * 2;
	wm_warn0 = info.watermark_warn;
	wm_crit0 = info.watermark_critical;
	for (int i = 0; i < SLOTS; i++) {
		pthread_mutex_init(&table[i].lock, NULL);
		table[i].fd = -1;
	}

	t0 = now_s();
	for (int i = 0; i < allocators; i++)
		pthread_create(&th[nthreads++], NULL, allocator, (void *)(uintptr_t)(seed + 1 + i));
	for (int i = 0; i < mappers; i++)
		pthread_create(&th[nthreads++], NULL, mapper, (void *)(uintptr_t)(seed + 100 + i));
	pthread_create(&th[nthreads++], NULL, closer, (void *)(uintptr_t)(seed + 200));
	pthread_create(&th[nthreads++], NULL, resizer, (void *)(uintptr_t)(seed + 300));
	pthread_create(&th[nthreads++], NULL, swinger, (void *)(uintptr_t)(seed + 350));
	pthread_create(&th[nthreads++], NULL, forker, (void *)(uintptr_t)(seed + 400));
	pthread_create(&th[nthreads++], NULL, churner, (void *)(uintptr_t)(seed + 500));
	pthread_create(&th[nthreads++], NULL, reader_thread, &fast);
	pthread_create(&th[nthreads++], NULL, reader_thread, &slow);
	sleep(duration);
	stop = true;
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	t1 = now_s();

	ok(failures == 0,
	   "stress: %.1f s, %d threads: %" PRIu64 " allocs (%" PRIu64 " ENOMEM), %" PRIu64
	   " mmaps + %" PRIu64 " of shared fds, %" PRIu64 " pins, %" PRIu64 " closes, %" PRIu64
	   " resizes, %" PRIu64 " level swings, %" PRIu64 " forks, %" PRIu64 " MB churned:"
	   " every call as documented, no page lost, shared or left dirty",
	   t1 - t0, nthreads, (uint64_t)n.allocs, (uint64_t)n.enomem, (uint64_t)n.mmaps,
	   (uint64_t)n.dup_maps, (uint64_t)n.pins, (uint64_t)n.closes, (uint64_t)n.resizes,
	   (uint64_t)n.level_swings, (uint64_t)n.forks, (uint64_t)n.churn_mb);
	printf("STRESS_STATS seconds=%.1f threads=%d allocs=%" PRIu64 " enomem=%" PRIu64
	       " mmaps=%" PRIu64 " shared_maps=%" PRIu64 " pins=%" PRIu64 " closes=%" PRIu64
	       " resizes=%" PRIu64 " swings=%" PRIu64 " forks=%" PRIu64 "\n",
	       t1 - t0, nthreads, (uint64_t)n.allocs, (uint64_t)n.enomem, (uint64_t)n.mmaps,
	       (uint64_t)n.dup_maps, (uint64_t)n.pins, (uint64_t)n.closes, (uint64_t)n.resizes,
	       (uint64_t)n.level_swings, (uint64_t)n.forks);

	/* put everything back, then the readers must account for every event */
	for (int i = 0; i < SLOTS; i++)
		if (table[i].fd >= 0)
			close(table[i].fd);
	{
		struct spillway_watermarks w = { .warn = wm_warn0, .critical = wm_crit0 };
		struct spillway_resize rs = { .pool_bytes = base_pool };
		int e1 = spw_ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &w), e2;

		/*
		 * Resize only once the watchdog is back at ok and no sample that
		 * still saw critical can release chunks under the resize.
		 */
		for (int i = 0; i < 150; i++) { /* 15 s: TCG under load is slow */
			spw_info(dev, &end);
			if (end.level == SPILLWAY_LEVEL_OK)
				break;
			usleep(100000);
		}
		usleep(300000);
		e2 = spw_ioctl(dev, SPILLWAY_IOC_RESIZE, &rs);
		if (e1 || e2)
			diag("restore: SET_WATERMARKS %s, RESIZE %s", errname(e1), errname(e2));
	}
	usleep(300000);
	spw_info(dev, &end);
	drain_and_check(&fast, end.events, events_at_open, "fast");
	drain_and_check(&slow, end.events, events_at_open, "slow");
	/* a reader more than QUEUE_LEN records behind must have been told */
	ok(slow.rd.overflows > 0 || end.events - events_at_open <=
					    SPILLWAY_EVENT_QUEUE_LEN + slow.records_while_running,
	   "stress: the slow reader, %" PRIu64 " events behind, got %" PRIu64 " OVERFLOW records",
	   (uint64_t)(end.events - events_at_open - slow.records_while_running), slow.rd.overflows);
	ok(end.used_bytes == 0 && end.buffers == 0 && end.pool_bytes == base_pool &&
		   end.level == SPILLWAY_LEVEL_OK,
	   "stress: afterwards the pool is back to %" PRIu64 " bytes, 0 used, 0 buffers, level ok"
	   " (INFO: pool %" PRIu64 " used %" PRIu64 " buffers %" PRIu64
	   " level %u; released %" PRIu64 " bytes under pressure in all)",
	   base_pool, (uint64_t)end.pool_bytes, (uint64_t)end.used_bytes, (uint64_t)end.buffers,
	   end.level, (uint64_t)end.released_bytes);
	close(fast.fd);
	close(slow.fd);
	close(dev);
	return tap_failures ? 1 : 0;
}
