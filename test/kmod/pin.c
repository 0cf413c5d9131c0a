// SPDX-License-Identifier: GPL-2.0
/*
 * Long-term pins: the mapping of a buffer pins with
 * pin_user_pages_fast(FOLL_LONGTERM | FOLL_WRITE), as cuMemHostRegister
 * pins it, also after MADV_DONTNEED.  Needs pool_mb=64 test_ioctls=1.
 */
#include <sys/mman.h>

#include "kmod.h"

#define SIZE (8 * MiB)

static long test_pin(int dev, void *addr, uint64_t size, uint64_t *pinned)
{
	struct spillway_test_pin req = { .addr = (uintptr_t)addr, .size = size };
	long ret = ioctl(dev, SPILLWAY_IOC_TEST_PIN, &req);

	*pinned = req.pinned;
	return ret;
}

static void test_bad_args(int dev, char *map)
{
	struct spillway_test_pin req;

	memset(&req, 0, sizeof(req));
	req.addr = (uintptr_t)map + 1;
	req.size = 4096;
	ok_errno(ioctl(dev, SPILLWAY_IOC_TEST_PIN, &req), EINVAL, "TEST_PIN unaligned address");
	req.addr = (uintptr_t)map;
	req.size = 0;
	ok_errno(ioctl(dev, SPILLWAY_IOC_TEST_PIN, &req), EINVAL, "TEST_PIN size 0");
	req.size = 100;
	ok_errno(ioctl(dev, SPILLWAY_IOC_TEST_PIN, &req), EINVAL,
		 "TEST_PIN size not a page multiple");
	req.size = 2048 * MiB;
	ok_errno(ioctl(dev, SPILLWAY_IOC_TEST_PIN, &req), EINVAL, "TEST_PIN size above 1 GiB");
	req.size = 4096;
	req.flags = 1;
	ok_errno(ioctl(dev, SPILLWAY_IOC_TEST_PIN, &req), EINVAL, "TEST_PIN flags");
	req.flags = 0;
	req.reserved0 = 1;
	ok_errno(ioctl(dev, SPILLWAY_IOC_TEST_PIN, &req), EINVAL, "TEST_PIN reserved0");
	req.reserved0 = 0;
	req.reserved[1] = 1;
	ok_errno(ioctl(dev, SPILLWAY_IOC_TEST_PIN, &req), EINVAL, "TEST_PIN reserved[1]");
}

int main(void)
{
	struct spillway_version ver = { 0 };
	struct spillway_info info;
	uint64_t pinned = 0;
	long ret;
	char *map, *anon;
	int dev = open_dev(), fd;

	ok(ioctl(dev, SPILLWAY_IOC_VERSION, &ver) == 0 && ver.test_ioctls == 1,
	   "VERSION reports test_ioctls=1");
	fd = alloc_buf(dev, SIZE, NULL);
	if (!ok(fd >= 0, "ALLOC 8 MiB"))
		return 1;
	map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!ok(map != MAP_FAILED, "mmap MAP_SHARED"))
		return 1;
	memset(map, 0x5a, SIZE);

	ret = test_pin(dev, map, SIZE, &pinned);
	ok(ret == 0 && pinned == SIZE / 4096, "FOLL_LONGTERM pin of the whole mapping (%llu pages)",
	   (unsigned long long)pinned);
	ret = madvise(map, SIZE, MADV_DONTNEED);
	ret = ret ? ret : test_pin(dev, map, SIZE, &pinned);
	ok(ret == 0 && pinned == SIZE / 4096 && map[SIZE - 1] == 0x5a,
	   "FOLL_LONGTERM pin after MADV_DONTNEED faults the pages back (%llu pages)",
	   (unsigned long long)pinned);
	ok(test_pin(dev, map + SIZE / 2, 4096, &pinned) == 0 && pinned == 1,
	   "pin of one page in the middle");

	anon = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ok(anon != MAP_FAILED && test_pin(dev, anon, MiB, &pinned) == 0 && pinned == MiB / 4096,
	   "control: anonymous memory pins too");

	test_bad_args(dev, map);

	munmap(map, SIZE);
	close(fd);
	ok(get_info(dev, &info) == 0 && info.used_bytes == 0 && info.buffers == 0 &&
		   info.pool_bytes == 64 * MiB,
	   "after unpin, unmap and close every page is back in the pool");
	close(dev);
	return tap_exit();
}
