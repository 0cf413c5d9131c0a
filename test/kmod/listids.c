// SPDX-License-Identifier: GPL-2.0
/*
 * Issue 14 E: LIST_BUFFERS never shows a live buffer with id 0.  A thread
 * keeps about 32 buffers alive, closing the oldest and allocating a new one
 * as fast as it can, while the main thread lists until more than a million
 * entries have been seen.  A module that listed a buffer before setting its
 * id showed id 0 in about 1 of 650 entries.
 * Needs pool_mb=64.
 */
#include <pthread.h>

#include "kmod.h"

#define LIVE	32
#define ENTRIES 1000000ULL

static int dev;
static volatile int stop;
static unsigned long allocs;

static void *churn(void *unused)
{
	int fds[LIVE];
	unsigned long i;

	(void)unused;
	for (i = 0; i < LIVE; i++)
		fds[i] = -1;
	for (i = 0; !stop; i++) {
		if (fds[i % LIVE] >= 0)
			close(fds[i % LIVE]);
		fds[i % LIVE] = alloc_buf(dev, 4096, NULL);
		allocs++;
	}
	for (i = 0; i < LIVE; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return NULL;
}

int main(void)
{
	struct spillway_buffer_info entries[LIVE * 2];
	struct spillway_list req = { .entries = (uintptr_t)entries, .capacity = LIVE * 2 };
	unsigned long long seen = 0, zero = 0, calls = 0, failed = 0;
	pthread_t thread;
	double t0 = now_ms();

	dev = open_dev();
	pthread_create(&thread, NULL, churn, NULL);
	while (seen < ENTRIES) {
		if (ioctl(dev, SPILLWAY_IOC_LIST_BUFFERS, &req)) {
			failed++;
			continue;
		}
		calls++;
		for (uint32_t i = 0; i < req.count && i < req.capacity; i++) {
			seen++;
			if (!entries[i].id)
				zero++;
		}
	}
	stop = 1;
	pthread_join(thread, NULL);
	diag("%llu entries in %llu listings, %lu allocations meanwhile, %.1f s", seen, calls,
	     allocs, (now_ms() - t0) / 1000);
	ok(!failed, "every LIST_BUFFERS succeeded (%llu failed)", failed);
	ok(allocs > 1000, "buffers came and went while listing (%lu)", allocs);
	ok(seen >= ENTRIES && !zero, "no entry with id 0 in %llu entries (%llu)", seen, zero);
	close(dev);
	return tap_exit();
}
