// SPDX-License-Identifier: GPL-2.0
/*
 * A measurement, not a test: how long the pool lock is held, and how long
 * an mmap and a release take, for one buffer of SIZE_MB (default: the
 * whole pool).  Reads the module's test-only timing from debugfs
 * (test_ioctls=1).  Run by test/kmod/lockhold.sh in a VM with several GiB.
 *
 *   lockhold [SIZE_MB]
 */
#include <sys/mman.h>

#include "kmod.h"

#define TIMING "/sys/kernel/debug/spillway/timing"

static void timing_reset(void)
{
	FILE *f = fopen(TIMING, "w");

	if (f) {
		fputs("0\n", f);
		fclose(f);
	}
}

static void timing_print(const char *when)
{
	char line[128];
	FILE *f = fopen(TIMING, "r");

	if (!f) {
		diag("%s: no %s (load with test_ioctls=1)", when, TIMING);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		printf("%s %s\n", when, line);
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	int dev = open_dev(), fd;
	uint64_t size = argc > 1 ? strtoull(argv[1], NULL, 0) * MiB
				 : (uint64_t)sysfs_num("free_bytes");
	double t0, t1;
	char *p;

	printf("buffer_mb %llu\n", (unsigned long long)(size / MiB));
	timing_reset();
	t0 = now_ms();
	fd = alloc_buf(dev, size, NULL);
	t1 = now_ms();
	if (fd < 0) {
		printf("alloc failed: %s\n", strerror(errno));
		return 1;
	}
	printf("alloc_ms %.1f\n", t1 - t0);
	timing_print("alloc");

	timing_reset();
	t0 = now_ms();
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	t1 = now_ms();
	if (p == MAP_FAILED) {
		printf("mmap failed: %s\n", strerror(errno));
		return 1;
	}
	printf("mmap_ms %.1f\n", t1 - t0);
	timing_print("mmap");
	for (uint64_t i = 0; i < size; i += 4096)
		p[i] = 1;
	munmap(p, size);

	timing_reset();
	t0 = now_ms();
	close(fd);
	/* The release runs in close(): the last reference was the fd. */
	t1 = now_ms();
	printf("release_ms %.1f\n", t1 - t0);
	timing_print("release");
	close(dev);
	return 0;
}
