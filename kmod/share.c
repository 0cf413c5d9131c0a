// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: per-cgroup shares of the pool (ABI 1.2).
 *
 * Every buffer is charged to the cgroup v2 that the process opening its
 * /dev/spillway file was in at open(), and to that cgroup's ancestors.  Root
 * gives a cgroup a limit (max) and a guarantee (min) with SET_SHARE.  The
 * module keeps a tree of nodes that mirrors the cgroup hierarchy, but only
 * for the cgroups that have a share, an open file or a charge, and their
 * ancestors: an ALLOC walks its node's ancestors, never the cgroup tree.
 *
 * Everything here is under the pool lock, so that an ALLOC's share checks
 * and its reservation of pages are one step.  Nothing allocates under that
 * lock: nodes are allocated before it is taken and freed after, and a
 * cgroup reference is dropped after it too.
 *
 * A removed cgroup (rmdir) is offline at once.  Its limit and guarantee stop
 * applying then (every check skips offline cgroups), and its share is
 * dropped from the tree at the next SET_SHARE or LIST_SHARES, which is
 * cheap and bounds the nodes kept for removed cgroups by the shares set
 * since.  Its charges stay until its buffers go.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cgroup.h>
#include <linux/file.h>
#include <linux/hashtable.h>
#include <linux/minmax.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>

#include "spillway_internal.h"

static struct spillway_pool *const pool = &spillway.pool;

/*
 * Whether @cgrp was removed: rmdir clears CSS_ONLINE on the cgroup's own
 * css under cgroup_mutex before it returns, on every kernel we build for
 * (css_is_dying() would not do: since 6.13 it tests CSS_DYING, which only
 * the controllers' csses get).  A racy read is fine: a removal that an
 * ALLOC does not see yet was not ordered before it either.
 */
static bool spillway_cgroup_removed(struct cgroup *cgrp)
{
	return !(READ_ONCE(cgrp->self.flags) & CSS_ONLINE);
}

static bool spillway_share_is_set(struct spillway_share_node *node)
{
	return node->max_pages || node->min_pages;
}

static struct spillway_share_node *spillway_share_find_locked(u64 id)
{
	struct spillway_share_node *node;

	hash_for_each_possible(pool->shares, node, hash, id)
		if (node->cgroup_id == id)
			return node;
	return NULL;
}

/*
 * Takes a reference on @cgrp's node, making it and its missing ancestors
 * from the @have nodes on @spare.  When @spare has too few, changes nothing,
 * sets @need and returns NULL.
 */
static struct spillway_share_node *
spillway_share_get_locked(struct cgroup *cgrp, struct hlist_head *spare,
			  unsigned int *have, unsigned int *need)
{
	struct spillway_share_node *node, *child = NULL, *first = NULL;
	unsigned int missing = 0;
	bool found;
	struct cgroup *c;

	lockdep_assert_held(&pool->lock);
	for (c = cgrp; c && !spillway_share_find_locked(cgroup_id(c));
	     c = cgroup_parent(c))
		missing++;
	if (missing > *have) {
		*need = missing;
		return NULL;
	}

	/*
	 * A node made here starts with the one reference of its child (or of
	 * the caller); the first node found gets one more and ends the walk.
	 */
	for (c = cgrp; c; c = cgroup_parent(c)) {
		node = spillway_share_find_locked(cgroup_id(c));
		found = node;
		if (found) {
			node->refs++;
		} else {
			node = hlist_entry(spare->first, struct spillway_share_node, hash);
			hlist_del(&node->hash);
			(*have)--;
			node->cgroup_id = cgroup_id(c);
			/* @c is pinned by @cgrp, whose reference the caller holds. */
			cgroup_get(c);
			node->cgrp = c;
			node->refs = 1;
			INIT_LIST_HEAD(&node->guaranteed);
			hash_add(pool->shares, &node->hash, node->cgroup_id);
		}
		if (child)
			child->parent = node;
		else
			first = node;
		if (found)
			break;
		child = node;
	}
	return first;
}

/*
 * A reference on @cgrp's node, made with its ancestors' as needed; the
 * caller holds a reference on @cgrp.  ERR_PTR(-ENOMEM) when a node can not
 * be allocated.
 */
static struct spillway_share_node *spillway_share_get(struct cgroup *cgrp)
{
	struct spillway_share_node *node = NULL, *extra;
	unsigned int have = 0, need = 0;
	struct hlist_node *tmp;
	HLIST_HEAD(spare);

