/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the reliability tests: a seedable RNG, the device and
 * its sysfs attributes, errno names.  TAP output is test/include/tap.h's,
 * unnumbered ("ok - NAME", "# ..."): run-in-vm.sh numbers the lines.
 */
#ifndef SPILLWAY_RELIABILITY_COMMON_H
#define SPILLWAY_RELIABILITY_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spillway.h"
#include "tap.h" /* test/include: ok(), diag(); built with TAP_UNNUMBERED */

#define PAGE	  ((uint64_t)4096)
#define MIB	  ((uint64_t)1 << 20)
#define DEV_PATH  "/dev/" SPILLWAY_DEVICE_NAME
#define SYSFS_DIR "/sys/class/misc/" SPILLWAY_DEVICE_NAME

/* Addresses no user pointer may reach: kernel direct map, kernel text, non-canonical. */
#define KERNEL_PTR   ((void *)0xffff888000000000ULL)
#define KTEXT_PTR    ((void *)0xffffffff81000000ULL)
#define NONCANON_PTR ((void *)0x0000800000000000ULL)

struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *r)
{
	/* splitmix64: tiny, good enough, and reproducible from the printed seed */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

static inline bool rng_chance(struct rng *r, unsigned int percent)
{
	return rng_below(r, 100) < percent;
}

static inline uint64_t round_page(uint64_t v)
{
	return (v + PAGE - 1) & ~(PAGE - 1);
}

const char *errname(int err);

/* Parses "123", "4k", "16M", "1G"; returns false on junk. */
bool parse_size(const char *s, uint64_t *out);

uint64_t seed_from_arg_or_clock(const char *arg);

int dev_open(int flags);
int spw_ioctl(int fd, unsigned long cmd, void *arg); /* 0 or errno */
int spw_info(int fd, struct spillway_info *info);    /* 0 or errno */
int spw_version(int fd, struct spillway_version *v);

/* Reads an unsigned decimal sysfs attribute; false when absent or unparsable. */
bool sysfs_u64(const char *attr, uint64_t *out);

/* MemAvailable plus the pages parked on per-cpu free lists, bytes (see notes/kernel.md). */
uint64_t mem_available_exact(void);

/* Lowest free fd number: an fd leaked by a failed call shows up as a change. */
int lowest_free_fd(void);

double now_s(void);

/* TAP */

#endif
