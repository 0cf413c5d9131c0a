// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: the pool lends capacity to GPU drivers (docs/split-placement.md,
 * section 3).
 *
 * Host memory a driver allocates itself (cuMemCreate on a host NUMA node,
 * mapped next to VRAM, where a dma-buf can not go) comes from the kernel's
 * free memory.  LEND first shrinks the pool by that much, so that the
 * driver takes capacity reserved for GPU jobs, not other processes' memory;
 * RETURN, or the release of the file, ends the loan and the pool grows back
 * on a worker, a balloon that deflates for the loan and re-inflates after.
 * A loan is charged like a buffer (the opener's uid and cgroup) and belongs
 * to the open file it was made through.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/list.h>
#include <linux/math.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "spillway_internal.h"

static struct spillway_pool *const pool = &spillway.pool;

static bool spillway_loan_reserved_set(const struct spillway_loan *req)
{
	return req->flags || req->reserved0 || req->reserved[0] || req->reserved[1];
}

long spillway_loan_lend(struct file *file, struct spillway_loan *req)
{
	struct spillway_user *spare;
	struct spillway_lent *loan;
	int ret;

	if (spillway_loan_reserved_set(req))
		return -EINVAL;
	/* Rounded up to whole chunks below; the rounding must not wrap. */
	if (!req->size || req->size > U64_MAX - (SPILLWAY_CHUNK_BYTES - 1))
		return -EINVAL;

	/* Nothing allocates under the pool lock: both come first. */
	loan = kzalloc(sizeof(*loan), GFP_KERNEL_ACCOUNT);
	spare = kzalloc(sizeof(*spare), GFP_KERNEL_ACCOUNT);
	if (!loan || !spare) {
		kfree(loan);
		kfree(spare);
		return -ENOMEM;
	}
	loan->owner = file;
	loan->nr_pages = round_up(req->size, SPILLWAY_CHUNK_BYTES) >> PAGE_SHIFT;
	loan->pid = task_tgid_nr(current);
	loan->uid = spillway_file_uid(file);
	loan->share = spillway_file_share(file);

	ret = spillway_pool_lend(loan, spare);
	if (ret) {
		kfree(loan);
		return ret;
	}
	req->size = (u64)loan->nr_pages << PAGE_SHIFT;
	req->id = loan->id;
	return 0;
}

long spillway_loan_return(struct file *file, struct spillway_loan *req)
{
	struct spillway_lent *loan, *found = NULL;
	struct spillway_user *user = NULL;
	HLIST_HEAD(unlinked);

	if (spillway_loan_reserved_set(req))
		return -EINVAL;
	spillway_pool_lock();
	list_for_each_entry(loan, &pool->loans, node) {
		if (loan->id == req->id && loan->owner == file) {
			found = loan;
			user = spillway_pool_end_loan_locked(found, &unlinked);
			break;
		}
	}
	spillway_pool_unlock();
	/* Another file's loan, one already returned, or none at all. */
	if (!found)
		return -EINVAL;
	kfree(user);
	spillway_share_free(&unlinked);
	kfree(found);
	spillway_pool_growback();
	return 0;
}

/* At the release of @file (close, exit, a crash): every loan of it ends. */
void spillway_loan_release(struct file *file)
{
	struct spillway_lent *loan, *tmp;
	HLIST_HEAD(unlinked);
	LIST_HEAD(ended);

	spillway_pool_lock();
	list_for_each_entry_safe(loan, tmp, &pool->loans, node) {
		if (loan->owner != file)
			continue;
		/* Now the user entry to free, if this was its last charge. */
		loan->user = spillway_pool_end_loan_locked(loan, &unlinked);
		list_add_tail(&loan->node, &ended);
	}
	spillway_pool_unlock();
	if (list_empty(&ended))
		return;
	list_for_each_entry_safe(loan, tmp, &ended, node) {
		kfree(loan->user);
		kfree(loan);
	}
	spillway_share_free(&unlinked);
	spillway_pool_growback();
}

/*
 * Writes up to @capacity entries and returns the number of live loans;
 * with @filter, only the loans charged to @only_uid.
 */
u32 spillway_loan_list(struct spillway_buffer_info *out, u32 capacity,
		       bool filter, uid_t only_uid)
{
	struct spillway_lent *loan;
	u32 n = 0;

	spillway_pool_lock();
	list_for_each_entry(loan, &pool->loans, node) {
		if (filter && loan->uid != only_uid)
			continue;
		if (n < capacity) {
			out[n].id = loan->id;
			out[n].size = (u64)loan->nr_pages << PAGE_SHIFT;
			out[n].pid = loan->pid;
			out[n].uid = loan->uid;
			out[n].cgroup_id = loan->share->cgroup_id;
		}
		n++;
	}
	spillway_pool_unlock();
	return n;
}
