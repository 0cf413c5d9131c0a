// SPDX-License-Identifier: GPL-2.0
/*
 * swctl: runs a sequence of actions on /dev/spillway and prints one result
 * token per action (OK, an errno name such as EDQUOT, or a value), space
 * separated, so that security.sh can run it as different users and compare
 * what happened with what must happen.
 *
 *   swctl ACTION...
 *
 *   open | open-ro          open the device (O_RDWR / O_RDONLY)
 *   closedev                close the device (buffers stay)
 *   version                 the test_ioctls field of VERSION
 *   alloc:SIZE              allocate and keep the fd (buffers are numbered from 0)
 *   close:N                 close buffer N's fd
 *   fill:N:TEXT             map buffer N and write TEXT at the start of every page
 *   map:N                   map buffer N and keep the mapping
 *   anon:KB                 map KB of anonymous memory, touch every page and
 *                           keep it: page faults, which make a 6.1 kernel
 *                           fold the task's cached RSS counts into its mm
 *   resize:BYTES            RESIZE
 *   wm:WARN:CRIT            SET_WATERMARKS
 *   pin                     TEST_PIN of one anonymous page
 *   list                    LIST_BUFFERS: "N" (count), uids as "N:uid,uid"
 *   cloexec:N               "OK" when buffer N's fd is FD_CLOEXEC and a child
 *                           started with exec() has no dma-buf fd
 *   hold:FILE               write "PID FD..." to FILE, wait until FILE is removed
 *   send:SOCKET:N           pass buffer N's fd to a unix socket (SCM_RIGHTS)
 *   recv:SOCKET             accept one fd on SOCKET, map it: "OK:TEXT" or errno
 *   openmap:PATH            open PATH read-write and map it: "OK:TEXT" or errno
 *   scan:TEXT               allocate all the pool it can: "CLEAN:MB" when every
 *                           byte is zero, "FOUND:MB" when not
 *   write:PATH:VALUE        write VALUE to a file (sysfs): OK or errno
 *   race:THREADS:SIZE       THREADS threads allocate SIZE buffers at once until
 *                           each gets an error: "MB_HELD:ERRNO"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "common.h"

#define MAX_HELD 64

static int dev = -1;
static int held[MAX_HELD];
static uint64_t held_size[MAX_HELD];
static int nheld;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void out(const char *fmt, ...)
{
	static bool first = true;
	va_list ap;

	if (!first)
		putchar(' ');
	first = false;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static char *arg_field(char *s, int idx)
{
	char *p = s;

	for (int i = 0; i < idx; i++) {
		p = strchr(p, ':');
		if (!p)
			return NULL;
		p++;
	}
	return p;
}

static int buf_index(const char *s)
{
	int n = atoi(s);

	return n >= 0 && n < nheld ? n : -1;
}

/* Maps fd and reads the text at its start: "OK:TEXT" or the errno. */
static void map_and_show(int fd)
{
	char *p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	char text[64];

	if (p == MAP_FAILED) {
		out("%s", errname(errno));
		return;
	}
	snprintf(text, sizeof(text), "%.40s", p);
	for (char *c = text; *c; c++)
		if (*c == ' ' || (unsigned char)*c < 0x20)
			*c = '_';
	out("OK:%s", text);
	munmap(p, PAGE);
}

static void do_alloc(const char *size_s)
{
	struct spillway_alloc a = { 0 };
	uint64_t size;
	int err;

	if (!parse_size(size_s, &size) || nheld >= MAX_HELD) {
		out("BADARG");
		return;
	}
	a.size = size;
	err = spw_ioctl(dev, SPILLWAY_IOC_ALLOC, &a);
	if (!err) {
		held_size[nheld] = a.size;
		held[nheld++] = a.fd;
	}
	out("%s", errname(err));
}

static void do_fill(int n, const char *text)
{
	char *p;

	if (n < 0) {
		out("BADARG");
		return;
	}
	p = mmap(NULL, held_size[n], PROT_READ | PROT_WRITE, MAP_SHARED, held[n], 0);
	if (p == MAP_FAILED) {
		out("%s", errname(errno));
		return;
	}
	for (uint64_t off = 0; off < held_size[n]; off += PAGE)
		memcpy(p + off, text, strlen(text) + 1);
	munmap(p, held_size[n]);
	out("OK");
}

static void do_list(void)
{
	struct spillway_buffer_info e[64];
	struct spillway_list l = { .entries = (uintptr_t)e, .capacity = 64 };
	int err = spw_ioctl(dev, SPILLWAY_IOC_LIST_BUFFERS, &l);
	char uids[256] = "";
	size_t used = 0;

	if (err) {
		out("%s", errname(err));
		return;
	}
	for (uint32_t i = 0; i < l.count && i < 64 && used < sizeof(uids) - 16; i++)
		used += snprintf(uids + used, sizeof(uids) - used, "%s%u", i ? "," : "", e[i].uid);
	out("%u:%s", l.count, uids);
}

