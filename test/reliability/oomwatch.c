// SPDX-License-Identifier: GPL-2.0
/*
 * oomwatch: runs a memory hog and watches, on one clock (CLOCK_MONOTONIC, as
 * each thing is seen), what happens: the module's events, the kernel's OOM
 * kills (from /dev/kmsg), MemAvailable (sampled) and the hog's end.
 *
 *   oomwatch [-i SAMPLE_MS] [-t TIMEOUT_S] [-s SETTLE_S] [-c CGROUP] -- HOG ARGS...
 *
 * With -c it also samples the cgroup v2 CGROUP's "frozen" state (cgroup.events).
 * Prints one line per event and OOM kill, then a summary line
 *   OOMWATCH lowest_avail_kb=N warn_s=T critical_s=T release_s=T oom_s=T
 *            oom_kills=N killed=PID:COMM,... warn_avail_kb=N hog=STATUS
 *            frozen_periods=N frozen_ms=N
 * (times in seconds since the hog started; -1 = never).  It stops SETTLE_S
 * after the hog is gone and the level is back to ok, or at TIMEOUT_S.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static uint64_t mem_available_kb(void)
{
	char line[128];
	uint64_t v = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %" SCNu64, &v) == 1)
			break;
	fclose(f);
	return v;
}

/* 1 when the cgroup reports itself frozen, 0 when not, -1 when unknown */
static int cgroup_frozen(const char *dir)
{
	char path[512], line[64];
	int frozen = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.events", dir);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "frozen %d", &frozen) == 1)
			break;
	fclose(f);
	return frozen;
}

int main(int argc, char **argv)
{
	const char *cgroup = NULL;
	int frozen_periods = 0, was_frozen = 0;
	double frozen_total = 0, frozen_since = 0;
	int sample_ms = 50, timeout_s = 120, settle_s = 3, opt, dev, kmsg, status = 0;
	double t0, warn_s = -1, crit_s = -1, release_s = -1, oom_s = -1, low_s = -1;
	double hog_end = -1;
	uint64_t low_kb = UINT64_MAX, warn_avail_kb = 0;
	char killed[1024] = "";
	int oom_kills = 0;
	uint32_t level = 0;
	pid_t hog;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "+i:t:s:c:")) != -1) {
		switch (opt) {
		case 'c':
			cgroup = optarg;
			break;
		case 'i':
			sample_ms = atoi(optarg);
			break;
		case 't':
			timeout_s = atoi(optarg);
			break;
		case 's':
			settle_s = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: oomwatch [-i SAMPLE_MS] [-t TIMEOUT_S] [-s SETTLE_S] [-c CGROUP]"
				" -- HOG...\n");
			return 2;
		}
	}
	if (optind >= argc)
		return 2;
	dev = dev_open(O_RDONLY | O_NONBLOCK);
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (dev < 0 || kmsg < 0) {
		perror("oomwatch: open /dev/spillway or /dev/kmsg");
		return 1;
	}
	lseek(kmsg, 0, SEEK_END); /* only what happens from now on */
	{
		struct spillway_event drop[SPILLWAY_EVENT_QUEUE_LEN];

		while (read(dev, drop, sizeof(drop)) > 0)
			;
	}
	t0 = now_s();
	hog = fork();
	if (hog == 0) {
		execvp(argv[optind], argv + optind);
		_exit(127);
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = dev, .events = POLLIN | POLLPRI },
				       { .fd = kmsg, .events = POLLIN } };
		double t;
		uint64_t kb;

		poll(p, 2, sample_ms);
		t = now_s() - t0;
		kb = mem_available_kb();
		if (kb && kb < low_kb) {
			low_kb = kb;
			low_s = t;
		}
		if (cgroup) {
			int fz = cgroup_frozen(cgroup) == 1;

			if (fz && !was_frozen) {
				frozen_periods++;
				frozen_since = t;
				printf("oomwatch: %.3f s the job's cgroup is frozen\n", t);
			} else if (!fz && was_frozen) {
				frozen_total += t - frozen_since;
				printf("oomwatch: %.3f s the job's cgroup is thawed\n", t);
			}
			was_frozen = fz;
		}
		if (p[0].revents) {
			struct spillway_event evs[16];
			ssize_t n = read(dev, evs, sizeof(evs));

			for (ssize_t k = 0; k < n / (ssize_t)sizeof(evs[0]); k++) {
				const struct spillway_event *e = &evs[k];

				printf("oomwatch: %.3f s event seq %" PRIu64
				       " type %u level %u<-%u reason %#x"
				       " avail %" PRIu64 " MB pool_free %" PRIu64
				       " MB count %" PRIu64 "\n",
				       t, (uint64_t)e->seq, e->type, e->level, e->prev_level,
				       e->reason, (uint64_t)e->mem_available / MIB,
				       (uint64_t)e->pool_free / MIB, (uint64_t)e->count);
				if (e->type == SPILLWAY_EVENT_LEVEL) {
					level = e->level;
					if (e->level >= SPILLWAY_LEVEL_WARN && warn_s < 0) {
						warn_s = t;
						warn_avail_kb = e->mem_available / 1024;
					}
					if (e->level == SPILLWAY_LEVEL_CRITICAL && crit_s < 0)
						crit_s = t;
				} else if (e->type == SPILLWAY_EVENT_RELEASE && release_s < 0) {
					release_s = t;
				}
			}
		}
		if (p[1].revents) {
			char rec[2048];
			ssize_t n;

			while ((n = read(kmsg, rec, sizeof(rec) - 1)) > 0 ||
			       (n < 0 && errno == EPIPE)) {
				char *msg, comm[64];
				int pid;

				if (n < 0)
					continue;
				rec[n] = 0;
				msg = strchr(rec, ';');
				msg = msg ? msg + 1 : rec;
				msg = strstr(msg, "Killed process ");
				if (!msg ||
				    sscanf(msg, "Killed process %d (%63[^)])", &pid, comm) != 2)
					continue;
				if (oom_s < 0)
					oom_s = t;
				oom_kills++;
				snprintf(killed + strlen(killed), sizeof(killed) - strlen(killed),
					 "%s%d:%s", *killed ? "," : "", pid, comm);
				printf("oomwatch: %.3f s OOM killer killed %d (%s)\n", t, pid,
				       comm);
			}
		}
		if (hog_end < 0 && waitpid(hog, &status, WNOHANG) == hog) {
			hog_end = t;
			printf("oomwatch: %.3f s the hog ended (%s %d)\n", t,
			       WIFSIGNALED(status) ? "signal" : "exit",
			       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		}
		if ((hog_end >= 0 && level == SPILLWAY_LEVEL_OK && t - hog_end >= settle_s) ||
		    t > timeout_s)
			break;
	}
	if (hog_end < 0) {
		kill(hog, SIGKILL);
		waitpid(hog, &status, 0);
	}
	if (was_frozen)
		frozen_total += now_s() - t0 - frozen_since;
	printf("OOMWATCH lowest_avail_kb=%" PRIu64 " lowest_s=%.2f warn_s=%.2f critical_s=%.2f"
	       " release_s=%.2f oom_s=%.2f oom_kills=%d killed=%s warn_avail_kb=%" PRIu64
	       " hog=%s%d level=%u frozen_periods=%d frozen_ms=%.0f\n",
	       low_kb, low_s, warn_s, crit_s, release_s, oom_s, oom_kills,
	       *killed ? killed : "none", warn_avail_kb,
	       hog_end < 0	     ? "timeout"
	       : WIFSIGNALED(status) ? "signal"
				     : "exit",
	       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), level, frozen_periods,
	       frozen_total * 1000);
	return 0;
}
