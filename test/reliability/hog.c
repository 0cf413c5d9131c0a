// SPDX-License-Identifier: GPL-2.0
/*
 * hog: eats anonymous memory step by step and touches every page, so that
 * MemAvailable falls steadily until the OOM killer stops it (or MAX is
 * reached, then it holds the memory for HOLD seconds).
 *
 *   hog STEP_MB INTERVAL_MS [MAX_MB [HOLD_S]]
 *
 * Prints "hog: N MB" every 64 MB.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
	uint64_t step, max = 0, total = 0;
	int interval_ms, hold_s = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: hog STEP_MB INTERVAL_MS [MAX_MB [HOLD_S]]\n");
		return 2;
	}
	step = strtoull(argv[1], NULL, 0) * MIB;
	interval_ms = atoi(argv[2]);
	if (argc > 3)
		max = strtoull(argv[3], NULL, 0) * MIB;
	if (argc > 4)
		hold_s = atoi(argv[4]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (!max || total < max) {
		char *p = mmap(NULL, step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);

		if (p == MAP_FAILED) {
			perror("hog: mmap");
			break;
		}
		/* distinct bytes per page so nothing can be deduplicated or zero-filled away */
		for (uint64_t off = 0; off < step; off += PAGE)
			memset(p + off, (int)(off / PAGE) | 1, PAGE);
		total += step;
		if (total % (64 * MIB) < step)
			printf("hog: %llu MB\n", (unsigned long long)(total / MIB));
		usleep(interval_ms * 1000);
	}
	sleep(hold_s);
	return 0;
}
