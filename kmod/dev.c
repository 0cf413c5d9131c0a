// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: /dev/spillway, its ioctls and its event stream.
 *
 * Each ioctl handler copies in, validates (EINVAL for a wrong size, flags or
 * reserved field; EPERM without CAP_SYS_ADMIN where needed), acts and copies
 * out, in that order.  Unknown commands get ENOTTY.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/dma-buf.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "spillway_internal.h"

/**
 * struct spillway_file - one open of /dev/spillway
 * @lock:	serialises read() on this file
 * @cursor:	sequence number of the next event record this file reads
 */
struct spillway_file {
	struct mutex lock;
	u64 cursor;
};

static int open_spillway(struct inode *inode, struct file *file)
{
	struct spillway_file *sf;

	sf = kzalloc(sizeof(*sf), GFP_KERNEL);
	if (!sf)
		return -ENOMEM;
	mutex_init(&sf->lock);
	sf->cursor = spillway_events_cursor();
	file->private_data = sf;
	return stream_open(inode, file);
}

static int release_spillway(struct inode *inode, struct file *file)
{
	kfree(file->private_data);
	return 0;
}

static ssize_t read_spillway(struct file *file, char __user *ubuf, size_t len,
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

static __poll_t poll_spillway(struct file *file, poll_table *wait)
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

static long spillway_ioctl_version(void __user *uarg)
{
	struct spillway_version ver = {
		.major = SPILLWAY_ABI_MAJOR,
		.minor = SPILLWAY_ABI_MINOR,
		.event_size = sizeof(struct spillway_event),
		.test_ioctls = spillway_test_ioctls,
	};

	return copy_to_user(uarg, &ver, sizeof(ver)) ? -EFAULT : 0;
}

static long spillway_ioctl_info(void __user *uarg)
{
	struct spillway_info info;

	spillway_info_fill(&info);
	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long spillway_ioctl_alloc(void __user *uarg)
{
	struct spillway_alloc req;
	struct dma_buf *dmabuf;
	u64 id;
	int fd;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.reserved[0] || req.reserved[1])
		return -EINVAL;
	/* The pool is a page multiple, so the rounding cannot overflow. */
	if (!req.size || req.size > spillway_pool_bytes())
		return -EINVAL;

	dmabuf = spillway_buffer_export(PAGE_ALIGN(req.size), &id);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(dmabuf);
		return fd;
	}
	req.fd = fd;
	req.id = id;
	if (copy_to_user(uarg, &req, sizeof(req))) {
		put_unused_fd(fd);
		dma_buf_put(dmabuf);
		return -EFAULT;
	}
	/* The fd table now owns the dma-buf's file reference. */
	fd_install(fd, dmabuf->file);
	return 0;
}

static long spillway_ioctl_resize(void __user *uarg)
{
	struct spillway_resize req;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.reserved0 || req.reserved[0] || req.reserved[1])
		return -EINVAL;
	ret = spillway_set_pool_bytes(req.pool_bytes, &req.result_bytes);
	if (ret)
		return ret;
	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
}

static long spillway_ioctl_set_watermarks(void __user *uarg)
{
	struct spillway_watermarks req;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.reserved0 || req.reserved[0] || req.reserved[1])
		return -EINVAL;
	return spillway_watchdog_set_marks(req.warn, req.critical);
}

static long spillway_ioctl_list(void __user *uarg)
{
	struct spillway_buffer_info *entries = NULL;
	struct spillway_list req;
	size_t bytes;
	long ret = 0;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.reserved[0] || req.reserved[1] || req.capacity > SPILLWAY_LIST_MAX)
		return -EINVAL;
	if (req.capacity) {
		entries = kvcalloc(req.capacity, sizeof(*entries), GFP_KERNEL);
		if (!entries)
			return -ENOMEM;
	}
	req.count = spillway_pool_list(entries, req.capacity);
	bytes = min(req.count, req.capacity) * sizeof(*entries);
	if (bytes && copy_to_user(u64_to_user_ptr(req.entries), entries, bytes))
		ret = -EFAULT;
	else if (copy_to_user(uarg, &req, sizeof(req)))
		ret = -EFAULT;
	kvfree(entries);
	return ret;
}

/* Test-only: proves a range pins the way cuMemHostRegister pins it. */
static long spillway_ioctl_test_pin(void __user *uarg)
{
	struct spillway_test_pin req;
	struct page **pages;
	long pinned;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.reserved0 || req.reserved[0] || req.reserved[1])
		return -EINVAL;
	if (!req.size || req.size > SZ_1G || !PAGE_ALIGNED(req.size) ||
	    !PAGE_ALIGNED(req.addr))
		return -EINVAL;

	pages = kvmalloc_array(req.size >> PAGE_SHIFT, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	pinned = pin_user_pages_fast(req.addr, req.size >> PAGE_SHIFT,
				     FOLL_LONGTERM | FOLL_WRITE, pages);
	if (pinned > 0)
		unpin_user_pages(pages, pinned);
	kvfree(pages);
	if (pinned < 0)
		return pinned;
	req.pinned = pinned;
	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
}

/* The full command for a known ioctl number, or 0. */
static unsigned int spillway_ioctl_known(unsigned int nr)
{
	switch (nr) {
	case _IOC_NR(SPILLWAY_IOC_VERSION):
		return SPILLWAY_IOC_VERSION;
	case _IOC_NR(SPILLWAY_IOC_INFO):
		return SPILLWAY_IOC_INFO;
	case _IOC_NR(SPILLWAY_IOC_ALLOC):
		return SPILLWAY_IOC_ALLOC;
	case _IOC_NR(SPILLWAY_IOC_RESIZE):
		return SPILLWAY_IOC_RESIZE;
	case _IOC_NR(SPILLWAY_IOC_SET_WATERMARKS):
		return SPILLWAY_IOC_SET_WATERMARKS;
	case _IOC_NR(SPILLWAY_IOC_LIST_BUFFERS):
		return SPILLWAY_IOC_LIST_BUFFERS;
	case _IOC_NR(SPILLWAY_IOC_TEST_PIN):
		return spillway_test_ioctls ? SPILLWAY_IOC_TEST_PIN : 0;
	default:
		return 0;
	}
}

static long ioctl_spillway(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	unsigned int known;

	known = spillway_ioctl_known(_IOC_NR(cmd));
	if (_IOC_TYPE(cmd) != SPILLWAY_IOC_MAGIC || !known)
		return -ENOTTY;
	/* A known number with another size or direction: a wrong struct. */
	if (cmd != known)
		return -EINVAL;

	switch (cmd) {
	case SPILLWAY_IOC_VERSION:
		return spillway_ioctl_version(uarg);
	case SPILLWAY_IOC_INFO:
		return spillway_ioctl_info(uarg);
	case SPILLWAY_IOC_ALLOC:
		return spillway_ioctl_alloc(uarg);
	case SPILLWAY_IOC_RESIZE:
		return spillway_ioctl_resize(uarg);
	case SPILLWAY_IOC_SET_WATERMARKS:
		return spillway_ioctl_set_watermarks(uarg);
	case SPILLWAY_IOC_LIST_BUFFERS:
		return spillway_ioctl_list(uarg);
	case SPILLWAY_IOC_TEST_PIN:
		return spillway_ioctl_test_pin(uarg);
	default:
		return -ENOTTY;
	}
}

const struct file_operations spillway_fops = {
	.owner = THIS_MODULE,
	.open = open_spillway,
	.release = release_spillway,
	.read = read_spillway,
	.poll = poll_spillway,
	.unlocked_ioctl = ioctl_spillway,
	.compat_ioctl = compat_ptr_ioctl,
};
