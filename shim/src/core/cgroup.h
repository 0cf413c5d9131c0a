/* The memory this process may still take under its cgroup v2 limits. */
#ifndef SPILLWAY_CGROUP_H
#define SPILLWAY_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#define CGROUP_NO_LIMIT UINT64_MAX

/*
 * Room left for this process's memory under its cgroup and every ancestor: the least of
 * memory.max - memory.current over those that have a limit (0 when one is at or past its
 * limit), CGROUP_NO_LIMIT when none has one. 0 on success; -ENOENT where there is no
 * cgroup v2 hierarchy for this process (cgroup v1, not mounted, no /proc): *room is then
 * CGROUP_NO_LIMIT too, so a caller may treat both alike.
 */
int cgroup_memory_room(uint64_t *room);

/* Whether @bytes more host memory fit under the limits (1 without cgroup v2 or a limit). */
int cgroup_fits(uint64_t bytes);

/* The pure parts, for tests. */
int cgroup_parse_bytes(const char *text, uint64_t *out); /* "max" -> CGROUP_NO_LIMIT */
int cgroup_v2_dir(const char *proc_cgroup, const char *mountinfo, char *dir, size_t len,
		  size_t *mount_len);
int cgroup_room_in(const char *dir, size_t mount_len, uint64_t *room);
void cgroup_forget(void); /* drop the cached directory (tests; after a move) */

/* Fork handlers (init.c): the lookup's lock, a leaf (nothing else is taken under it). */
void cgroup_lock(void);
void cgroup_unlock(void);
void cgroup_reset_lock(void);

#endif
