// SPDX-License-Identifier: GPL-2.0
/*
 * Buffers: allocate, map twice, write and read back, refault after
 * MADV_DONTNEED, CPU-access sync, MAP_PRIVATE refused, exact accounting,
 * pages freed after the last fd and mapping, zeroed before reuse, pool
 * exhaustion, the mappings' name in /proc/PID/maps.  Needs the module loaded with pool_mb=64.
 */
#include <linux/dma-buf.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "kmod.h"

#define POOL (64 * MiB)

static int check_accounting(int dev, uint64_t used, uint64_t buffers, const char *when)
{
	struct spillway_info info;

	if (get_info(dev, &info))
		return ok(0, "INFO %s", when);
	if (ok(info.used_bytes == used && info.buffers == buffers &&
		       info.free_bytes + info.used_bytes == info.pool_bytes &&
		       (uint64_t)sysfs_num("used_bytes") == used &&
		       (uint64_t)sysfs_num("buffers") == buffers,
	       "accounting exact %s (used %llu, buffers %llu)", when, (unsigned long long)used,
	       (unsigned long long)buffers))
		return 1;
	diag("info used=%llu free=%llu pool=%llu buffers=%llu sysfs used=%lld",
	     (unsigned long long)info.used_bytes, (unsigned long long)info.free_bytes,
	     (unsigned long long)info.pool_bytes, (unsigned long long)info.buffers,
	     sysfs_num("used_bytes"));
	return 0;
}

static void test_version(int dev)
{
	struct spillway_version ver;

	memset(&ver, 0xff, sizeof(ver));
	ok(ioctl(dev, SPILLWAY_IOC_VERSION, &ver) == 0 && ver.major == SPILLWAY_ABI_MAJOR &&
		   ver.minor == SPILLWAY_ABI_MINOR && ver.event_size == SPILLWAY_EVENT_SIZE &&
		   ver.test_ioctls == 0 && !ver.reserved[0] && !ver.reserved[1],
	   "VERSION %u.%u event_size %u", ver.major, ver.minor, ver.event_size);
}

static void test_pool_info(int dev)
{
	struct spillway_info info;
	struct stat st;

	ok(stat("/dev/spillway", &st) == 0 && (st.st_mode & 0777) == 0660,
	   "/dev/spillway mode 0660");
	ok(get_info(dev, &info) == 0 && info.pool_bytes == POOL && info.requested_bytes == POOL &&
		   info.free_bytes == POOL && info.watchdog_ms == 250,
	   "INFO: pool 64 MiB, all free");
	ok(sysfs_num("pool_bytes") == (long long)POOL &&
		   sysfs_num("requested_bytes") == (long long)POOL &&
		   sysfs_num("free_bytes") == (long long)POOL,
	   "sysfs pool_bytes, requested_bytes, free_bytes");
}

/* Lines of /proc/self/maps that name @want. */
static int maps_lines_naming(const char *want)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *name = strchr(line, '/');

		n += name && strcmp(name, want) == 0;
	}
	fclose(f);
	return n;
}

