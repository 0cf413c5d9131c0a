/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cgroup v2 helpers of the share test and bench: a device fd opened inside
 * a cgroup, a cgroup's id, rmdir that waits for the last task's exit.
 */
#ifndef SPILLWAY_TEST_CGROUP_H
#define SPILLWAY_TEST_CGROUP_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../kmod/include/uapi/spillway.h"
#include "../include/tap.h"

static inline int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ret = -1;

	if (fd >= 0) {
		ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -1;
		close(fd);
	}
	return ret;
}

/* The cgroup id of a cgroup v2 directory: its inode number. */
static inline uint64_t cg_id(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_ino;
}

/* rmdir, retried while the last task's exit is still being accounted. */
static inline int cg_rmdir(const char *path)
{
	for (int i = 0; i < 100; i++) {
		if (!rmdir(path) || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -1;
		usleep(10000);
	}
	return -1;
}

/*
 * A /dev/spillway fd opened by a child moved into @cg; the child has exited
 * when this returns.  -1 on failure.
 */
static inline int open_in(const char *cg)
{
	char procs[256], pid[32], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = pid, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int sv[2], fd = -1, status;
	pid_t child;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	fflush(stdout);
	child = fork();
	if (child == 0) {
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
		snprintf(pid, sizeof(pid), "%d", getpid());
		if (write_file(procs, pid))
			_exit(2);
		fd = open("/dev/" SPILLWAY_DEVICE_NAME, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			_exit(3);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		_exit(sendmsg(sv[1], &msg, 0) == 1 ? 0 : 4);
	}
	close(sv[1]);
	if (recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC) == 1) {
		cm = CMSG_FIRSTHDR(&msg);
		if (cm && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	}
	close(sv[0]);
	waitpid(child, &status, 0);
	if (fd < 0)
		diag("open_in(%s): child status %#x", cg, status);
	return fd;
}

#endif /* SPILLWAY_TEST_CGROUP_H */
