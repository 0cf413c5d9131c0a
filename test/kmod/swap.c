// SPDX-License-Identifier: GPL-2.0
/*
 * The swap signals, in a VM with swap (skipped without): free swap under
 * swap_warn_mb is WARN with reason SWAP_FREE, and a hog larger than RAM
 * drives the swap-in + swap-out rate over swap_rate_critical.  Needs
 * pool_mb=0 watermark_warn_mb=2 watermark_critical_mb=1 swap_warn_mb=<more
 * than the swap> swap_rate_warn=0 swap_rate_critical=64 watchdog_ms=100.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "kmod.h"

#define HOG (1280 * MiB)

int main(void)
{
	struct spillway_info info;
	struct spillway_event ev;
	int dev = open_dev(), reader, status, saw_rate = 0;
	unsigned long long max_rate = 0;
	double t0;
	pid_t pid;

	reader = open("/dev/spillway", O_RDONLY | O_NONBLOCK);
	if (get_info(dev, &info) || !info.swap_free) {
		ok(1, "swap signals # SKIP the VM has no swap");
		return 0;
	}
	ok(info.level == SPILLWAY_LEVEL_WARN && (info.reason & SPILLWAY_REASON_SWAP_FREE),
	   "free swap (%llu MiB) under swap_warn_mb: level warn, reason SWAP_FREE",
	   (unsigned long long)info.swap_free / MiB);

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char *p =
			mmap(NULL, HOG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			_exit(1);
		for (int pass = 0; pass < 3; pass++)
			for (size_t i = 0; i < HOG; i += 4096)
				p[i] = (char)pass;
		_exit(0);
	}
	for (t0 = now_ms(); now_ms() - t0 < 60000 && !saw_rate;) {
		if (read_event(reader, &ev, 1000))
			continue;
		if (ev.swap_rate > max_rate)
			max_rate = ev.swap_rate;
		saw_rate = ev.type == SPILLWAY_EVENT_LEVEL && ev.level == SPILLWAY_LEVEL_CRITICAL &&
			   (ev.reason & SPILLWAY_REASON_SWAP_RATE);
	}
	ok(saw_rate, "a hog larger than RAM: level critical, reason SWAP_RATE (rate %llu pages/s)",
	   (unsigned long long)max_rate);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(dev);
	return tap_exit();
}