static void test_map_rw(int dev)
{
	char maps_name[64];
	size_t size = 3 * MiB + 4096, i;
	struct dma_buf_sync sync;
	uint64_t id = 0;
	uint32_t *a, *b;
	int fd, bad = 0;

	fd = alloc_buf(dev, 3 * MiB + 1, &id);
	if (!ok(fd >= 0, "ALLOC 3 MiB + 1 byte"))
		return;
	ok(fcntl(fd, F_GETFD) == FD_CLOEXEC, "dma-buf fd is close-on-exec");
	ok((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "dma-buf fd is O_RDWR");
	check_accounting(dev, size, 1, "after ALLOC (rounded to a page)");

	a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!ok(a != MAP_FAILED && b != MAP_FAILED, "two MAP_SHARED mappings"))
		return;
	snprintf(maps_name, sizeof(maps_name), "/dmabuf:%s%llu\n", SPILLWAY_DMABUF_NAME_PREFIX,
		 (unsigned long long)id);
	ok(maps_lines_naming(maps_name) == 2, "both mappings show in /proc/self/maps as %.*s",
	   (int)strlen(maps_name) - 1, maps_name);
	sync.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW;
	ok(ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync) == 0, "DMA_BUF_IOCTL_SYNC start");
	for (i = 0; i < size / 4; i++)
		a[i] = (uint32_t)(i * 2654435761u);
	sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW;
	ok(ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync) == 0, "DMA_BUF_IOCTL_SYNC end");
	for (i = 0; i < size / 4; i++)
		bad += b[i] != (uint32_t)(i * 2654435761u);
	ok(bad == 0, "second mapping reads what the first wrote (%d bad words)", bad);

	ok(madvise(a, size, MADV_DONTNEED) == 0, "MADV_DONTNEED");
	for (bad = 0, i = 0; i < size / 4; i++)
		bad += a[i] != (uint32_t)(i * 2654435761u);
	ok(bad == 0, "refault after MADV_DONTNEED keeps the data (%d bad words)", bad);

	ok(mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) == MAP_FAILED &&
		   errno == EINVAL,
	   "MAP_PRIVATE refused with EINVAL");
	ok(mmap(NULL, size + 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED,
	   "mapping past the buffer's end refused");

	close(fd);
	check_accounting(dev, size, 1, "with the fd closed, mappings left");
	munmap(a, size);
	check_accounting(dev, size, 1, "with one mapping left");
	munmap(b, size);
	check_accounting(dev, 0, 0, "after the last mapping went");
}

/* The whole pool again: every page must read zero. */
static void test_zeroed_and_exhausted(int dev)
{
	size_t i, nonzero = 0;
	uint64_t *p;
	int fd, fd2;

	fd = alloc_buf(dev, POOL, NULL);
	if (!ok(fd >= 0, "ALLOC the whole pool"))
		return;
	p = mmap(NULL, POOL, PROT_READ, MAP_SHARED, fd, 0);
	if (ok(p != MAP_FAILED, "map the whole pool")) {
		for (i = 0; i < POOL / 8; i++)
			nonzero += p[i] != 0;
		ok(nonzero == 0, "reused pages are zeroed (%zu nonzero words)", nonzero);
		munmap(p, POOL);
	}
	fd2 = alloc_buf(dev, 4096, NULL);
	ok_errno(fd2, ENOMEM, "ALLOC from an exhausted pool");
	close(fd);
	check_accounting(dev, 0, 0, "after freeing the whole pool");
}

static void test_list(int dev)
{
	struct spillway_buffer_info entries[4];
	struct spillway_list list = { .entries = (uintptr_t)entries, .capacity = 1 };
	uint64_t id1, id2;
	int fd1, fd2;

	fd1 = alloc_buf(dev, MiB, &id1);
	fd2 = alloc_buf(dev, 2 * MiB, &id2);
	if (!ok(fd1 >= 0 && fd2 >= 0 && id2 > id1, "two buffers, increasing ids"))
		return;
	memset(entries, 0xff, sizeof(entries));
	ok(ioctl(dev, SPILLWAY_IOC_LIST_BUFFERS, &list) == 0 && list.count == 2 &&
		   entries[0].id == id1 && entries[0].size == MiB && entries[0].pid == getpid() &&
		   entries[0].uid == getuid() && entries[1].id == (uint64_t)-1,
	   "LIST_BUFFERS capacity 1: count 2, one entry written");
	list.capacity = 4;
	ok(ioctl(dev, SPILLWAY_IOC_LIST_BUFFERS, &list) == 0 && list.count == 2 &&
		   entries[1].id == id2 && entries[1].size == 2 * MiB,
	   "LIST_BUFFERS capacity 4: both buffers");
	close(fd1);
	close(fd2);
	list.capacity = 0;
	ok(ioctl(dev, SPILLWAY_IOC_LIST_BUFFERS, &list) == 0 && list.count == 0,
	   "LIST_BUFFERS after close: none");
}

int main(void)
{
	int dev = open_dev();

	test_version(dev);
	test_pool_info(dev);
	test_map_rw(dev);
	test_zeroed_and_exhausted(dev);
	test_list(dev);
	close(dev);
	return tap_exit();
}