	for (;;) {
		while (have < need) {
			extra = kzalloc(sizeof(*extra), GFP_KERNEL_ACCOUNT);
			if (!extra) {
				node = ERR_PTR(-ENOMEM);
				goto out;
			}
			hlist_add_head(&extra->hash, &spare);
			have++;
		}
		spillway_pool_lock();
		node = spillway_share_get_locked(cgrp, &spare, &have, &need);
		spillway_pool_unlock();
		if (node)
			break;
	}
out:
	hlist_for_each_entry_safe(extra, tmp, &spare, hash)
		kfree(extra);
	return node;
}

/* Unlinks @node onto @unlinked; its reference on its parent stays to drop. */
static void spillway_share_unlink_locked(struct spillway_share_node *node,
					 struct hlist_head *unlinked)
{
	hash_del(&node->hash);
	hlist_add_head(&node->hash, unlinked);
}

/*
 * Unlinks @node when nothing keeps it (no reference, no share), then its
 * parent when that was its last reason, and so on up.
 */
static void spillway_share_release_locked(struct spillway_share_node *node,
					  struct hlist_head *unlinked)
{
	struct spillway_share_node *parent;

	lockdep_assert_held(&pool->lock);
	while (node && !node->refs && !spillway_share_is_set(node)) {
		parent = node->parent;
		spillway_share_unlink_locked(node, unlinked);
		if (parent)
			parent->refs--;
		node = parent;
	}
}

static void spillway_share_put_locked(struct spillway_share_node *node,
				      struct hlist_head *unlinked)
{
	node->refs--;
	spillway_share_release_locked(node, unlinked);
}

/* Frees unlinked nodes and drops their cgroups, outside the pool lock. */
void spillway_share_free(struct hlist_head *unlinked)
{
	struct spillway_share_node *node;
	struct hlist_node *tmp;

	hlist_for_each_entry_safe(node, tmp, unlinked, hash) {
		hlist_del(&node->hash);
		cgroup_put(node->cgrp);
		kfree(node);
	}
}

static void spillway_share_set_min_locked(struct spillway_share_node *node,
					  u64 min_pages)
{
	if (!node->min_pages && min_pages)
		list_add_tail(&node->guaranteed, &pool->guaranteed);
	else if (node->min_pages && !min_pages)
		list_del_init(&node->guaranteed);
	node->min_pages = min_pages;
}

/*
 * Drops the shares of removed cgroups, and the nodes nothing else keeps.
 * A node's removal only drops a reference on its parent here (no cascade),
 * so that the walk never meets a node unlinked behind it; a parent left
 * with nothing is unlinked by the next round.  Rounds: at most the depth.
 */
static void spillway_share_prune_locked(struct hlist_head *unlinked)
{
	struct spillway_share_node *node;
	struct hlist_node *tmp;
	bool again;
	int bkt;

	lockdep_assert_held(&pool->lock);
	do {
		again = false;
		hash_for_each_safe(pool->shares, bkt, tmp, node, hash) {
			if (spillway_share_is_set(node) &&
			    spillway_cgroup_removed(node->cgrp)) {
				pr_debug("share: cgroup %llu removed, share dropped\n",
					 node->cgroup_id);
				spillway_share_set_min_locked(node, 0);
				node->max_pages = 0;
			}
			if (node->refs || spillway_share_is_set(node))
				continue;
			spillway_share_unlink_locked(node, unlinked);
			if (node->parent) {
				node->parent->refs--;
				again = true;
			}
		}
	} while (again);
}

/* A guarantee in force, that no guarantee above it contains. */
static bool spillway_share_top_guarantee(struct spillway_share_node *node)
{
	struct spillway_share_node *up;

	if (!node->min_pages || spillway_cgroup_removed(node->cgrp))
		return false;
	for (up = node->parent; up; up = up->parent)
		if (up->min_pages && !spillway_cgroup_removed(up->cgrp))
			return false;
	return true;
}

/*
 * The top-level guarantee that contains @node: its highest ancestor-or-self
 * with a guarantee in force, or NULL.  Top-level guarantees are disjoint
 * subtrees, so this is the only one that is @node's own.
 */
static struct spillway_share_node *
spillway_share_own_guarantee(struct spillway_share_node *node)
{
	struct spillway_share_node *top = NULL;

	for (; node; node = node->parent)
		if (node->min_pages && !spillway_cgroup_removed(node->cgrp))
			top = node;
	return top;
}

/* The guarantees that count against the pool's requested size, in pages. */
static u64 spillway_share_guaranteed_locked(void)
{
	struct spillway_share_node *node;
	u64 sum = 0;

	list_for_each_entry(node, &pool->guaranteed, guaranteed)
		if (spillway_share_top_guarantee(node))
			sum += node->min_pages;
	return sum;
}

