/*
 * cgroup v2 memory room: memory.max minus memory.current of this process's cgroup and of
 * each ancestor below the mount, the least of them. Files are read with open/read (no stdio,
 * no allocation); the cgroup's directory is found once, from /proc/self/cgroup ("0::/path")
 * and the cgroup2 line of /proc/self/mountinfo, and kept.
 */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CG_PATH_MAX 4096

static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)got < len - 1 && (n = read(fd, buf + got, len - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	return got;
}

int cgroup_parse_bytes(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;

	while (*text == ' ' || *text == '\t')
		text++;
	if (!strncmp(text, "max", 3) && (text[3] == '\0' || text[3] == '\n')) {
		*out = CGROUP_NO_LIMIT;
		return 0;
	}
	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || (*end != '\0' && *end != '\n'))
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * The field @n (0-based, space-separated) of @line, copied into @out with mountinfo's octal
 * escapes (\040 for a space, \011, \012, \134) decoded: /proc/self/cgroup shows paths raw.
 */
static int field(const char *line, int n, char *out, size_t len)
{
	const char *p = line, *e;
	size_t o = 0;

	for (int i = 0; i < n; i++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	e = strpbrk(p, " \n");
	if (!e)
		e = p + strlen(p);
	for (; p < e; o++) {
		if (o + 1 >= len)
			return -1;
		if (*p == '\\' && e - p >= 4 && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
		    p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			out[o] = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
			p += 4;
		} else {
			out[o] = *p++;
		}
	}
	out[o] = '\0';
	return 0;
}

/*
 * From the texts of /proc/self/cgroup and /proc/self/mountinfo, the directory of this
 * process's cgroup v2 (mount point + path below the mount's root); *mount_len is the length
 * of the mount point's part, where the walk up stops.
 */
int cgroup_v2_dir(const char *proc_cgroup, const char *mountinfo, char *dir, size_t len,
		  size_t *mount_len)
{
	const char *line, *rel = NULL;
	char root[CG_PATH_MAX], mnt[CG_PATH_MAX];
	size_t rel_len = 0, root_len;

	for (line = proc_cgroup; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (!strncmp(line, "0::", 3)) {
			rel = line + 3;
			rel_len = strcspn(rel, "\n");
			break;
		}
	}
	if (!rel)
		return -ENOENT;
	for (line = mountinfo; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		const char *sep = strstr(line, " - ");
		const char *eol = strchr(line, '\n');

		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS] - FSTYPE SOURCE SUPER" */
		if (!sep || (eol && sep > eol) || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		if (field(line, 3, root, sizeof(root)) || field(line, 4, mnt, sizeof(mnt)))
			continue;
		root_len = strlen(root);
		if (root_len == 1)
			root_len = 0; /* "/" */
		if (rel_len < root_len || strncmp(rel, root, root_len) ||
		    (rel_len > root_len && rel[root_len] != '/'))
			continue; /* this mount does not show our cgroup ("/job" is not "/jobber") */
		if (snprintf(dir, len, "%s%.*s", mnt, (int)(rel_len - root_len), rel + root_len) >=
		    (int)len)
			return -ENAMETOOLONG;
		*mount_len = strlen(mnt);
		/* "/" below the mount: the mount point itself */
		if (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
			dir[strlen(dir) - 1] = '\0';
		return 0;
	}
	return -ENOENT;
}

/* The least (memory.max - memory.current) from @dir up to its first @mount_len characters. */
int cgroup_room_in(const char *dir, size_t mount_len, uint64_t *room)
{
	char path[CG_PATH_MAX + 32], text[64];
	size_t len = strlen(dir);
	uint64_t best = CGROUP_NO_LIMIT;

	if (len >= CG_PATH_MAX)
		return -ENAMETOOLONG;
	for (;;) {
		uint64_t max, cur;

		snprintf(path, sizeof(path), "%.*s/memory.max", (int)len, dir);
		if (read_small(path, text, sizeof(text)) > 0 && !cgroup_parse_bytes(text, &max) &&
		    max != CGROUP_NO_LIMIT) {
			snprintf(path, sizeof(path), "%.*s/memory.current", (int)len, dir);
			if (read_small(path, text, sizeof(text)) <= 0 ||
			    cgroup_parse_bytes(text, &cur))
				cur = 0;
			if ((cur >= max ? 0 : max - cur) < best)
				best = cur >= max ? 0 : max - cur;
		}
		if (len <= mount_len)
			break;
		while (len > mount_len && dir[len - 1] != '/')
			len--;
		if (len > mount_len)
			len--; /* drop the '/' */
		if (len < mount_len)
			len = mount_len;
	}
	*room = best;
	return 0;
}

static pthread_mutex_t dir_lock = PTHREAD_MUTEX_INITIALIZER;
static char cg_dir[CG_PATH_MAX];
static size_t cg_mount_len;
static int cg_state; /* 0: not looked up, 1: found, -errno: none */

void cgroup_lock(void)
{
	pthread_mutex_lock(&dir_lock);
}

void cgroup_unlock(void)
{
	pthread_mutex_unlock(&dir_lock);
}

void cgroup_reset_lock(void)
{
	pthread_mutex_init(&dir_lock, NULL);
}

void cgroup_forget(void)
{
	pthread_mutex_lock(&dir_lock);
	cg_state = 0;
	pthread_mutex_unlock(&dir_lock);
}

int cgroup_memory_room(uint64_t *room)
{
	static char cgroup_text[8192], mountinfo_text[65536];
	char dir[CG_PATH_MAX];
	size_t mount_len;
	int state;

	*room = CGROUP_NO_LIMIT;
	pthread_mutex_lock(&dir_lock);
	if (!cg_state) {
		cg_state = -ENOENT;
		if (read_small("/proc/self/cgroup", cgroup_text, sizeof(cgroup_text)) > 0 &&
		    read_small("/proc/self/mountinfo", mountinfo_text, sizeof(mountinfo_text)) >
			    0) {
			int rc = cgroup_v2_dir(cgroup_text, mountinfo_text, cg_dir, sizeof(cg_dir),
					       &cg_mount_len);

			cg_state = rc ? rc : 1;
		}
	}
	state = cg_state;
	memcpy(dir, cg_dir, sizeof(dir));
	mount_len = cg_mount_len;
	pthread_mutex_unlock(&dir_lock);
	if (state != 1)
		return state;
	return cgroup_room_in(dir, mount_len, room);
}

int cgroup_fits(uint64_t bytes)
{
	uint64_t room;

	if (cgroup_memory_room(&room) != 0)
		return 1;
	return bytes <= room;
}
