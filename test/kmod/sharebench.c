// SPDX-License-Identifier: GPL-2.0
/*
 * A measurement, not a test (not in run-tests.sh): the latency of ALLOC
 * (4 KiB, then closed) with no share, then with 64 and 512 guaranteed
 * cgroups, the allocating cgroup four levels down under limits at every
 * level.  Prints mean, median and 99th percentile of the ALLOC ioctl and
 * the longest pool lock hold (debugfs, test_ioctls=1).  Run by
 * sharebench.sh; asserts nothing.
 */
#include <inttypes.h>
#include <sys/mount.h>

#include "cgroup.h"
#include "kmod.h"

#define CGROOT "/sys/fs/cgroup"
#define BENCH  CGROOT "/spillway-bench"
#define DEEP   BENCH "/r/s/t"
#define ROUNDS 5000
#define TIMING "/sys/kernel/debug/spillway/timing"

static int dev;
static double lat[ROUNDS];

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int set_share(const char *path, uint64_t max, uint64_t min)
{
	struct spillway_share req = {
		.cgroup_fd = -1, .cgroup_id = cg_id(path), .max_bytes = max, .min_bytes = min
	};

	return ioctl(dev, SPILLWAY_IOC_SET_SHARE, &req);
}

static unsigned long long lock_max_ns(void)
{
	unsigned long long ns = 0;
	char line[128];
	FILE *f = fopen(TIMING, "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "pool_lock_max_ns %llu", &ns) == 1)
			break;
	if (f)
		fclose(f);
	return ns;
}

static void measure(int fd, const char *what)
{
	double sum = 0, t0;
	int buf, failed = 0;

	write_file(TIMING, "0");
	for (int i = 0; i < ROUNDS; i++) {
		t0 = now_ms();
		buf = alloc_buf(fd, 4096, NULL);
		lat[i] = (now_ms() - t0) * 1000;
		if (buf < 0)
			failed++;
		else
			close(buf);
		sum += lat[i];
	}
	qsort(lat, ROUNDS, sizeof(lat[0]), cmp_double);
	printf("# %s: ALLOC of 4 KiB over %d rounds: mean %.1f us, median %.1f us, p99 %.1f us;"
	       " longest pool lock hold %.1f us; %d failed\n",
	       what, ROUNDS, sum / ROUNDS, lat[ROUNDS / 2], lat[ROUNDS * 99 / 100],
	       lock_max_ns() / 1000.0, failed);
}

static void guaranteed(int from, int to, uint64_t min)
{
	char path[256];

	for (int i = from; i < to; i++) {
		snprintf(path, sizeof(path), BENCH "/g%d", i);
		mkdir(path, 0755);
		if (set_share(path, 2 * min, min))
			printf("# SET_SHARE %s: %s\n", path, strerror(errno));
	}
}

int main(void)
{
	char path[256];
	int deep;

	dev = open_dev();
	if (access(CGROOT "/cgroup.controllers", F_OK))
		mount("none", CGROOT, "cgroup2", 0, NULL);
	mkdir(BENCH, 0755);
	mkdir(BENCH "/r", 0755);
	mkdir(BENCH "/r/s", 0755);
	mkdir(DEEP, 0755);
	deep = open_in(DEEP);
	if (deep < 0)
		return 1;

	measure(dev, "no share, root cgroup");
	measure(deep, "no share, 4 levels down");
	set_share(BENCH, 60 * MiB, 0);
	set_share(BENCH "/r", 50 * MiB, 0);
	set_share(BENCH "/r/s", 40 * MiB, 0);
	set_share(DEEP, 30 * MiB, 0);
	measure(deep, "a max on each of 4 levels");
	guaranteed(0, 64, 256 * 1024);
	measure(deep, "and 64 guaranteed cgroups");
	guaranteed(64, 512, 32 * 1024);
	for (int i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), BENCH "/g%d", i);
		set_share(path, 64 * 1024, 32 * 1024);
	}
	measure(deep, "and 512 guaranteed cgroups");

	close(deep);
	for (int i = 0; i < 512; i++) {
		snprintf(path, sizeof(path), BENCH "/g%d", i);
		rmdir(path);
	}
	cg_rmdir(DEEP);
	rmdir(BENCH "/r/s");
	rmdir(BENCH "/r");
	rmdir(BENCH);
	close(dev);
	return 0;
}