/**
 * spillway_share_check_locked - the share and free-page checks of an ALLOC
 * @node:	the node the buffer would be charged to
 * @nr_pages:	its size
 *
 * -EDQUOT when @node or one of its ancestors would go above its limit (a
 * limit is an error of its own even when the pool is short too).
 * -ENOMEM when the pool's free pages, less the unused part of every
 * guarantee outside @node's line (those that no guarantee above contains;
 * see docs/kernel-module.md on nested guarantees), are fewer than
 * @nr_pages.  Walks @node's ancestors and the guarantees: both are few.
 *
 * Return: 0 or the error.
 */
int spillway_share_check_locked(struct spillway_share_node *node,
				unsigned long nr_pages)
{
	unsigned long free_pages = pool->nr_pages - pool->used_pages;
	struct spillway_share_node *up, *g, *own;
	u64 reserved = 0;

	lockdep_assert_held(&pool->lock);
	for (up = node; up; up = up->parent)
		if (up->max_pages && !spillway_cgroup_removed(up->cgrp) &&
		    up->used_pages + nr_pages > up->max_pages)
			return -EDQUOT;
	own = spillway_share_own_guarantee(node);
	list_for_each_entry(g, &pool->guaranteed, guaranteed) {
		if (g == own || g->used_pages >= g->min_pages ||
		    !spillway_share_top_guarantee(g))
			continue;
		reserved += g->min_pages - g->used_pages;
	}
	if ((u64)nr_pages + reserved > free_pages)
		return -ENOMEM;
	return 0;
}

/* Charges @nr_pages to @node and its ancestors; the buffer holds @node. */
void spillway_share_charge_locked(struct spillway_share_node *node,
				  unsigned long nr_pages)
{
	struct spillway_share_node *up;

	lockdep_assert_held(&pool->lock);
	node->refs++;
	for (up = node; up; up = up->parent)
		up->used_pages += nr_pages;
}

/*
 * Undoes spillway_share_charge_locked(); nodes nothing keeps any longer go
 * onto @unlinked, for spillway_share_free() after the lock.
 */
void spillway_share_uncharge_locked(struct spillway_share_node *node,
				    unsigned long nr_pages,
				    struct hlist_head *unlinked)
{
	struct spillway_share_node *up;

	lockdep_assert_held(&pool->lock);
	for (up = node; up; up = up->parent)
		up->used_pages -= nr_pages;
	spillway_share_put_locked(node, unlinked);
}

/**
 * spillway_share_open - the node of the current task's cgroup v2
 *
 * Called at open() of /dev/spillway: the file holds the node, and every
 * buffer allocated through the file is charged to it.
 *
 * Return: a referenced node, or ERR_PTR(-ENOMEM).
 */
struct spillway_share_node *spillway_share_open(void)
{
	struct spillway_share_node *node;
	struct cgroup *cgrp;

	/*
	 * The task may be moved meanwhile and its old cgroup removed: retry
	 * until the reference is taken on a cgroup still alive (as
	 * task_get_css() does).
	 */
	rcu_read_lock();
	for (;;) {
		cgrp = task_dfl_cgroup(current);
		if (cgroup_tryget(cgrp))
			break;
		cpu_relax();
	}
	rcu_read_unlock();
	node = spillway_share_get(cgrp);
	cgroup_put(cgrp);
	return node;
}

/* At the release of a /dev/spillway file. */
void spillway_share_close(struct spillway_share_node *node)
{
	HLIST_HEAD(unlinked);

	spillway_pool_lock();
	spillway_share_put_locked(node, &unlinked);
	spillway_pool_unlock();
	spillway_share_free(&unlinked);
}

/*
 * The cgroup SET_SHARE names: by fd, or by id when the fd is -1.  A
 * referenced, online cgroup v2, or ERR_PTR(-EBADF) when the fd is not open,
 * -ENOTDIR when it is not a cgroup v2 directory, -ENOENT when no live cgroup
 * has the id (or the fd's cgroup was removed).
 */
static struct cgroup *spillway_share_cgroup(struct spillway_share *req)
{
	struct cgroup *cgrp;
	struct file *file;

	if (req->cgroup_fd == -1) {
		/* Only cgroups under the caller's cgroup namespace are found. */
		cgrp = cgroup_get_from_id(req->cgroup_id);
	} else {
		file = fget(req->cgroup_fd);
		if (!file)
			return ERR_PTR(-EBADF);
		/* The fd is open: a refusal means "not a cgroup v2 directory". */
		cgrp = cgroup_get_from_fd(req->cgroup_fd);
		fput(file);
		if (cgrp == ERR_PTR(-EBADF))
			cgrp = ERR_PTR(-ENOTDIR);
	}
	if (IS_ERR(cgrp))
		return cgrp;
	if (spillway_cgroup_removed(cgrp)) {
		cgroup_put(cgrp);
		return ERR_PTR(-ENOENT);
	}
	return cgrp;
}