static void do_cloexec(int n)
{
	int flags, status;
	pid_t pid;

	if (n < 0) {
		out("BADARG");
		return;
	}
	flags = fcntl(held[n], F_GETFD);
	if (flags < 0 || !(flags & FD_CLOEXEC)) {
		out("NOCLOEXEC");
		return;
	}
	pid = fork();
	if (pid == 0) {
		/* exit 0 when no open fd of the new program is a dma-buf */
		execl("/bin/sh", "sh", "-c",
		      "for f in /proc/self/fd/*; do case $(readlink $f) in *dmabuf*) exit 1;; esac; done; exit 0",
		      (char *)NULL);
		_exit(2);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		out("ERROR");
	else
		out(WEXITSTATUS(status) == 0 ? "OK" : "LEAKED");
}

static void do_hold(const char *file)
{
	FILE *f = fopen(file, "we");
	struct stat st;

	if (!f) {
		out("%s", errname(errno));
		return;
	}
	fprintf(f, "%d", getpid());
	for (int i = 0; i < nheld; i++)
		fprintf(f, " %d", held[i]);
	fprintf(f, "\n");
	fclose(f);
	/* Only ENOENT ends it: under a cgroup OOM, stat() can fail with ENOMEM. */
	while (stat(file, &st) == 0 || errno != ENOENT)
		usleep(20000);
	out("OK");
}

static int unix_socket(const char *path, struct sockaddr_un *sa)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
	return s;
}

/* A one-byte message with room for one fd (SCM_RIGHTS). */
struct fd_msg {
	char byte;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov;
	struct msghdr msg;
};

static void fd_msg_init(struct fd_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->byte = 'x';
	m->iov = (struct iovec){ &m->byte, 1 };
	m->msg = (struct msghdr){ .msg_iov = &m->iov,
				  .msg_iovlen = 1,
				  .msg_control = m->u.buf,
				  .msg_controllen = sizeof(m->u.buf) };
}

static void do_send(const char *path, int n)
{
	struct sockaddr_un sa;
	int s = unix_socket(path, &sa);
	struct fd_msg m;
	struct cmsghdr *cm;

	fd_msg_init(&m);
	cm = CMSG_FIRSTHDR(&m.msg);
	if (n < 0 || s < 0) {
		out("BADARG");
		return;
	}
	for (int tries = 0; connect(s, (struct sockaddr *)&sa, sizeof(sa)); tries++) {
		if (tries > 250) {
			out("%s", errname(errno));
			return;
		}
		usleep(20000);
	}
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &held[n], sizeof(int));
	out("%s", sendmsg(s, &m.msg, 0) == 1 ? "OK" : errname(errno));
	close(s);
}

static void do_recv(const char *path)
{
	struct sockaddr_un sa;
	int s = unix_socket(path, &sa), c, fd = -1;
	struct fd_msg m;
	struct cmsghdr *cm;

	fd_msg_init(&m);
	unlink(path);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, 0777) ||
	    listen(s, 1)) {
		out("%s", errname(errno));
		return;
	}
	c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	if (c >= 0 && recvmsg(c, &m.msg, MSG_CMSG_CLOEXEC) == 1) {
		cm = CMSG_FIRSTHDR(&m.msg);
		if (cm && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	}
	if (fd < 0)
		out("NOFD");
	else
		map_and_show(fd);
	close(s);
	unlink(path);
}

static void do_openmap(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		out("%s", errname(errno));
		return;
	}
	map_and_show(fd);
	close(fd);
}

/* Takes as much of the pool as it can get and looks for TEXT in it. */
static void do_scan(const char *text)
{
	bool found = false;
	uint64_t got = 0;

	for (;;) {
		struct spillway_alloc a = { .size = MIB };
		char *p;

		if (spw_ioctl(dev, SPILLWAY_IOC_ALLOC, &a))
			break;
		p = mmap(NULL, MIB, PROT_READ, MAP_SHARED, a.fd, 0);
		if (p == MAP_FAILED)
			break;
		got += MIB;
		found |= memmem(p, MIB, text, strlen(text)) != NULL;
		for (uint64_t i = 0; i < MIB / 8 && !found; i++)
			found = ((uint64_t *)p)[i] != 0; /* anything not zero is someone's data */
		munmap(p, MIB);
		/* keep the fd: freeing it would hand the same pages back */
	}
	out("%s:%lluM",
	    got == 0 ? "NOTHING"
	    : found  ? "FOUND"
		     : "CLEAN",
	    (unsigned long long)(got / MIB));
}

static void do_write(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t w;

	if (fd < 0) {
		out("%s", errname(errno));
		return;
	}
	w = write(fd, value, strlen(value));
	out("%s", w == (ssize_t)strlen(value) ? "OK" : errname(errno));
	close(fd);
}

