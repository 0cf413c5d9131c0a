// SPDX-License-Identifier: GPL-2.0
/*
 * A buffer release racing an OOM (issue 14 A): while a thread allocates and
 * releases a 256 MiB buffer again and again (each release zeroes 256 MiB),
 * a hog runs the machine out of memory.  The OOM notifier must give the
 * pool's free chunks back instead of an OOM kill.  A module that zeroes
 * under the pool lock, with a notifier that only try-locks it, released
 * nothing while the lock was busy and let the OOM killer act.
 * Needs pool_mb=384 watchdog_ms=60000 (the sampler out of the way) and no
 * swap.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kmod.h"

#define STEP   (8 * MiB)
#define BUFFER (256 * MiB)

static int dev;
static volatile int stop;
static unsigned long cycles, refused;

static void *releaser(void *unused)
{
	(void)unused;
	while (!stop) {
		int fd = alloc_buf(dev, BUFFER, NULL);

		if (fd < 0) {
			/* The notifier shrank the pool under the buffer size. */
			refused++;
			usleep(1000);
			continue;
		}
		close(fd);
		cycles++;
	}
	return NULL;
}

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
	unsigned long before;
	struct spillway_info info;
	struct spillway_event ev;
	int reader, status = -1, got_release = 0;
	long long pool;
	pthread_t thread;
	pid_t pid;

	dev = open_dev();
	reader = open("/dev/spillway", O_RDONLY | O_NONBLOCK);
	pool = sysfs_num("pool_bytes");
	ok(pool == (long long)(384 * MiB), "pool 384 MiB");
	pressure_begin();
	pthread_create(&thread, NULL, releaser, NULL);
	/* The hog starts once releases are under way. */
	while (cycles < 2)
		usleep(1000);
	before = cycles;
	pid = fork();
	if (pid == 0)
		hog(pool);
	waitpid(pid, &status, 0);
	stop = 1;
	pthread_join(thread, NULL);
	pressure_end();
	diag("releases: %lu before the hog, %lu during and after it; %lu ALLOCs refused", before,
	     cycles - before, refused);
	ok(cycles > before, "buffers were released while the hog ran");
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "hog saw the pool shrink and exited normally (status %#x)", status);
	ok(oom_kills() == kills, "no OOM kill (%llu)", oom_kills() - kills);
	get_info(dev, &info);
	ok(info.released_bytes > 0 && info.pool_bytes < (uint64_t)pool,
	   "the notifier gave pool memory back (released %llu MiB, pool %llu MiB)",
	   (unsigned long long)info.released_bytes / MiB,
	   (unsigned long long)info.pool_bytes / MiB);
	while (read_event(reader, &ev, 200) == 0)
		if (ev.type == SPILLWAY_EVENT_RELEASE && (ev.reason & SPILLWAY_REASON_OOM))
			got_release = 1;
	ok(got_release, "RELEASE record with reason OOM");
	close(reader);
	close(dev);
	return tap_exit();
}
