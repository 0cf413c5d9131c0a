// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: the ioctls of /dev/spillway, one table in the style of drm's
 * DRM_IOCTL_DEF.
 *
 * The dispatcher does what every ioctl shares, in this order: ENOTTY for an
 * unknown number (or a test-only one without test_ioctls=1), EINVAL for a
 * known number with another size or direction (a wrong struct), EPERM
 * without CAP_SYS_ADMIN where the table says so, EFAULT when the argument
 * can not be read.  A handler then validates its fields (EINVAL for flags or
 * reserved fields that are not zero) and acts on a kernel copy; the
 * dispatcher copies the reply out.  A handler that makes a new fd leaves
 * the file in the call: it gets its fd number only once the reply has
 * reached userspace, so a reply that can not be written leaks nothing; a
 * loan whose reply can not be written is returned at once.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/dma-buf.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>

#include "spillway_internal.h"

/**
 * struct spillway_ioctl_call - one ioctl as its handler sees it
 * @file:	the /dev/spillway file
 * @install:	set by a handler that made a new file (a dma-buf): installed
 *		as fd @fd after the reply is copied out, else released
 * @fd:		the fd number reserved for @install
 * @loan_id:	set by LEND: the loan is returned if the reply can not be
 *		written, since the caller never learns its id
 */
struct spillway_ioctl_call {
	struct file *file;
	struct file *install;
	int fd;
	u64 loan_id;
};

typedef long (*spillway_ioctl_fn)(struct spillway_ioctl_call *call, void *arg);

/* Flags of a table entry. */
#define SPILLWAY_IOCTL_ADMIN	BIT(0)	/* needs CAP_SYS_ADMIN (EPERM) */
#define SPILLWAY_IOCTL_TEST	BIT(1)	/* exists only with test_ioctls=1 */

/**
 * struct spillway_ioctl_desc - one row of the ioctl table
 * @cmd:	the full command, size and direction included
 * @handler:	acts on the kernel copy of the argument
 * @flags:	SPILLWAY_IOCTL_*
 * @size:	the argument's struct size (checked against @cmd at build time)
 */
struct spillway_ioctl_desc {
	unsigned int cmd;
	spillway_ioctl_fn handler;
	unsigned int flags;
	unsigned int size;
};

