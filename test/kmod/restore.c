// SPDX-License-Identifier: GPL-2.0
/*
 * Watermark changes and resizes against the watchdog's release:
 * SET_WATERMARKS returns after a sample against the new marks (the level
 * and any release are done), no release decided against old marks follows
 * it, and a RESIZE after the marks are restored reaches its target, also
 * after resizes and level swings ran concurrently.
 * Needs the module loaded with pool_mb=32 watchdog_ms=10.
 */
#include <pthread.h>

#include "kmod.h"

#define POOL	  (32 * MiB)
#define HUGE_MARK (1ULL << 40)
#define ROUNDS	  100

static int dev;
static uint64_t warn0, crit0;
static volatile int stop;

static int set_marks(uint64_t warn, uint64_t critical)
{
	struct spillway_watermarks w = { .warn = warn, .critical = critical };

	return ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &w) ? errno : 0;
}

static uint64_t resize(uint64_t bytes)
{
	struct spillway_resize req = { .pool_bytes = bytes };

	return ioctl(dev, SPILLWAY_IOC_RESIZE, &req) ? 1 : req.result_bytes;
}

static void *resizer(void *arg)
{
	unsigned int seed = 1;

	while (!stop)
		resize((16 + rand_r(&seed) % 33) * MiB);
	return arg;
}

static void *swinger(void *arg)
{
	unsigned int seed = 2;

	while (!stop) {
		set_marks(HUGE_MARK, HUGE_MARK);
		usleep(rand_r(&seed) % 15000);
		set_marks(warn0, crit0);
		usleep(rand_r(&seed) % 15000);
	}
	return arg;
}

int main(void)
{
	int crit_bad = 0, ok_bad = 0, short_bad = 0, late_bad = 0, err = 0;
	unsigned int seed = 3;
	struct spillway_info info;
	pthread_t th[2];
	uint64_t got, released;

	dev = open_dev();
	if (get_info(dev, &info) || info.pool_bytes != POOL) {
		ok(0, "pool of 32 MiB at load");
		return tap_exit();
	}
	warn0 = info.watermark_warn;
	crit0 = info.watermark_critical;

	for (int i = 0; i < ROUNDS; i++) {
		err |= set_marks(HUGE_MARK, HUGE_MARK);
		get_info(dev, &info);
		if (info.level != SPILLWAY_LEVEL_CRITICAL || info.pool_bytes != 0)
			crit_bad++;
		err |= set_marks(warn0, crit0);
		get_info(dev, &info);
		if (info.level != SPILLWAY_LEVEL_OK)
			ok_bad++;
		got = resize(POOL);
		if (got != POOL)
			short_bad++;
		usleep(rand_r(&seed) % 15000);
		if (sysfs_num("pool_bytes") != (long long)POOL)
			late_bad++;
	}
	ok(!err, "%d rounds of SET_WATERMARKS critical, then back", ROUNDS);
	ok(!crit_bad,
	   "on return from SET_WATERMARKS to critical marks, level critical and the pool given back (%d rounds wrong)",
	   crit_bad);
	ok(!ok_bad,
	   "on return from SET_WATERMARKS back to the old marks, level ok (%d rounds wrong)",
	   ok_bad);
	ok(!short_bad, "RESIZE right after the marks are back reaches 32 MiB (%d rounds short)",
	   short_bad);
	ok(!late_bad, "no release follows: pool still 32 MiB 0 to 15 ms later (%d rounds short)",
	   late_bad);

	get_info(dev, &info);
	released = info.released_bytes;
	pthread_create(&th[0], NULL, resizer, NULL);
	pthread_create(&th[1], NULL, swinger, NULL);
	usleep(2 * 1000 * 1000);
	stop = 1;
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	err = set_marks(warn0, crit0);
	got = resize(POOL);
	usleep(100 * 1000);
	err |= get_info(dev, &info);
	ok(!err && info.released_bytes > released,
	   "2 s of concurrent resizes and level swings released chunks (%llu MiB)",
	   (unsigned long long)((info.released_bytes - released) / MiB));
	ok(got == POOL && info.pool_bytes == POOL && info.level == SPILLWAY_LEVEL_OK,
	   "then marks restored, RESIZE gives 32 MiB and it stays (result %llu, pool %llu, level %u)",
	   (unsigned long long)got, (unsigned long long)info.pool_bytes, info.level);
	close(dev);
	return tap_exit();
}
