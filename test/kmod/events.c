// SPDX-License-Identifier: GPL-2.0
/*
 * Events: a watermark moved above MemAvailable wakes a blocked reader (the
 * latency is printed), poll() wakes with POLLIN|POLLPRI, the sysfs level
 * attribute is notified, a uevent names the level, hysteresis holds a level
 * near its mark, every reader has its own cursor, and a reader that fell
 * behind gets one OVERFLOW record.  Needs pool_mb=0 and default marks.
 */
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "kmod.h"

#define EV_SIZE sizeof(struct spillway_event)

static char default_warn[32];

static long long mem_total_mb(void)
{
	unsigned long long kb = 0;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb / 1024;
}

static int set_warn_mb(long long mb)
{
	char val[32];

	snprintf(val, sizeof(val), "%lld", mb);
	return sysfs_write("watermark_warn_mb", val);
}

static int uevent_socket(void)
{
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);

	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)))
		return -1;
	return fd;
}

/* Waits up to @ms for a uevent of the spillway device carrying @env. */
static int uevent_seen(int sock, const char *env, int ms)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	double end = now_ms() + ms;
	char buf[4096];
	ssize_t n, off;
	int dev = 0, found = 0;

	while (now_ms() < end && poll(&pfd, 1, (int)(end - now_ms()) + 1) == 1) {
		n = recv(sock, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			break;
		buf[n] = 0;
		for (dev = found = 0, off = 0; off < n; off += strlen(buf + off) + 1) {
			dev |= strcmp(buf + off, "DEVNAME=spillway") == 0;
			found |= strcmp(buf + off, env) == 0;
		}
		if (dev && found)
			return 1;
	}
	return 0;
}

static void test_level_change(int reader, int poller, int *lvl_fd, int sock)
{
	struct pollfd pfd = { .fd = poller, .events = POLLIN | POLLPRI };
	struct spillway_event ev, ev2;
	int pipefd[2], status;
	double t0, t1 = 0;
	char level[16];
	pid_t pid;

	if (pipe(pipefd))
		return;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* Blocked in read() when the mark moves. */
		memset(&ev, 0, sizeof(ev));
		if (read(reader, &ev, EV_SIZE) != (ssize_t)EV_SIZE)
			_exit(1);
		t1 = now_ms();
		if (write(pipefd[1], &ev, sizeof(ev)) < 0 || write(pipefd[1], &t1, sizeof(t1)) < 0)
			_exit(1);
		_exit(0);
	}
	usleep(300 * 1000);
	t0 = now_ms();
	ok(set_warn_mb(mem_total_mb()) == 0, "sysfs watermark_warn_mb = MemTotal");
	if (read(pipefd[0], &ev, sizeof(ev)) != (ssize_t)sizeof(ev) ||
	    read(pipefd[0], &t1, sizeof(t1)) != (ssize_t)sizeof(t1))
		memset(&ev, 0, sizeof(ev));
	waitpid(pid, &status, 0);
	ok(ev.type == SPILLWAY_EVENT_LEVEL && ev.level == SPILLWAY_LEVEL_WARN &&
		   ev.prev_level == SPILLWAY_LEVEL_OK &&
		   (ev.reason & SPILLWAY_REASON_MEM_AVAILABLE) && ev.seq >= 1 &&
		   ev.mem_available > 0 && ev.time_ns > 0,
	   "blocked reader gets LEVEL ok -> warn, reason MEM_AVAILABLE (seq %llu)",
	   (unsigned long long)ev.seq);
	diag("latency_ms=%.2f (sysfs write of the mark to read() returning)", t1 - t0);

	ok(poll(&pfd, 1, 2000) == 1 && (pfd.revents & POLLIN) && (pfd.revents & POLLPRI),
	   "poll() on a second reader wakes with POLLIN|POLLPRI");
	ok(read(poller, &ev2, EV_SIZE) == (ssize_t)EV_SIZE && ev2.seq == ev.seq,
	   "second reader reads the same record (own cursor)");
	ok_errno(read(poller, &ev2, EV_SIZE), EAGAIN, "second reader: nothing more (O_NONBLOCK)");

	pfd.fd = *lvl_fd;
	pfd.events = POLLPRI;
	ok(poll(&pfd, 1, 2000) == 1 && (pfd.revents & POLLPRI), "sysfs level attribute notified");
	ok(sysfs_str("level", level, sizeof(level)) == 0 && !strcmp(level, "warn"),
	   "sysfs level reads warn");
	ok(uevent_seen(sock, "SPILLWAY_LEVEL=warn", 2000),
	   "KOBJ_CHANGE uevent with SPILLWAY_LEVEL=warn");
}

