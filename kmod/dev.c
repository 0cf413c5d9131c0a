// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: /dev/spillway, its file operations and its event stream.  The
 * ioctls are in ioctl.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/slab.h>

#include "spillway_internal.h"

/**
 * struct spillway_file - one open of /dev/spillway
 * @lock:	serialises read() on this file
 * @cursor:	sequence number of the next event record this file reads
 * @share:	the cgroup v2 of the opener at open(), charged for the buffers
 *		allocated through this file (as the opener's uid is)
 */
struct spillway_file {
	struct mutex lock;	/* one read() at a time on this file */
	u64 cursor;
	struct spillway_share_node *share;
};

static int spillway_open(struct inode *inode, struct file *file)
{
	struct spillway_file *sf;

	sf = kzalloc(sizeof(*sf), GFP_KERNEL);
	if (!sf)
		return -ENOMEM;
	sf->share = spillway_share_open();
	if (IS_ERR(sf->share)) {
		kfree(sf);
		return -ENOMEM;
	}
	mutex_init(&sf->lock);
	sf->cursor = spillway_events_cursor();
	file->private_data = sf;
	return stream_open(inode, file);
}

static int spillway_release(struct inode *inode, struct file *file)
{
	struct spillway_file *sf = file->private_data;

	/* Before the share: the loans hold references to it too. */
	spillway_loan_release(file);
	spillway_share_close(sf->share);
	kfree(sf);
	return 0;
}

/* The cgroup charged for what is allocated through @file: its opener's. */
struct spillway_share_node *spillway_file_share(struct file *file)
{
	struct spillway_file *sf = file->private_data;

	return sf->share;
}

static ssize_t spillway_read(struct file *file, char __user *ubuf, size_t len,
			     loff_t *ppos)
{
	struct spillway_file *sf = file->private_data;
	ssize_t ret;

	if (len < sizeof(struct spillway_event))
		return -EINVAL;
	if (mutex_lock_interruptible(&sf->lock))
		return -ERESTARTSYS;
	ret = spillway_events_read(&sf->cursor, ubuf, len,
				   file->f_flags & O_NONBLOCK);
	mutex_unlock(&sf->lock);
	return ret;
}

static __poll_t spillway_poll(struct file *file, poll_table *wait)
{
	struct spillway_file *sf = file->private_data;

	poll_wait(file, &spillway.events.wait, wait);
	if (spillway_events_pending(READ_ONCE(sf->cursor)))
		return EPOLLIN | EPOLLRDNORM | EPOLLPRI;
	return 0;
}

void spillway_info_fill(struct spillway_info *info)
{
	memset(info, 0, sizeof(*info));
	spillway_pool_fill_info(info);
	info->user_limit_bytes = (u64)spillway_user_limit_mb << 20;
	info->events = spillway_events_produced();
	spillway_watchdog_fill_info(info);
}

/* Resizes the pool; shared by the ioctl and the sysfs attribute. */
int spillway_set_pool_bytes(u64 bytes, u64 *result)
{
	unsigned long pages;

	/* More than RAM can never be had: a mistake, not a shortage. */
	if (bytes > (u64)totalram_pages() << PAGE_SHIFT)
		return -EINVAL;
	pages = spillway_pool_resize(PAGE_ALIGN(bytes) >> PAGE_SHIFT);
	*result = (u64)pages << PAGE_SHIFT;
	return 0;
}

const struct file_operations spillway_fops = {
	.owner = THIS_MODULE,
	.open = spillway_open,
	.release = spillway_release,
	.read = spillway_read,
	.poll = spillway_poll,
	.unlocked_ioctl = spillway_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};
