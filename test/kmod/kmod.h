/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the in-VM module tests: the device, its sysfs attributes, memory
 * figures, pressure phases.  TAP output is test/include/tap.h, built with
 * TAP_UNNUMBERED: each program prints "ok - name" / "not ok - name" lines and
 * "# " diagnostics; run-tests.sh numbers them across programs and prints the
 * plan.
 */
#ifndef SPILLWAY_TEST_KMOD_H
#define SPILLWAY_TEST_KMOD_H

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../kmod/include/uapi/spillway.h"
#include "../include/tap.h"

#define SYSFS_DIR "/sys/class/misc/spillway/"
#define MiB	  (1024ULL * 1024)

static inline int open_dev(void)
{
	int fd = open("/dev/" SPILLWAY_DEVICE_NAME, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		ok(0, "open /dev/spillway");
		diag("%s", strerror(errno));
		exit(1);
	}
	return fd;
}

static inline int get_info(int fd, struct spillway_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl(fd, SPILLWAY_IOC_INFO, info);
}

/* Reads a number from a sysfs attribute of the device; -1 on error. */
static inline long long sysfs_num(const char *name)
{
	char path[256], buf[64];
	long long val = -1;
	FILE *f;

	snprintf(path, sizeof(path), SYSFS_DIR "%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		val = strtoll(buf, NULL, 0);
	fclose(f);
	return val;
}

static inline int sysfs_str(const char *name, char *buf, size_t len)
{
	char path[256];
	FILE *f;
	int ret = -1;

	snprintf(path, sizeof(path), SYSFS_DIR "%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, (int)len, f)) {
		buf[strcspn(buf, "\n")] = 0;
		ret = 0;
	}
	fclose(f);
	return ret;
}

/* Writes @val to a sysfs attribute; returns 0 or the errno of write(). */
static inline int sysfs_write(const char *name, const char *val)
{
	char path[256];
	int fd, err = 0;

	snprintf(path, sizeof(path), SYSFS_DIR "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return errno;
	if (write(fd, val, strlen(val)) < 0)
		err = errno;
	close(fd);
	return err;
}

/* MemAvailable from /proc/meminfo, bytes. */
static inline unsigned long long mem_available(void)
{
	unsigned long long kb = 0;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Allocates a buffer; returns its fd or -1 with errno set. */
static inline int alloc_buf(int dev, uint64_t size, uint64_t *id)
{
	struct spillway_alloc req = { .size = size };

	if (ioctl(dev, SPILLWAY_IOC_ALLOC, &req))
		return -1;
	if (id)
		*id = req.id;
	return req.fd;
}

/* Reads one event record within @ms milliseconds; 0 on success. */
static inline int read_event(int fd, struct spillway_event *ev, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	return read(fd, ev, sizeof(*ev)) == (ssize_t)sizeof(*ev) ? 0 : -1;
}

/* The kernel's count of OOM kills since boot (/proc/vmstat oom_kill). */
static inline unsigned long long oom_kills(void)
{
	unsigned long long n = 0;
	char line[128];
	FILE *f = fopen("/proc/vmstat", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "oom_kill %llu", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/*
 * Before a memory-pressure phase: lock this process's pages (its code and
 * libc come over 9p in the test VM and must not need reading back under
 * pressure) and hold the output.  A child of fork() inherits neither lock.
 */
static inline void pressure_begin(void)
{
	static char buf[1 << 16];

	fflush(stdout);
	setvbuf(stdout, buf, _IOFBF, sizeof(buf));
	if (mlockall(MCL_CURRENT))
		diag("mlockall: %s", strerror(errno));
	tap_hold_output = 1;
}

static inline void pressure_end(void)
{
	tap_hold_output = 0;
	munlockall();
	fflush(stdout);
}

#endif /* SPILLWAY_TEST_KMOD_H */
