// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: attributes of the misc device, /sys/class/misc/spillway/.
 *
 * Reads come from the same snapshot as SPILLWAY_IOC_INFO.  Writable
 * attributes are mode 0644 and also check CAP_SYS_ADMIN, since a root-owned
 * file may be opened by a process that later drops its capabilities.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/device.h>
#include <linux/kstrtox.h>
#include <linux/sysfs.h>

#include "spillway_internal.h"

#define SPILLWAY_INFO_ATTR(name, expr)					\
static ssize_t name##_show(struct device *dev,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	struct spillway_info info;					\
									\
	spillway_info_fill(&info);					\
	return sysfs_emit(buf, "%llu\n", (unsigned long long)(expr));	\
}

SPILLWAY_INFO_ATTR(pool_bytes, info.pool_bytes)
SPILLWAY_INFO_ATTR(requested_bytes, info.requested_bytes)
SPILLWAY_INFO_ATTR(used_bytes, info.used_bytes)
SPILLWAY_INFO_ATTR(free_bytes, info.free_bytes)
SPILLWAY_INFO_ATTR(buffers, info.buffers)
SPILLWAY_INFO_ATTR(events, info.events)
SPILLWAY_INFO_ATTR(released_bytes, info.released_bytes)
SPILLWAY_INFO_ATTR(lost_bytes, info.lost_bytes)
SPILLWAY_INFO_ATTR(lent_bytes, info.lent_bytes)
SPILLWAY_INFO_ATTR(watermark_warn_mb, info.watermark_warn >> 20)
SPILLWAY_INFO_ATTR(watermark_critical_mb, info.watermark_critical >> 20)
SPILLWAY_INFO_ATTR(pool_floor_mb, info.floor_bytes >> 20)

static ssize_t level_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct spillway_info info;

	spillway_info_fill(&info);
	return sysfs_emit(buf, "%s\n", spillway_level_name(info.level));
}

/* Parses a root-only write of a number at most @max. */
static int spillway_store_u64(const char *buf, u64 max, u64 *val)
{
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = kstrtou64(buf, 0, val);
	if (ret)
		return ret;
	return *val > max ? -EINVAL : 0;
}

static ssize_t pool_bytes_store(struct device *dev,
				struct device_attribute *attr,
				const char *buf, size_t len)
{
	u64 bytes, result;
	int ret;

	ret = spillway_store_u64(buf, U64_MAX, &bytes);
	if (!ret)
		ret = spillway_set_pool_bytes(bytes, &result);
	return ret ? ret : len;
}

/* Sets one MemAvailable mark with @set, keeping the other. */
static ssize_t spillway_store_mark(const char *buf, size_t len,
				   int (*set)(u64 bytes))
{
	u64 mb;
	int ret;

	ret = spillway_store_u64(buf, U64_MAX >> 20, &mb);
	if (!ret)
		ret = set(mb << 20);
	return ret ? ret : len;
}

static ssize_t watermark_warn_mb_store(struct device *dev,
				       struct device_attribute *attr,
				       const char *buf, size_t len)
{
	return spillway_store_mark(buf, len, spillway_watchdog_set_warn_mark);
}

static ssize_t watermark_critical_mb_store(struct device *dev,
					   struct device_attribute *attr,
					   const char *buf, size_t len)
{
	return spillway_store_mark(buf, len, spillway_watchdog_set_critical_mark);
}

static ssize_t pool_floor_mb_store(struct device *dev,
				   struct device_attribute *attr,
				   const char *buf, size_t len)
{
	u64 mb;
	int ret;

	ret = spillway_store_u64(buf, ULONG_MAX >> (20 - PAGE_SHIFT), &mb);
	if (ret)
		return ret;
	spillway_pool_set_floor(mb << (20 - PAGE_SHIFT));
	return len;
}

static DEVICE_ATTR_RW(pool_bytes);
static DEVICE_ATTR_RO(requested_bytes);
static DEVICE_ATTR_RO(used_bytes);
static DEVICE_ATTR_RO(free_bytes);
static DEVICE_ATTR_RO(buffers);
static DEVICE_ATTR_RO(level);
static DEVICE_ATTR_RW(watermark_warn_mb);
static DEVICE_ATTR_RW(watermark_critical_mb);
static DEVICE_ATTR_RO(events);
static DEVICE_ATTR_RO(released_bytes);
static DEVICE_ATTR_RO(lost_bytes);
static DEVICE_ATTR_RO(lent_bytes);
static DEVICE_ATTR_RW(pool_floor_mb);

static struct attribute *spillway_attrs[] = {
	&dev_attr_pool_bytes.attr,
	&dev_attr_requested_bytes.attr,
	&dev_attr_used_bytes.attr,
	&dev_attr_free_bytes.attr,
	&dev_attr_buffers.attr,
	&dev_attr_level.attr,
	&dev_attr_watermark_warn_mb.attr,
	&dev_attr_watermark_critical_mb.attr,
	&dev_attr_events.attr,
	&dev_attr_released_bytes.attr,
	&dev_attr_lost_bytes.attr,
	&dev_attr_lent_bytes.attr,
	&dev_attr_pool_floor_mb.attr,
	NULL,
};

static const struct attribute_group spillway_group = {
	.attrs = spillway_attrs,
};

const struct attribute_group *spillway_groups[] = {
	&spillway_group,
	NULL,
};
