/*
 * Pool backend: buffers from /dev/spillway (the kernel module's reserved RAM), each a dma-buf
 * mapped MAP_SHARED.  The mapping keeps the dma-buf alive, so the fd is closed at once; the
 * buffer shows in `spillway status` (SPILLWAY_IOC_LIST_BUFFERS) until it is unmapped.
 */
#define _GNU_SOURCE
#include "core.h"
#include "spillway.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int pool_fd = -1; /* set once in pool_open, read-only afterwards */
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_open(void)
{
	/* SPILLWAY_DEVICE names another node (tests); the default is the module's misc device. */
	const char *path = getenv("SPILLWAY_DEVICE");
	struct spillway_version v = { 0 };
	int fd;

	if (!path || !*path)
		path = "/dev/" SPILLWAY_DEVICE_NAME;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		spw_log(LOG_INFO, "pool backend unavailable: %s: %m", path);
		return;
	}
	if (ioctl(fd, SPILLWAY_IOC_VERSION, &v) != 0 || v.major != SPILLWAY_ABI_MAJOR) {
		spw_log(LOG_WARN, "%s speaks ABI %u.%u, the shim %d.%d: pool backend off", path,
			v.major, v.minor, SPILLWAY_ABI_MAJOR, SPILLWAY_ABI_MINOR);
		close(fd);
		return;
	}
	pool_fd = fd;
}

int pool_usable(void)
{
	pthread_once(&pool_once, pool_open);
	return pool_fd >= 0;
}

int pool_map(size_t size, struct backend_map *m)
{
	struct spillway_alloc req = { .size = size };
	void *addr;
	int err;

	if (!pool_usable())
		return -ENODEV;
	if (ioctl(pool_fd, SPILLWAY_IOC_ALLOC, &req) != 0)
		return -errno;
	addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, req.fd, 0);
	err = errno;
	close(req.fd);
	if (addr == MAP_FAILED)
		return -err;
	m->addr = addr;
	m->size = size;
	m->kind = SPILL_POOL;
	m->pool_id = req.id;
	return 0;
}

uint64_t pool_free_bytes(void)
{
	struct spillway_info info = { 0 };

	if (!pool_usable() || ioctl(pool_fd, SPILLWAY_IOC_INFO, &info) != 0)
		return 0;
	return info.free_bytes;
}

void backend_unmap(struct backend_map *m)
{
	if (m->addr)
		munmap(m->addr, m->size);
	m->addr = NULL;
}
