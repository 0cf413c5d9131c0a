/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tiny TAP helpers for the in-VM module tests.  Each program prints
 * "ok - name" / "not ok - name" lines and "# " diagnostics; run-tests.sh
 * numbers them across programs and prints the plan.
 */
#ifndef SPILLWAY_TEST_TAP_H
#define SPILLWAY_TEST_TAP_H

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

#define SYSFS_DIR "/sys/class/misc/spillway/"
#define MiB (1024ULL * 1024)

static int tap_failures;

/*
 * Set while a test holds the machine under memory pressure: results stay in
 * stdout's buffer, so that the reader of the pipe (awk in run-tests.sh) does
 * not have to run, and fault its pages back in, until the pressure is over.
 */
static int tap_hold_output;

static inline void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	if (!tap_hold_output)
		fflush(stdout);
}

/* Prints one result; returns @pass so callers can stop a dependent block. */
static inline int ok(int pass, const char *fmt, ...)
{
	va_list ap;

	fputs(pass ? "ok - " : "not ok - ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	if (!tap_hold_output)
		fflush(stdout);
	if (!pass)
		tap_failures++;
	return pass;
}

/*
 * ok() for a call that must fail with errno @want: pass the call's result;
 * errno is read here, after the call (argument order is unspecified).
 */
static inline int ok_errno(long ret, int want, const char *name)
{
	int err = errno;

	if (ret == -1 && err == want)
		return ok(1, "%s -> %s", name, strerror(want));
	ok(0, "%s -> %s", name, strerror(want));
	diag("got ret=%ld errno=%d (%s)", ret, ret == -1 ? err : 0,
	     ret == -1 ? strerror(err) : "success");
	return 0;
}

static inline int tap_exit(void)
{
	return tap_failures ? 1 : 0;
}

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

#endif /* SPILLWAY_TEST_TAP_H */
