// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: test-only timing of the sections that hold a lock or run long.
 *
 * With test_ioctls=1 the module measures, with ktime, the longest hold of
 * the pool lock, the longest buffer release (zeroing included) and the
 * longest mmap (it runs under the mmap lock), and shows them in debugfs,
 * spillway/timing (root only).  Writing anything to that file resets them.
 * Without test_ioctls nothing is measured and the file does not exist.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/seq_file.h>

#include "spillway_internal.h"

static struct spillway_timing *const timing = &spillway.timing;

/* The start of a timed section, or 0 when nothing is measured. */
u64 spillway_timing_start(void)
{
	return spillway_test_ioctls ? ktime_get_ns() : 0;
}

/* Raises *@max to the time since @start (from spillway_timing_start()). */
void spillway_timing_end(u64 *max, u64 start)
{
	u64 took, old;

	if (!start)
		return;
	took = ktime_get_ns() - start;
	old = READ_ONCE(*max);
	while (took > old) {
		u64 seen = cmpxchg64(max, old, took);

		if (seen == old)
			break;
		old = seen;
	}
}

static int spillway_timing_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "pool_lock_max_ns %llu\n", READ_ONCE(timing->pool_lock_max_ns));
	seq_printf(m, "release_max_ns %llu\n", READ_ONCE(timing->release_max_ns));
	seq_printf(m, "mmap_max_ns %llu\n", READ_ONCE(timing->mmap_max_ns));
	return 0;
}

static int spillway_timing_open(struct inode *inode, struct file *file)
{
	return single_open(file, spillway_timing_show, NULL);
}

static ssize_t spillway_timing_write(struct file *file, const char __user *ubuf,
				     size_t len, loff_t *ppos)
{
	WRITE_ONCE(timing->pool_lock_max_ns, 0);
	WRITE_ONCE(timing->release_max_ns, 0);
	WRITE_ONCE(timing->mmap_max_ns, 0);
	return len;
}

static const struct file_operations spillway_timing_fops = {
	.owner = THIS_MODULE,
	.open = spillway_timing_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.write = spillway_timing_write,
	.release = single_release,
};

void spillway_timing_init(void)
{
	if (!spillway_test_ioctls)
		return;
	timing->dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("timing", 0600, timing->dir, NULL,
			    &spillway_timing_fops);
}

void spillway_timing_exit(void)
{
	debugfs_remove_recursive(timing->dir);
	timing->dir = NULL;
}