static void test_hysteresis(int reader)
{
	struct spillway_event ev;
	char level[16];
	long long avail_mb = (long long)(mem_available() / MiB);

	/* Just under MemAvailable, but within 1/8 of it: WARN must hold. */
	ok(set_warn_mb(avail_mb * 15 / 16) == 0, "warn mark at 15/16 of MemAvailable");
	usleep(700 * 1000);
	ok(read_event(reader, &ev, 0) != 0 && sysfs_str("level", level, sizeof(level)) == 0 &&
		   !strcmp(level, "warn"),
	   "hysteresis: still warn within 1/8 above the mark");
	ok(set_warn_mb(atoll(default_warn)) == 0, "warn mark back to its default");
	ok(read_event(reader, &ev, 2000) == 0 && ev.type == SPILLWAY_EVENT_LEVEL &&
		   ev.level == SPILLWAY_LEVEL_OK && ev.prev_level == SPILLWAY_LEVEL_WARN &&
		   ev.reason == SPILLWAY_REASON_RECOVERED,
	   "LEVEL warn -> ok with reason RECOVERED");
}

/* @behind has read nothing since before the first change. */
static void test_overflow(int reader, int behind)
{
	static struct spillway_event evs[SPILLWAY_EVENT_QUEUE_LEN + 64];
	long long total = mem_total_mb(), want = SPILLWAY_EVENT_QUEUE_LEN + 20;
	struct spillway_event ev;
	uint64_t last = 0;
	ssize_t n;
	int i, got = 0, consecutive = 1;

	for (i = 0; i < want; i++) {
		if (set_warn_mb(i % 2 ? atoll(default_warn) : total) ||
		    read_event(reader, &ev, 3000))
			break;
		got++;
		last = ev.seq;
	}
	ok(got == want, "%d level changes, each read by the first reader", got);
	n = read(behind, evs, sizeof(evs));
	if (!ok(n > 0 && n % EV_SIZE == 0, "reader that fell behind reads whole records"))
		return;
	n /= EV_SIZE;
	ok(evs[0].type == SPILLWAY_EVENT_OVERFLOW && evs[0].seq == 0 &&
		   evs[0].count == (uint64_t)(got + 2 - SPILLWAY_EVENT_QUEUE_LEN),
	   "first record is OVERFLOW with count %llu (want %d)", (unsigned long long)evs[0].count,
	   got + 2 - SPILLWAY_EVENT_QUEUE_LEN);
	for (i = 2; i < n; i++)
		consecutive &= evs[i].seq == evs[i - 1].seq + 1;
	ok(n == SPILLWAY_EVENT_QUEUE_LEN + 1 && consecutive && evs[n - 1].seq == last,
	   "then the %d newest records, in order, ending at seq %llu", SPILLWAY_EVENT_QUEUE_LEN,
	   (unsigned long long)last);
}

int main(void)
{
	int dev = open_dev(), reader, poller, behind, lvl_fd, sock;
	char level[16];

	if (sysfs_str("watermark_warn_mb", default_warn, sizeof(default_warn)))
		return ok(0, "read watermark_warn_mb"), 1;
	ok(sysfs_str("level", level, sizeof(level)) == 0 && !strcmp(level, "ok"),
	   "level ok at start");
	reader = open("/dev/spillway", O_RDONLY);
	poller = open("/dev/spillway", O_RDONLY | O_NONBLOCK);
	behind = open("/dev/spillway", O_RDONLY | O_NONBLOCK);
	lvl_fd = open(SYSFS_DIR "level", O_RDONLY);
	sock = uevent_socket();
	if (!ok(reader >= 0 && poller >= 0 && behind >= 0 && lvl_fd >= 0 && sock >= 0,
		"readers, sysfs level and uevent socket open"))
		return 1;
	if (read(lvl_fd, level, sizeof(level)) <= 0)
		diag("read level: %s", strerror(errno));

	test_level_change(reader, poller, &lvl_fd, sock);
	test_hysteresis(reader);
	test_overflow(reader, behind);
	set_warn_mb(atoll(default_warn));
	close(dev);
	return tap_exit();
}
