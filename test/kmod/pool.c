// SPDX-License-Identifier: GPL-2.0
/*
 * The pool: resize up and down by ioctl and sysfs, chunks in use survive a
 * shrink, buffers are packed into chunks in use, unprivileged resizes get
 * EPERM, and the per-user limit gives EDQUOT.
 * Needs the module loaded with pool_mb=64 user_limit_mb=8.
 */
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kmod.h"

static uint64_t resize(int dev, uint64_t bytes, int *err)
{
	struct spillway_resize req = { .pool_bytes = bytes };

	*err = ioctl(dev, SPILLWAY_IOC_RESIZE, &req) ? errno : 0;
	return req.result_bytes;
}

static void test_resize_root(int dev)
{
	struct spillway_info info;
	uint64_t got;
	int err, fd1, fd2;

	got = resize(dev, 96 * MiB, &err);
	ok(!err && got == 96 * MiB && sysfs_num("pool_bytes") == (long long)(96 * MiB),
	   "RESIZE up to 96 MiB as root (result %llu)", (unsigned long long)got);
	/* Shrinking frees whole chunks only: it stops at or above the request. */
	got = resize(dev, 32 * MiB + 1, &err);
	ok(!err && got >= 32 * MiB + 4096 && got < 34 * MiB + 4096 &&
		   sysfs_num("requested_bytes") == (long long)(32 * MiB + 4096),
	   "RESIZE down to 32 MiB + 1 byte: request page-rounded, whole chunks freed (result %llu)",
	   (unsigned long long)got);
	ok(sysfs_write("pool_bytes", "67108864") == 0 &&
		   sysfs_num("pool_bytes") == (long long)(64 * MiB),
	   "sysfs pool_bytes write resizes to 64 MiB");

	/* Two 1 MiB buffers share one 2 MiB chunk; shrinking to 0 keeps only it. */
	fd1 = alloc_buf(dev, MiB, NULL);
	fd2 = alloc_buf(dev, MiB, NULL);
	if (!ok(fd1 >= 0 && fd2 >= 0, "two 1 MiB buffers"))
		return;
	got = resize(dev, 0, &err);
	ok(!err && got == 2 * MiB, "shrink to 0 keeps the one chunk in use (result %llu)",
	   (unsigned long long)got);
	ok(get_info(dev, &info) == 0 && info.requested_bytes == 0 && info.pool_bytes == 2 * MiB &&
		   info.used_bytes == 2 * MiB && info.free_bytes == 0,
	   "INFO after the shrink: requested 0, pool 2 MiB, all used");
	close(fd1);
	close(fd2);
	got = resize(dev, 0, &err);
	ok(!err && got == 0 && sysfs_num("pool_bytes") == 0,
	   "shrink to 0 after the buffers are gone");
	got = resize(dev, 64 * MiB, &err);
	ok(!err && got == 64 * MiB, "grow back to 64 MiB");

	ok(sysfs_write("pool_floor_mb", "8") == 0 && get_info(dev, &info) == 0 &&
		   info.floor_bytes == 8 * MiB && sysfs_num("pool_floor_mb") == 8,
	   "sysfs pool_floor_mb write sets the floor");
	ok(sysfs_write("watermark_critical_mb", "1000000") == EINVAL,
	   "sysfs watermark_critical_mb above warn -> EINVAL");
	ok(sysfs_write("watermark_critical_mb", "40") == 0 && get_info(dev, &info) == 0 &&
		   info.watermark_critical == 40 * MiB,
	   "sysfs watermark_critical_mb write");
}

/* In a child: open what needs root, drop to nobody, try again. */
static void test_resize_unprivileged(int dev)
{
	struct spillway_watermarks marks = { .warn = 100 * MiB, .critical = 50 * MiB };
	int sysfs_fd, status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		sysfs_fd = open(SYSFS_DIR "pool_bytes", O_WRONLY);
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534)) {
			ok(0, "drop to uid 65534");
			_exit(1);
		}
		struct spillway_resize req = { .pool_bytes = 32 * MiB };

		ok_errno(ioctl(dev, SPILLWAY_IOC_RESIZE, &req), EPERM, "RESIZE as uid 65534");
		ok_errno(ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &marks), EPERM,
			 "SET_WATERMARKS as uid 65534");
		ok_errno(write(sysfs_fd, "0", 1), EPERM,
			 "sysfs pool_bytes write as uid 65534 (file opened as root)");
		ok_errno(open(SYSFS_DIR "pool_bytes", O_WRONLY), EACCES,
			 "sysfs pool_bytes open for writing as uid 65534");
		_exit(tap_exit());
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tap_failures++;
	ok(sysfs_num("pool_bytes") == (long long)(64 * MiB), "pool unchanged by uid 65534");
}

static void test_user_limit(int dev)
{
	struct spillway_info info;
	int fd, fd2, status;
	pid_t pid;

	ok(get_info(dev, &info) == 0 && info.user_limit_bytes == 8 * MiB,
	   "INFO user_limit_bytes 8 MiB");
	fd = alloc_buf(dev, 8 * MiB, NULL);
	ok(fd >= 0, "ALLOC up to the per-user limit");
	fd2 = alloc_buf(dev, 4096, NULL);
	ok_errno(fd2, EDQUOT, "ALLOC one page over the per-user limit");

	/* The uid charged is the opener's: nobody opens its own file. */
	chmod("/dev/spillway", 0666);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int own;

		if (setresuid(65534, 65534, 65534))
			_exit(2);
		ok_errno(alloc_buf(dev, 4096, NULL), EDQUOT,
			 "uid 65534 through root's open: charged to root, over its limit");
		own = open("/dev/spillway", O_RDWR);
		fd2 = own >= 0 ? alloc_buf(own, 8 * MiB, NULL) : -1;
		ok(fd2 >= 0, "another user, through its own open, has a limit of its own");
		_exit(tap_exit());
	}
	waitpid(pid, &status, 0);
	chmod("/dev/spillway", 0660);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tap_failures++;
	close(fd);
	fd = alloc_buf(dev, 8 * MiB, NULL);
	ok(fd >= 0, "the limit counts live buffers only");
	close(fd);
}

int main(void)
{
	int dev = open_dev();

	test_resize_root(dev);
	test_resize_unprivileged(dev);
	test_user_limit(dev);
	close(dev);
	return tap_exit();
}
