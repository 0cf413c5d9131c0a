// SPDX-License-Identifier: GPL-2.0
/*
 * oomjob: a job whose output can be checked, that runs for a while and
 * notices when it was frozen.  It keeps a working set of WS_MB and runs STEPS
 * rounds over it, each folding every page into a running hash, sleeping
 * DELAY_MS between rounds.  The result depends only on STEPS and WS_MB, so a
 * run under memory pressure must print the same result as a quiet one.
 *
 *   oomjob STEPS WS_MB DELAY_MS
 *
 * Prints "oomjob: round N" as it goes and finally
 * "oomjob: result HEX rounds N longest_gap_ms G".
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
	uint64_t steps, ws, h = 0xcbf29ce484222325ULL;
	int delay_ms;
	double last, gap = 0;
	uint64_t *mem;

	if (argc != 4) {
		fprintf(stderr, "usage: oomjob STEPS WS_MB DELAY_MS\n");
		return 2;
	}
	steps = strtoull(argv[1], NULL, 0);
	ws = strtoull(argv[2], NULL, 0) * MIB;
	delay_ms = atoi(argv[3]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	mem = malloc(ws);
	if (!mem) {
		perror("oomjob: malloc");
		return 1;
	}
	for (uint64_t i = 0; i < ws / 8; i++)
		mem[i] = i * 0x9e3779b97f4a7c15ULL;
	last = now_s();
	for (uint64_t s = 0; s < steps; s++) {
		double t;

		for (uint64_t i = 0; i < ws / 8; i += PAGE / 8) {
			mem[i] = mem[i] * 6364136223846793005ULL + s + 1;
			h = (h ^ mem[i]) * 0x100000001b3ULL;
		}
		printf("oomjob: round %" PRIu64 "\n", s + 1);
		usleep(delay_ms * 1000);
		t = now_s();
		if (t - last > gap)
			gap = t - last;
		last = t;
	}
	printf("oomjob: result %016" PRIx64 " rounds %" PRIu64 " longest_gap_ms %.0f\n", h, steps,
	       gap * 1000);
	return 0;
}