#define SPILLWAY_IOCTL_DEF(ioctl, type, fn, fl)				\
	[_IOC_NR(SPILLWAY_IOC_##ioctl)] = {				\
		.cmd = SPILLWAY_IOC_##ioctl,				\
		.handler = fn,						\
		.flags = fl,						\
		.size = sizeof(type) +					\
			BUILD_BUG_ON_ZERO(_IOC_SIZE(SPILLWAY_IOC_##ioctl) != sizeof(type)), \
	}

/* The largest argument; the kernel copy lives on the stack. */
union spillway_ioctl_arg {
	struct spillway_version version;
	struct spillway_info info;
	struct spillway_alloc alloc;
	struct spillway_resize resize;
	struct spillway_watermarks marks;
	struct spillway_list list;
	struct spillway_share share;
	struct spillway_loan loan;
	struct spillway_test_pin test_pin;
};

static long spillway_ioctl_version(struct spillway_ioctl_call *call, void *arg)
{
	struct spillway_version *ver = arg;

	memset(ver, 0, sizeof(*ver));
	ver->major = SPILLWAY_ABI_MAJOR;
	ver->minor = SPILLWAY_ABI_MINOR;
	ver->event_size = sizeof(struct spillway_event);
	ver->test_ioctls = spillway_test_ioctls;
	return 0;
}

static long spillway_ioctl_info(struct spillway_ioctl_call *call, void *arg)
{
	spillway_info_fill(arg);
	return 0;
}

/* The uid charged for what is allocated through @file: its opener's. */
uid_t spillway_file_uid(struct file *file)
{
	return from_kuid(&init_user_ns, file->f_cred->uid);
}

static long spillway_ioctl_alloc(struct spillway_ioctl_call *call, void *arg)
{
	struct spillway_alloc *req = arg;
	struct dma_buf *dmabuf;
	int fd;

	if (req->flags || req->reserved[0] || req->reserved[1])
		return -EINVAL;
	/*
	 * Above both the pool and the size asked for it can never be had: a
	 * mistake.  Under them, a pool that pressure shrank is a shortage
	 * (ENOMEM, from the pool).  Both are page multiples, so the rounding
	 * can not overflow.
	 */
	if (!req->size ||
	    req->size > max(spillway_pool_bytes(), spillway_pool_requested_bytes()))
		return -EINVAL;

	dmabuf = spillway_buffer_export(PAGE_ALIGN(req->size),
					spillway_file_uid(call->file),
					spillway_file_share(call->file), &req->id);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(dmabuf);
		return fd;
	}
	req->fd = fd;
	call->install = dmabuf->file;
	call->fd = fd;
	return 0;
}

static long spillway_ioctl_resize(struct spillway_ioctl_call *call, void *arg)
{
	struct spillway_resize *req = arg;

	if (req->flags || req->reserved0 || req->reserved[0] || req->reserved[1])
		return -EINVAL;
	return spillway_set_pool_bytes(req->pool_bytes, &req->result_bytes);
}

static long spillway_ioctl_set_watermarks(struct spillway_ioctl_call *call,
					  void *arg)
{
	struct spillway_watermarks *req = arg;

	if (req->flags || req->reserved0 || req->reserved[0] || req->reserved[1])
		return -EINVAL;
	return spillway_watchdog_set_marks(req->warn, req->critical);
}

typedef u32 (*spillway_list_fn)(struct spillway_buffer_info *out, u32 capacity,
				bool filter, uid_t only_uid);

/* LIST_BUFFERS and LIST_LOANS: the same entries, the same visibility. */
static long spillway_list_entries(struct spillway_ioctl_call *call,
				  struct spillway_list *req, spillway_list_fn list)
{
	struct spillway_buffer_info *entries = NULL;
	size_t bytes;
	long ret = 0;

	if (req->reserved[0] || req->reserved[1] || req->capacity > SPILLWAY_LIST_MAX)
		return -EINVAL;
	if (req->capacity) {
		entries = kvcalloc(req->capacity, sizeof(*entries), GFP_KERNEL_ACCOUNT);
		if (!entries)
			return -ENOMEM;
	}
	/* Other users' pids and uids are only root's business. */
	req->count = list(entries, req->capacity, !capable(CAP_SYS_ADMIN),
			  spillway_file_uid(call->file));
	bytes = min(req->count, req->capacity) * sizeof(*entries);
	if (bytes && copy_to_user(u64_to_user_ptr(req->entries), entries, bytes))
		ret = -EFAULT;
	kvfree(entries);
	return ret;
}

static long spillway_ioctl_list(struct spillway_ioctl_call *call, void *arg)
{
	return spillway_list_entries(call, arg, spillway_pool_list);
}

static long spillway_ioctl_lend(struct spillway_ioctl_call *call, void *arg)
{
	struct spillway_loan *req = arg;
	long ret;

	ret = spillway_loan_lend(call->file, req);
	if (!ret)
		call->loan_id = req->id;
	return ret;
}

static long spillway_ioctl_return(struct spillway_ioctl_call *call, void *arg)
{
	return spillway_loan_return(call->file, arg);
}

static long spillway_ioctl_list_loans(struct spillway_ioctl_call *call,
				      void *arg)
{
	return spillway_list_entries(call, arg, spillway_loan_list);
}

static long spillway_ioctl_set_share(struct spillway_ioctl_call *call, void *arg)
{
	return spillway_share_set(arg);
}

/* Every cgroup's share and usage: sizes and cgroup ids, no pid or uid. */
static long spillway_ioctl_list_shares(struct spillway_ioctl_call *call,
				       void *arg)
{
	struct spillway_share *entries = NULL;
	struct spillway_list *req = arg;
	size_t bytes;
	long ret = 0;

	if (req->reserved[0] || req->reserved[1] || req->capacity > SPILLWAY_LIST_MAX)
		return -EINVAL;
	if (req->capacity) {
		entries = kvcalloc(req->capacity, sizeof(*entries), GFP_KERNEL_ACCOUNT);
		if (!entries)
			return -ENOMEM;
	}
	req->count = spillway_share_list(entries, req->capacity);
	bytes = min(req->count, req->capacity) * sizeof(*entries);
	if (bytes && copy_to_user(u64_to_user_ptr(req->entries), entries, bytes))
		ret = -EFAULT;
	kvfree(entries);
	return ret;
}

/* Test-only: proves a range pins the way cuMemHostRegister pins it. */
static long spillway_ioctl_test_pin(struct spillway_ioctl_call *call, void *arg)
{
	struct spillway_test_pin *req = arg;
	struct page **pages;
	long pinned;

	if (req->flags || req->reserved0 || req->reserved[0] || req->reserved[1])
		return -EINVAL;
	if (!req->size || req->size > SZ_1G || !PAGE_ALIGNED(req->size) ||
	    !PAGE_ALIGNED(req->addr))
		return -EINVAL;

	pages = kvmalloc_array(req->size >> PAGE_SHIFT, sizeof(*pages),
			       GFP_KERNEL_ACCOUNT);
	if (!pages)
		return -ENOMEM;
	pinned = pin_user_pages_fast(req->addr, req->size >> PAGE_SHIFT,
				     FOLL_LONGTERM | FOLL_WRITE, pages);
	if (pinned > 0)
		unpin_user_pages(pages, pinned);
	kvfree(pages);
	if (pinned < 0)
		return pinned;
	req->pinned = pinned;
	return 0;
}

static const struct spillway_ioctl_desc spillway_ioctls[] = {
	SPILLWAY_IOCTL_DEF(VERSION, struct spillway_version, spillway_ioctl_version, 0),
	SPILLWAY_IOCTL_DEF(INFO, struct spillway_info, spillway_ioctl_info, 0),
	SPILLWAY_IOCTL_DEF(ALLOC, struct spillway_alloc, spillway_ioctl_alloc, 0),
	SPILLWAY_IOCTL_DEF(RESIZE, struct spillway_resize, spillway_ioctl_resize,
			   SPILLWAY_IOCTL_ADMIN),
	SPILLWAY_IOCTL_DEF(SET_WATERMARKS, struct spillway_watermarks,
			   spillway_ioctl_set_watermarks, SPILLWAY_IOCTL_ADMIN),
	SPILLWAY_IOCTL_DEF(LIST_BUFFERS, struct spillway_list, spillway_ioctl_list, 0),
	SPILLWAY_IOCTL_DEF(SET_SHARE, struct spillway_share, spillway_ioctl_set_share,
			   SPILLWAY_IOCTL_ADMIN),
	SPILLWAY_IOCTL_DEF(LIST_SHARES, struct spillway_list, spillway_ioctl_list_shares, 0),
	SPILLWAY_IOCTL_DEF(LEND, struct spillway_loan, spillway_ioctl_lend, 0),
	SPILLWAY_IOCTL_DEF(RETURN, struct spillway_loan, spillway_ioctl_return, 0),
	SPILLWAY_IOCTL_DEF(LIST_LOANS, struct spillway_list, spillway_ioctl_list_loans, 0),
	SPILLWAY_IOCTL_DEF(TEST_PIN, struct spillway_test_pin, spillway_ioctl_test_pin,
			   SPILLWAY_IOCTL_TEST),
};

/* The table row for @cmd's number, or NULL when there is none. */
static const struct spillway_ioctl_desc *spillway_ioctl_find(unsigned int cmd)
{
	unsigned int nr = _IOC_NR(cmd);
	const struct spillway_ioctl_desc *desc;

	if (_IOC_TYPE(cmd) != SPILLWAY_IOC_MAGIC || nr >= ARRAY_SIZE(spillway_ioctls))
		return NULL;
	desc = &spillway_ioctls[nr];
	if (!desc->handler)
		return NULL;
	if ((desc->flags & SPILLWAY_IOCTL_TEST) && !spillway_test_ioctls)
		return NULL;
	return desc;
}

long spillway_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	const struct spillway_ioctl_desc *desc = spillway_ioctl_find(cmd);
	struct spillway_ioctl_call call = { .file = file, .fd = -1 };
	void __user *uarg = (void __user *)arg;
	union spillway_ioctl_arg karg;
	long ret;

	if (!desc)
		return -ENOTTY;
	/* A known number with another size or direction: a wrong struct. */
	if (cmd != desc->cmd)
		return -EINVAL;
	if ((desc->flags & SPILLWAY_IOCTL_ADMIN) && !capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (_IOC_DIR(cmd) & _IOC_WRITE) {
		if (copy_from_user(&karg, uarg, desc->size))
			return -EFAULT;
	} else {
		memset(&karg, 0, desc->size);
	}

	ret = desc->handler(&call, &karg);

	if (!ret && (_IOC_DIR(cmd) & _IOC_READ) &&
	    copy_to_user(uarg, &karg, desc->size))
		ret = -EFAULT;
	if (call.install) {
		if (ret) {
			put_unused_fd(call.fd);
			fput(call.install);
		} else {
			/* The fd table now owns the file's reference. */
			fd_install(call.fd, call.install);
		}
	}
	if (call.loan_id && ret) {
		struct spillway_loan undo = { .id = call.loan_id };

		spillway_loan_return(file, &undo);
	}
	return ret;
}
