// SPDX-License-Identifier: GPL-2.0
/*
 * Issue 14 C: a poller that asks only for POLLRDNORM (poll and epoll) is
 * woken by a new event record.  A wake key without EPOLLRDNORM left such a
 * poller asleep until its timeout.  Each waiter blocks with a 20 s timeout
 * while a child, 300 ms later, moves the warn mark above MemAvailable (a
 * LEVEL record); woken before the timeout is the proof.
 * Needs the module loaded with default marks.
 */
#include <sys/epoll.h>
#include <sys/wait.h>

#include "kmod.h"

#define TIMEOUT_MS 20000

/* In a child: after 300 ms, a warn mark above MemAvailable, then back. */
static pid_t provoke_event(int dev)
{
	struct spillway_info info;
	pid_t pid;

	get_info(dev, &info);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct spillway_watermarks m = { .warn = ~0ULL >> 1,
						 .critical = info.watermark_critical };

		usleep(300 * 1000);
		if (ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &m))
			_exit(1);
		m.warn = info.watermark_warn;
		_exit(ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &m) ? 1 : 0);
	}
	return pid;
}

static void test_poll(int dev)
{
	int reader = open("/dev/spillway", O_RDONLY | O_NONBLOCK);
	struct pollfd pfd = { .fd = reader, .events = POLLRDNORM };
	int status, n;
	double t0;
	pid_t pid;

	pid = provoke_event(dev);
	t0 = now_ms();
	n = poll(&pfd, 1, TIMEOUT_MS);
	ok(n == 1 && (pfd.revents & POLLRDNORM) && now_ms() - t0 < TIMEOUT_MS - 1000,
	   "poll() for POLLRDNORM alone is woken by a record (%d, revents %#x, %.0f ms)", n,
	   pfd.revents, now_ms() - t0);
	waitpid(pid, &status, 0);
	close(reader);
}

static void test_epoll(int dev)
{
	int reader = open("/dev/spillway", O_RDONLY | O_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLRDNORM }, out;
	int ep = epoll_create1(EPOLL_CLOEXEC), status, n;
	double t0;
	pid_t pid;

	if (!ok(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, reader, &ev) == 0,
		"epoll for EPOLLRDNORM alone"))
		return;
	pid = provoke_event(dev);
	t0 = now_ms();
	n = epoll_wait(ep, &out, 1, TIMEOUT_MS);
	ok(n == 1 && (out.events & EPOLLRDNORM) && now_ms() - t0 < TIMEOUT_MS - 1000,
	   "epoll_wait() for EPOLLRDNORM alone is woken by a record (%d, %.0f ms)", n,
	   now_ms() - t0);
	waitpid(pid, &status, 0);
	close(ep);
	close(reader);
}

int main(void)
{
	int dev = open_dev();

	test_poll(dev);
	test_epoll(dev);
	close(dev);
	return tap_exit();
}
