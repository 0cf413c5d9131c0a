/*
 * Host backend, for machines without the module: memfd memory mapped MAP_SHARED (page-backed,
 * so cuMemHostRegister can pin it), from hugetlb pages when the system has them reserved.
 */
#define _GNU_SOURCE
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_2M (2ULL << 20)

static void *map_memfd(size_t size, unsigned int flags)
{
	int fd = memfd_create("spillway", MFD_CLOEXEC | flags);
	void *addr = MAP_FAILED;

	if (fd < 0)
		return NULL;
	if (ftruncate(fd, (off_t)size) == 0)
		addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return addr == MAP_FAILED ? NULL : addr;
}

int host_map(size_t size, struct backend_map *m)
{
	void *addr;

	size = round_up(size, HUGE_2M);
	if (!size)
		return -ENOMEM;
	/* The pages are charged to the cgroup when pinned: refuse before, not by the OOM killer after. */
	if (!cgroup_fits(size)) {
		spw_log(LOG_WARN, "a host arena of %zu bytes would pass the cgroup's memory.max",
			size);
		return -ENOMEM;
	}
	/* hugetlb reserves its pages at mmap, so a shortage shows here, not as SIGBUS later. */
	addr = map_memfd(size, MFD_HUGETLB);
	if (!addr) {
		addr = map_memfd(size, 0);
		if (!addr)
			return -ENOMEM;
		madvise(addr, size, MADV_HUGEPAGE);
	}
	m->addr = addr;
	m->size = size;
	m->kind = SPILL_HOST;
	m->pool_id = 0;
	return 0;
}

/* MemAvailable less a reserve (1/8 of RAM, at least 1 GiB) so spilling never starves the host. */
static uint64_t read_meminfo(void)
{
	unsigned long long total = 0, avail = 0, kb;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			total = kb << 10;
		else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			avail = kb << 10;
	}
	fclose(f);
	avail = sat_sub(avail, total / 8 > (1ULL << 30) ? total / 8 : (1ULL << 30));
	return avail;
}

/* MemAvailable as above, and no more than this process's cgroup v2 lets it take. */
static uint64_t read_available(void)
{
	uint64_t avail = read_meminfo(), room;

	if (cgroup_memory_room(&room) == 0 && room < avail)
		avail = room;
	return avail;
}

/*
 * Reading /proc/meminfo took 33 us on the development machine and was most of what
 * cuMemGetInfo added on an H100 (23 us against 6), and frameworks poll cuMemGetInfo: the figure
 * is kept for HOST_AVAIL_MAX_AGE_NS.  Two threads may both refresh it; either answer is right.
 */
#define HOST_AVAIL_MAX_AGE_NS (100ULL * 1000 * 1000)

uint64_t host_available(void)
{
	static _Atomic uint64_t cached, stamp_ns; /* stamp 0: never read */
	uint64_t now = now_coarse_ns() + 1, stamp;

	stamp = atomic_load_explicit(&stamp_ns, memory_order_acquire);
	if (stamp && now - stamp <= HOST_AVAIL_MAX_AGE_NS)
		return atomic_load_explicit(&cached, memory_order_relaxed);
	atomic_store_explicit(&cached, read_available(), memory_order_relaxed);
	atomic_store_explicit(&stamp_ns, now, memory_order_release);
	return atomic_load_explicit(&cached, memory_order_relaxed);
}