static atomic_uint_fast64_t race_bytes;
static atomic_int race_err;
static uint64_t race_size;
static pthread_barrier_t race_start;

static void *race_thread(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&race_start);
	for (;;) {
		struct spillway_alloc a = { .size = race_size };
		int err = spw_ioctl(dev, SPILLWAY_IOC_ALLOC, &a);

		if (err) {
			race_err = err;
			return NULL;
		}
		race_bytes += race_size; /* the fd stays open until exit */
	}
}

/* Many threads of one user allocate at once: the limit must hold for their sum. */
static void do_race(int threads, const char *size_s)
{
	pthread_t th[64];

	if (threads < 1 || threads > 64 || !parse_size(size_s, &race_size)) {
		out("BADARG");
		return;
	}
	pthread_barrier_init(&race_start, NULL, threads);
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, race_thread, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	out("%lluM:%s", (unsigned long long)(race_bytes / MIB), errname(race_err));
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		char *a = argv[i], *f1 = arg_field(a, 1), *f2 = arg_field(a, 2);
		struct spillway_version v;

		if (!strcmp(a, "open") || !strcmp(a, "open-ro")) {
			dev = dev_open(!strcmp(a, "open") ? O_RDWR : O_RDONLY);
			out("%s", dev >= 0 ? "OK" : errname(errno));
			if (dev < 0)
				break; /* nothing else can work */
		} else if (!strcmp(a, "closedev")) {
			out("%s", close(dev) == 0 ? "OK" : errname(errno));
			dev = -1;
		} else if (!strcmp(a, "version")) {
			int err = spw_version(dev, &v);

			if (err)
				out("%s", errname(err));
			else
				out("%u", v.test_ioctls);
		} else if (!strncmp(a, "alloc:", 6)) {
			do_alloc(f1);
		} else if (!strncmp(a, "close:", 6)) {
			int n = buf_index(f1);

			out("%s", n >= 0 && close(held[n]) == 0 ? "OK" : "BADARG");
		} else if (!strncmp(a, "map:", 4)) {
			int n = buf_index(f1);
			void *p = n < 0 ? MAP_FAILED
					: mmap(NULL, held_size[n], PROT_READ | PROT_WRITE,
					       MAP_SHARED, held[n], 0);

			out("%s", n < 0 ? "BADARG" : p == MAP_FAILED ? errname(errno) : "OK");
		} else if (!strncmp(a, "anon:", 5)) {
			size_t bytes = strtoull(f1, NULL, 10) * 1024;
			char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p != MAP_FAILED)
				for (size_t i = 0; i < bytes; i += 4096)
					p[i] = 1;
			out("%s", p == MAP_FAILED ? errname(errno) : "OK");
		} else if (!strncmp(a, "fill:", 5) && f2) {
			f2[-1] = 0;
			do_fill(buf_index(f1), f2);
		} else if (!strncmp(a, "resize:", 7)) {
			struct spillway_resize rs = { 0 };
			uint64_t bytes = 0;

			parse_size(f1, &bytes);
			rs.pool_bytes = bytes;
			out("%s", errname(spw_ioctl(dev, SPILLWAY_IOC_RESIZE, &rs)));
		} else if (!strncmp(a, "wm:", 3) && f2) {
			struct spillway_watermarks w = { 0 };
			uint64_t warn = 0, crit = 0;

			f2[-1] = 0;
			parse_size(f1, &warn);
			parse_size(f2, &crit);
			w.warn = warn;
			w.critical = crit;
			out("%s", errname(spw_ioctl(dev, SPILLWAY_IOC_SET_WATERMARKS, &w)));
		} else if (!strcmp(a, "pin")) {
			static char page[4096] __attribute__((aligned(4096)));
			struct spillway_test_pin tp = { .addr = (uintptr_t)page, .size = PAGE };

			page[0] = 1;
			out("%s", errname(spw_ioctl(dev, SPILLWAY_IOC_TEST_PIN, &tp)));
		} else if (!strcmp(a, "list")) {
			do_list();
		} else if (!strncmp(a, "cloexec:", 8)) {
			do_cloexec(buf_index(f1));
		} else if (!strncmp(a, "hold:", 5)) {
			do_hold(f1);
		} else if (!strncmp(a, "send:", 5) && f2) {
			f2[-1] = 0;
			do_send(f1, buf_index(f2));
		} else if (!strncmp(a, "recv:", 5)) {
			do_recv(f1);
		} else if (!strncmp(a, "openmap:", 8)) {
			do_openmap(f1);
		} else if (!strncmp(a, "scan:", 5)) {
			do_scan(f1);
		} else if (!strncmp(a, "race:", 5) && f2) {
			f2[-1] = 0;
			do_race(atoi(f1), f2);
		} else if (!strncmp(a, "write:", 6) && f2) {
			f2[-1] = 0;
			do_write(f1, f2);
		} else {
			out("BADACTION");
		}
	}
	putchar('\n');
	return 0;
}
