// SPDX-License-Identifier: GPL-2.0
/*
 * A table of bad ioctl arguments, each with the errno it must get, then a
 * check that nothing leaked: no buffer, no pool byte, no fd.
 * Needs pool_mb=16 and test_ioctls=0.
 */
#include <dirent.h>
#include <sys/mman.h>

#include "kmod.h"

struct bad_case {
	const char *name;
	unsigned long cmd;
	void *arg;
	int want;
};

static int count_fds(void)
{
	struct dirent *d;
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

static int dev;

TEST(bad_arguments_get_their_errno)
{
	static struct spillway_alloc alloc_size0, alloc_flags, alloc_res0, alloc_res1, alloc_big,
		alloc_huge;
	static struct spillway_resize rs_flags, rs_res0, rs_res1, rs_ram;
	static struct spillway_watermarks wm_order, wm_flags, wm_res0, wm_res1;
	static struct spillway_list ls_cap, ls_res;
	static struct spillway_test_pin pin = { .size = 4096 };
	static struct spillway_version ver;

	alloc_size0.size = 0;
	alloc_flags.size = 4096;
	alloc_flags.flags = 1;
	alloc_res0.size = 4096;
	alloc_res0.reserved[0] = 1;
	alloc_res1.size = 4096;
	alloc_res1.reserved[1] = 1;
	alloc_big.size = 16 * MiB + 1;
	alloc_huge.size = UINT64_MAX;
	rs_flags.pool_bytes = 16 * MiB;
	rs_flags.flags = 1;
	rs_res0.pool_bytes = 16 * MiB;
	rs_res0.reserved0 = 1;
	rs_res1.pool_bytes = 16 * MiB;
	rs_res1.reserved[1] = 1;
	rs_ram.pool_bytes = UINT64_MAX;
	wm_order.warn = 10 * MiB;
	wm_order.critical = 20 * MiB;
	wm_flags.warn = 20 * MiB;
	wm_flags.critical = 10 * MiB;
	wm_flags.flags = 1;
	wm_res0 = wm_flags;
	wm_res0.flags = 0;
	wm_res0.reserved0 = 1;
	wm_res1 = wm_flags;
	wm_res1.flags = 0;
	wm_res1.reserved[0] = 1;
	ls_cap.capacity = SPILLWAY_LIST_MAX + 1;
	ls_res.capacity = 1;
	ls_res.reserved[1] = 1;

	struct bad_case cases[] = {
		{ "unknown number", _IO(SPILLWAY_IOC_MAGIC, 0x30), &ver, ENOTTY },
		{ "other magic", _IOR('x', 0x00, struct spillway_version), &ver, ENOTTY },
		{ "VERSION with a wrong size", _IOR(SPILLWAY_IOC_MAGIC, 0x00, uint32_t), &ver,
		  EINVAL },
		{ "VERSION with a wrong direction",
		  _IOW(SPILLWAY_IOC_MAGIC, 0x00, struct spillway_version), &ver, EINVAL },
		{ "INFO to a NULL pointer", SPILLWAY_IOC_INFO, NULL, EFAULT },
		{ "ALLOC from a NULL pointer", SPILLWAY_IOC_ALLOC, NULL, EFAULT },
		{ "ALLOC size 0", SPILLWAY_IOC_ALLOC, &alloc_size0, EINVAL },
		{ "ALLOC flags 1", SPILLWAY_IOC_ALLOC, &alloc_flags, EINVAL },
		{ "ALLOC reserved[0]", SPILLWAY_IOC_ALLOC, &alloc_res0, EINVAL },
		{ "ALLOC reserved[1]", SPILLWAY_IOC_ALLOC, &alloc_res1, EINVAL },
		{ "ALLOC above the pool size", SPILLWAY_IOC_ALLOC, &alloc_big, EINVAL },
		{ "ALLOC size UINT64_MAX", SPILLWAY_IOC_ALLOC, &alloc_huge, EINVAL },
		{ "RESIZE flags 1", SPILLWAY_IOC_RESIZE, &rs_flags, EINVAL },
		{ "RESIZE reserved0", SPILLWAY_IOC_RESIZE, &rs_res0, EINVAL },
		{ "RESIZE reserved[1]", SPILLWAY_IOC_RESIZE, &rs_res1, EINVAL },
		{ "RESIZE above RAM", SPILLWAY_IOC_RESIZE, &rs_ram, EINVAL },
		{ "SET_WATERMARKS critical above warn", SPILLWAY_IOC_SET_WATERMARKS, &wm_order,
		  EINVAL },
		{ "SET_WATERMARKS flags 1", SPILLWAY_IOC_SET_WATERMARKS, &wm_flags, EINVAL },
		{ "SET_WATERMARKS reserved0", SPILLWAY_IOC_SET_WATERMARKS, &wm_res0, EINVAL },
		{ "SET_WATERMARKS reserved[0]", SPILLWAY_IOC_SET_WATERMARKS, &wm_res1, EINVAL },
		{ "LIST_BUFFERS capacity above 65536", SPILLWAY_IOC_LIST_BUFFERS, &ls_cap, EINVAL },
		{ "LIST_BUFFERS reserved[1]", SPILLWAY_IOC_LIST_BUFFERS, &ls_res, EINVAL },
		{ "TEST_PIN without test_ioctls=1", SPILLWAY_IOC_TEST_PIN, &pin, ENOTTY },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok_errno(ioctl(dev, cases[i].cmd, cases[i].arg), cases[i].want, cases[i].name);
}

/* An entries pointer that faults, with a live buffer to copy out. */
TEST(list_buffers_to_an_unmapped_array)
{
	static struct spillway_list ls_fault = { .capacity = 4, .entries = 8 /* unmapped */ };
	int fd = alloc_buf(dev, 4096, NULL);

	ok_errno(ioctl(dev, SPILLWAY_IOC_LIST_BUFFERS, &ls_fault), EFAULT,
		 "LIST_BUFFERS to an unmapped entries array");
	close(fd);
}

/* ALLOC whose result can not be copied out: the fd and buffer must go. */
TEST(failed_alloc_copy_out_leaves_no_fd)
{
	struct spillway_alloc *ro =
		mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fds_before;

	ro->size = 4096;
	mprotect(ro, 4096, PROT_READ);
	fds_before = count_fds();
	ok_errno(ioctl(dev, SPILLWAY_IOC_ALLOC, ro), EFAULT, "ALLOC into a read-only struct");
	ok(count_fds() == fds_before, "no fd left behind by the failed ALLOC");
	munmap(ro, 4096);
}

TEST(short_and_nonblocking_reads)
{
	struct spillway_event ev;

	ok_errno(read(dev, &ev, sizeof(ev) - 1), EINVAL, "read() shorter than one record");
	fcntl(dev, F_SETFL, O_NONBLOCK);
	ok_errno(read(dev, &ev, sizeof(ev)), EAGAIN, "O_NONBLOCK read() with no event");
}

TEST(nothing_leaked)
{
	struct spillway_info info;
	int rc;

	memset(&info, 0xff, sizeof(info));
	rc = get_info(dev, &info);
	ok(rc == 0 && info.used_bytes == 0 && info.buffers == 0 && info.pool_bytes == 16 * MiB &&
		   info.free_bytes == 16 * MiB,
	   "after every bad call: no buffer, pool whole (used %llu, buffers %llu)",
	   (unsigned long long)info.used_bytes, (unsigned long long)info.buffers);
}

int main(void)
{
	int rc;

	dev = open_dev();
	rc = tap_run();
	close(dev);
	return rc;
}