/* Rounded up, but never so far that the bytes no longer fit in a u64. */
static u64 spillway_bytes_to_pages(u64 bytes)
{
	return min((bytes >> PAGE_SHIFT) + !!(bytes & ~PAGE_MASK),
		   U64_MAX >> PAGE_SHIFT);
}

/**
 * spillway_share_set - SPILLWAY_IOC_SET_SHARE; the caller has CAP_SYS_ADMIN
 * @req:	the request; on success its cgroup_id, max_bytes and min_bytes
 *		(rounded up to a page) and used_bytes are set
 *
 * A change that raises the sum of the guarantees none of whose ancestors
 * has one above the pool's requested size is refused; one that does not
 * raise it never is, so that a pool resized under the sum can still have
 * its shares lowered.
 *
 * Return: 0, or -EINVAL, -EBADF, -ENOTDIR, -ENOENT, -ENOSPC, -ENOMEM.
 */
long spillway_share_set(struct spillway_share *req)
{
	u64 max_pages, min_pages, old_min, before, after;
	struct spillway_share_node *node;
	HLIST_HEAD(unlinked);
	struct cgroup *cgrp;
	long ret = 0;

	if (req->flags || req->reserved[0] || req->reserved[1] || req->reserved[2])
		return -EINVAL;
	if (req->max_bytes && req->min_bytes > req->max_bytes)
		return -EINVAL;
	max_pages = spillway_bytes_to_pages(req->max_bytes);
	min_pages = spillway_bytes_to_pages(req->min_bytes);

	cgrp = spillway_share_cgroup(req);
	if (IS_ERR(cgrp))
		return PTR_ERR(cgrp);
	node = spillway_share_get(cgrp);
	cgroup_put(cgrp);
	if (IS_ERR(node))
		return PTR_ERR(node);

	spillway_pool_lock();
	spillway_share_prune_locked(&unlinked);
	before = spillway_share_guaranteed_locked();
	old_min = node->min_pages;
	spillway_share_set_min_locked(node, min_pages);
	after = spillway_share_guaranteed_locked();
	if (after > before && after > pool->requested_pages) {
		spillway_share_set_min_locked(node, old_min);
		ret = -ENOSPC;
	} else {
		node->max_pages = max_pages;
		req->cgroup_id = node->cgroup_id;
		req->max_bytes = max_pages << PAGE_SHIFT;
		req->min_bytes = min_pages << PAGE_SHIFT;
		req->used_bytes = (u64)node->used_pages << PAGE_SHIFT;
	}
	/* Drops our reference; 0/0 with nothing charged frees the node. */
	spillway_share_put_locked(node, &unlinked);
	spillway_pool_unlock();
	spillway_share_free(&unlinked);
	return ret;
}

/**
 * spillway_share_list - the entries of SPILLWAY_IOC_LIST_SHARES
 * @out:	room for @capacity entries
 * @capacity:	entries to write at most
 *
 * Lists every cgroup with a share or with buffers charged to it (a
 * descendant's included), in no particular order.
 *
 * Return: the number of such cgroups, which may be above @capacity.
 */
u32 spillway_share_list(struct spillway_share *out, u32 capacity)
{
	struct spillway_share_node *node;
	HLIST_HEAD(unlinked);
	u32 n = 0;
	int bkt;

	spillway_pool_lock();
	spillway_share_prune_locked(&unlinked);
	hash_for_each(pool->shares, bkt, node, hash) {
		if (!spillway_share_is_set(node) && !node->used_pages)
			continue;
		if (n < capacity) {
			out[n].cgroup_id = node->cgroup_id;
			out[n].cgroup_fd = -1;
			out[n].max_bytes = node->max_pages << PAGE_SHIFT;
			out[n].min_bytes = node->min_pages << PAGE_SHIFT;
			out[n].used_bytes = (u64)node->used_pages << PAGE_SHIFT;
		}
		n++;
	}
	spillway_pool_unlock();
	spillway_share_free(&unlinked);
	return n;
}

void spillway_share_init(void)
{
	hash_init(pool->shares);
	INIT_LIST_HEAD(&pool->guaranteed);
}

/*
 * At unload no file and no buffer is left (each holds a module reference):
 * only the nodes of shares, and their ancestors, remain.
 */
void spillway_share_exit(void)
{
	struct spillway_share_node *node;
	HLIST_HEAD(unlinked);
	struct hlist_node *tmp;
	int bkt;

	spillway_pool_lock();
	hash_for_each_safe(pool->shares, bkt, tmp, node, hash) {
		WARN_ON(node->used_pages);
		if (node->min_pages)
			list_del_init(&node->guaranteed);
		spillway_share_unlink_locked(node, &unlinked);
	}
	spillway_pool_unlock();
	spillway_share_free(&unlinked);
}
