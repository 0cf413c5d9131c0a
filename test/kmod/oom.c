// SPDX-License-Identifier: GPL-2.0
/*
 * The OOM notifier: with the sampler slowed to once a minute, a hog that
 * runs the machine out of memory must get the pool's free chunks (down to
 * the floor) instead of an OOM kill, and a RELEASE record with reason OOM
 * must say so.  Needs pool_mb=256 pool_floor_mb=16 watchdog_ms=60000 and
 * no swap.
 */
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kmod.h"

#define STEP (8 * MiB)

/* Grows until the pool shrinks (the notifier ran), then exits 0. */
static void hog(long long pool)
{
	for (int steps = 0; steps < 4096; steps++) {
		char *p;

		if (sysfs_num("pool_bytes") < pool)
			_exit(0);
		p = mmap(NULL, STEP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(2);
		for (size_t i = 0; i < STEP; i += 4096)
			p[i] = 1;
	}
	_exit(3);
}

int main(void)
{
	unsigned long long kills = oom_kills();
	struct spillway_info info;
	struct spillway_event ev;
	struct pollfd pfd;
	int dev = open_dev(), reader, status = -1;
	long long pool = sysfs_num("pool_bytes");
	pid_t pid;

	reader = open("/dev/spillway", O_RDONLY | O_NONBLOCK);
	ok(pool == (long long)(256 * MiB), "pool 256 MiB");
	pressure_begin();
	pid = fork();
	if (pid == 0)
		hog(pool);
	waitpid(pid, &status, 0);
	pressure_end();
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "hog saw the pool shrink and exited normally (status %#x)", status);
	ok(oom_kills() == kills, "no OOM kill");
	get_info(dev, &info);
	ok(info.pool_bytes == 16 * MiB && info.released_bytes == 240 * MiB,
	   "pool given back down to the 16 MiB floor (pool %llu MiB, released %llu MiB)",
	   (unsigned long long)info.pool_bytes / MiB,
	   (unsigned long long)info.released_bytes / MiB);
	pfd.fd = reader;
	pfd.events = POLLIN;
	memset(&ev, 0, sizeof(ev));
	while (poll(&pfd, 1, 1000) == 1 && read(reader, &ev, sizeof(ev)) == (ssize_t)sizeof(ev))
		if (ev.type == SPILLWAY_EVENT_RELEASE)
			break;
	ok(ev.type == SPILLWAY_EVENT_RELEASE && (ev.reason & SPILLWAY_REASON_OOM) &&
		   ev.count == 240 * MiB,
	   "RELEASE record with reason OOM, count %llu MiB", (unsigned long long)ev.count / MiB);
	close(dev);
	return tap_exit();
}
