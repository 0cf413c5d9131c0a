/* What the tests that run against a real /dev/spillway (t_pool, t_loan) ask the module. */
#ifndef SPILLWAY_POOL_TEST_H
#define SPILLWAY_POOL_TEST_H

#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "spillway.h"

/* Bytes of live pool buffers held by @pid, or -1 when the module does not list them. */
static inline long long pool_buffer_bytes_of(int fd, pid_t pid)
{
	static struct spillway_buffer_info entries[1024];
	struct spillway_list list = { .entries = (uintptr_t)entries, .capacity = 1024 };
	long long bytes = 0;

	if (ioctl(fd, SPILLWAY_IOC_LIST_BUFFERS, &list) != 0)
		return -1;
	for (unsigned int i = 0; i < list.count && i < list.capacity; i++)
		if (entries[i].pid == pid)
			bytes += (long long)entries[i].size;
	return bytes;
}

#endif
