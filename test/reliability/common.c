// SPDX-License-Identifier: GPL-2.0
/* Shared helpers of the reliability tests (see common.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

const char *errname(int err)
{
	static __thread char other[16];

	switch (err) {
	case 0:
		return "OK";
	case EPERM:
		return "EPERM";
	case ENOENT:
		return "ENOENT";
	case EBADF:
		return "EBADF";
	case EAGAIN:
		return "EAGAIN";
	case ENOMEM:
		return "ENOMEM";
	case EACCES:
		return "EACCES";
	case EFAULT:
		return "EFAULT";
	case EBUSY:
		return "EBUSY";
	case EEXIST:
		return "EEXIST";
	case ENODEV:
		return "ENODEV";
	case EINVAL:
		return "EINVAL";
	case EMFILE:
		return "EMFILE";
	case ENOTTY:
		return "ENOTTY";
	case ENOSPC:
		return "ENOSPC";
	case ESPIPE:
		return "ESPIPE";
	case ERANGE:
		return "ERANGE";
	case ENOSYS:
		return "ENOSYS";
	case EOVERFLOW:
		return "EOVERFLOW";
	case EOPNOTSUPP:
		return "EOPNOTSUPP";
	case EDQUOT:
		return "EDQUOT";
	case EINTR:
		return "EINTR";
	case EIO:
		return "EIO";
	case ENXIO:
		return "ENXIO";
	}
	snprintf(other, sizeof(other), "errno %d", err);
	return other;
}

bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return false;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end)
		return false;
	*out = v;
	return true;
}

uint64_t seed_from_arg_or_clock(const char *arg)
{
	struct timespec ts;
	uint64_t seed;

	if (arg && parse_size(arg, &seed))
		return seed;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000003ULL ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
}

int dev_open(int flags)
{
	return open(DEV_PATH, flags | O_CLOEXEC);
}

int spw_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) == 0 ? 0 : errno;
}

int spw_info(int fd, struct spillway_info *info)
{
	memset(info, 0, sizeof(*info));
	return spw_ioctl(fd, SPILLWAY_IOC_INFO, info);
}

int spw_version(int fd, struct spillway_version *v)
{
	memset(v, 0, sizeof(*v));
	return spw_ioctl(fd, SPILLWAY_IOC_VERSION, v);
}

bool sysfs_u64(const char *attr, uint64_t *out)
{
	char path[256], buf[64], *end;
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), SYSFS_DIR "/%s", attr);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok)
		return false;
	errno = 0;
	*out = strtoull(buf, &end, 10);
	return !errno && end != buf;
}

uint64_t mem_available_exact(void)
{
	char line[256];
	uint64_t avail_kb = 0, pcp_pages = 0, v;
	FILE *f = fopen("/proc/meminfo", "re");

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "MemAvailable: %" SCNu64, &v) == 1)
				avail_kb = v;
		fclose(f);
	}
	f = fopen("/proc/zoneinfo", "re");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, " count: %" SCNu64, &v) == 1)
				pcp_pages += v;
		fclose(f);
	}
	return avail_kb * 1024 + pcp_pages * PAGE;
}

int lowest_free_fd(void)
{
	int fd = open("/", O_RDONLY | O_PATH | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
