// SPDX-License-Identifier: GPL-2.0
/*
 * Issue 14 D: pages still referenced when their buffer is released (here by
 * a pipe, through vmsplice) are lost to the pool.  The loss is counted
 * (sysfs lost_bytes and INFO), reported by a LOST record, and not counted
 * as released under pressure.  The pool does not grow back while the level
 * is warn; once the level has been ok for regrow_ms it grows back to the
 * size asked for.
 * Needs pool_mb=64 regrow_ms=1000 watchdog_ms=50.
 */
#include <sys/uio.h>

#include "kmod.h"

#define PAGES 64
#define SIZE  (4 * MiB)

/* Waits up to @ms for the pool to hold @bytes; returns what it holds. */
static long long wait_pool(long long bytes, int ms)
{
	double end = now_ms() + ms;
	long long have;

	while ((have = sysfs_num("pool_bytes")) != bytes && now_ms() < end)
		usleep(20 * 1000);
	return have;
}

int main(void)
{
	int dev = open_dev(), reader, fd, pipefd[2];
	struct spillway_info before, after, info;
	struct spillway_watermarks marks;
	struct spillway_event ev;
	struct iovec iov;
	int got_lost = 0;
	long long have;
	char *p;

	reader = open("/dev/spillway", O_RDONLY | O_NONBLOCK);
	get_info(dev, &before);
	fd = alloc_buf(dev, SIZE, NULL);
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!ok(fd >= 0 && p != MAP_FAILED && pipe(pipefd) == 0,
		"a 4 MiB buffer, mapped, and a pipe"))
		return tap_exit();
	memset(p, 0x5a, SIZE);
	fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
	iov.iov_base = p;
	iov.iov_len = PAGES * 4096;
	ok(vmsplice(pipefd[1], &iov, 1, 0) == PAGES * 4096, "vmsplice of %d pages into the pipe",
	   PAGES);

	/* Pressure (level warn): the pool must not grow back meanwhile. */
	marks.warn = ~0ULL >> 1;
	marks.critical = before.watermark_critical;
	ok(ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &marks) == 0, "warn mark above MemAvailable");
	munmap(p, SIZE);
	close(fd);
	get_info(dev, &after);
	ok(after.lost_bytes - before.lost_bytes == PAGES * 4096 &&
		   sysfs_num("lost_bytes") == (long long)after.lost_bytes,
	   "INFO and sysfs count %d pages lost (%llu bytes)", PAGES,
	   (unsigned long long)(after.lost_bytes - before.lost_bytes));
	ok(after.pool_bytes == before.pool_bytes - PAGES * 4096 &&
		   after.released_bytes == before.released_bytes && after.used_bytes == 0,
	   "the pool shrank by them; released_bytes unchanged (pool %llu KiB)",
	   (unsigned long long)after.pool_bytes / 1024);
	while (read_event(reader, &ev, 500) == 0)
		if (ev.type == SPILLWAY_EVENT_LOST && ev.count == PAGES * 4096)
			got_lost = 1;
	ok(got_lost, "a LOST record with count %d pages", PAGES);
	/* The pipe still holds the pages, and their data. */
	{
		char buf[4096];

		ok(read(pipefd[0], buf, sizeof(buf)) == sizeof(buf) && buf[0] == 0x5a &&
			   buf[4095] == 0x5a,
		   "the pipe reads the data back");
	}
	close(pipefd[0]);
	close(pipefd[1]);

	usleep(3000 * 1000);
	get_info(dev, &info);
	ok(info.level == SPILLWAY_LEVEL_WARN && info.pool_bytes == after.pool_bytes,
	   "3 s at level warn (regrow_ms=1000): the pool did not grow back (%llu KiB)",
	   (unsigned long long)info.pool_bytes / 1024);

	marks.warn = before.watermark_warn;
	ok(ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &marks) == 0, "warn mark restored");
	have = wait_pool((long long)before.pool_bytes, 20000);
	ok(have == (long long)before.pool_bytes,
	   "level ok for regrow_ms: the pool grew back to %llu KiB (%lld KiB)",
	   (unsigned long long)before.pool_bytes / 1024, have / 1024);
	get_info(dev, &info);
	ok(info.requested_bytes == before.requested_bytes && info.used_bytes == 0 &&
		   info.lost_bytes == after.lost_bytes,
	   "INFO after regrow: requested and lost unchanged");
	close(reader);
	close(dev);
	return tap_exit();
}
