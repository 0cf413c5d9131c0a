/*
 * Pool backend: buffers from /dev/spillway (the kernel module's reserved RAM), each a dma-buf
 * mapped MAP_SHARED.  The mapping keeps the dma-buf alive, so the fd is closed at once; the
 * buffer shows in `spillway status` (SPILLWAY_IOC_LIST_BUFFERS) until it is unmapped.
 *
 * Loans (ABI 1.3, docs/split-placement.md section 3): host memory the driver allocates itself
 * (cuMemCreate on a host NUMA node: a split's host part, a spilled handle) can not be a dma-buf,
 * so the pool shrinks by its size first (SPILLWAY_IOC_LEND) and grows back once the driver has
 * released it (SPILLWAY_IOC_RETURN).  Loans belong to the open file: the module returns what is
 * left when the process exits.
 */
#define _GNU_SOURCE
#include "core.h"
#include "spillway.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int pool_fd = -1;	/* set once in pool_open, read-only afterwards */
static unsigned int pool_minor; /* the module's ABI minor, set with pool_fd (for the log) */
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
/*
 * The process that opened pool_fd: a forked child shares the open file, and with it the parent's
 * loans, which only the parent may end (the child's copies of the records are stale).
 */
static pid_t pool_owner;
/* Set once when LEND answered ENOTTY: a module that speaks 1.3 without lending. */
static _Atomic int lend_unsupported;

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
	pool_minor = v.minor;
	pool_owner = getpid();
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

int pool_serves_spills(const struct spw_config *c)
{
	return c->backend == BACKEND_POOL || (c->backend == BACKEND_AUTO && pool_usable());
}

int pool_lends(void)
{
	return pool_usable() && !atomic_load(&lend_unsupported);
}

int pool_lend(uint64_t size, struct pool_loan *loan)
{
	struct spillway_loan req = { .size = size };

	loan->id = 0;
	loan->size = 0;
	if (!pool_lends() || getpid() != pool_owner)
		return -ENOTTY;
	if (ioctl(pool_fd, SPILLWAY_IOC_LEND, &req) != 0) {
		int err = errno;

		/* Modules before ABI 1.3 do not know the ioctl: ask once. */
		if (err == ENOTTY && !atomic_exchange(&lend_unsupported, 1))
			spw_log(LOG_INFO,
				"the pool's module (ABI %d.%u) does not lend (SPILLWAY_IOC_LEND: "
				"ENOTTY): requests that do not fit are spilled whole",
				SPILLWAY_ABI_MAJOR, pool_minor);
		if (err != ENOTTY)
			counter_inc(CNT_loan_refusals);
		return -err;
	}
	loan->id = req.id;
	loan->size = req.size;
	account_lent((int64_t)req.size);
	counter_inc(CNT_loans);
	return 0;
}

void pool_return(struct pool_loan *loan)
{
	struct spillway_loan req = { .id = loan->id };

	if (!loan->id)
		return;
	if (getpid() != pool_owner)
		spw_log(LOG_DEBUG, "loan %llu is the parent's: a forked child does not end it",
			(unsigned long long)loan->id);
	else if (ioctl(pool_fd, SPILLWAY_IOC_RETURN, &req) != 0)
		spw_log(LOG_WARN,
			"SPILLWAY_IOC_RETURN of loan %llu (%llu bytes): %s; the module ends it when "
			"the process exits",
			(unsigned long long)loan->id, (unsigned long long)loan->size,
			strerror(errno));
	else
		account_lent(-(int64_t)loan->size);
	loan->id = 0;
	loan->size = 0;
}

void backend_unmap(struct backend_map *m)
{
	if (m->addr)
		munmap(m->addr, m->size);
	m->addr = NULL;
}
