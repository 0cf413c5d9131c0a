/*
 * The cgroup v2 reader (shim/src/core/cgroup.c, linked in): parsing, finding the cgroup's
 * directory, the least room up the tree, on made-up trees.  With T_CGROUP_MAX set (the VM test
 * puts this program in a real cgroup v2 with that memory.max: test/shim/cgroup-vm.test.ts) it
 * also checks the live figure and, under the shim on the fake driver, that the virtual report is
 * bounded by the cgroup and that a spill past memory.max is refused with OUT_OF_MEMORY.
 */
#include "shim_test.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

static char tree[64];

static void put(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tree, rel);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

TEST(limits_parse)
{
	uint64_t v = 0;

	ok(cgroup_parse_bytes("max\n", &v) == 0 && v == CGROUP_NO_LIMIT, "\"max\" is no limit");
	ok(cgroup_parse_bytes("1073741824\n", &v) == 0 && v == 1ULL << 30, "a byte count");
	ok(cgroup_parse_bytes("", &v) == -EINVAL && cgroup_parse_bytes("-1", &v) == -EINVAL &&
		   cgroup_parse_bytes("12x", &v) == -EINVAL &&
		   cgroup_parse_bytes("maximum", &v) == -EINVAL,
	   "anything else is refused");
}

TEST(the_cgroup_directory_is_found)
{
	static const char *const unified =
		"25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
	static const char *const hybrid =
		"34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
		"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
	static const char *const namespaced =
		"25 1 0:22 /job /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw\n";
	char dir[256];
	size_t mount_len = 0;

	ok(cgroup_v2_dir("0::/user.slice/job.scope\n", unified, dir, sizeof(dir), &mount_len) ==
			   0 &&
		   !strcmp(dir, "/sys/fs/cgroup/user.slice/job.scope") && mount_len == 14,
	   "unified hierarchy: mount point + the path of 0:: (%s)", dir);
	ok(cgroup_v2_dir("4:memory:/x\n0::/\n", hybrid, dir, sizeof(dir), &mount_len) == 0 &&
		   !strcmp(dir, "/sys/fs/cgroup/unified"),
	   "hybrid hierarchy: the cgroup2 mount, the root cgroup (%s)", dir);
	ok(cgroup_v2_dir("0::/job/sub\n", namespaced, dir, sizeof(dir), &mount_len) == 0 &&
		   !strcmp(dir, "/sys/fs/cgroup/sub"),
	   "a mount of a subtree: the path below its root (%s)", dir);
	/* mountinfo writes space, tab, newline and backslash as \ooo; /proc/self/cgroup does not. */
	ok(cgroup_v2_dir("0::/job x/run 1\n",
			 "25 1 0:22 /job\\040x /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n", dir,
			 sizeof(dir), &mount_len) == 0 &&
		   !strcmp(dir, "/mnt/my cgroups/run 1") && mount_len == 15,
	   "octal escapes in mountinfo's root and mount point are decoded (%s)", dir);
	ok(cgroup_v2_dir("0::/jobber/x\n",
			 "25 1 0:22 /job /mnt/a rw - cgroup2 cgroup2 rw\n"
			 "26 1 0:22 /jobber /mnt/b rw - cgroup2 cgroup2 rw\n",
			 dir, sizeof(dir), &mount_len) == 0 &&
		   !strcmp(dir, "/mnt/b/x"),
	   "a mount's root matches whole path components only (%s)", dir);
	ok(cgroup_v2_dir("4:memory:/x\n", unified, dir, sizeof(dir), &mount_len) == -ENOENT,
	   "no 0:: line (cgroup v1 only): none");
	ok(cgroup_v2_dir("0::/\n", "34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n",
			 dir, sizeof(dir), &mount_len) == -ENOENT,
	   "no cgroup2 mount: none");
}

TEST(the_least_room_up_the_tree)
{
	char dir[128];
	uint64_t room = 0;

	snprintf(tree, sizeof(tree), "/tmp/spillway-t_cgroup-%d", (int)getpid());
	mkdir(tree, 0700);
	snprintf(dir, sizeof(dir), "%s/a", tree);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/a/b", tree);
	mkdir(dir, 0700);
	ok(cgroup_room_in(dir, strlen(tree), &room) == 0 && room == CGROUP_NO_LIMIT,
	   "no memory.max anywhere: no limit");
	put("a/memory.max", "1073741824\n");
	put("a/memory.current", "104857600\n");
	put("a/b/memory.max", "max\n");
	put("a/b/memory.current", "52428800\n");
	ok(cgroup_room_in(dir, strlen(tree), &room) == 0 && room == (1ULL << 30) - 100 * MiB,
	   "\"max\" below a limited parent: the parent's room");
	put("a/b/memory.max", "209715200\n");
	ok(cgroup_room_in(dir, strlen(tree), &room) == 0 && room == 150 * MiB,
	   "the child's own limit when it is the tighter");
	put("a/b/memory.current", "262144000\n");
	ok(cgroup_room_in(dir, strlen(tree), &room) == 0 && room == 0,
	   "usage past the limit: 0, never negative");
	put("memory.max", "1048576\n");
	put("memory.current", "0\n");
	ok(cgroup_room_in(dir, strlen(tree), &room) == 0 && room == 0,
	   "the walk stops at the mount: a file above it is not read");
	snprintf(dir, sizeof(dir), "rm -rf %s", tree);
	ok(system(dir) == 0, "made-up tree removed");
}

TEST(this_process)
{
	const char *want = getenv("T_CGROUP_MAX");
	uint64_t room = 0, max;
	int rc = cgroup_memory_room(&room);

	ok((rc == 0 || rc == -ENOENT) && (rc == 0 || room == CGROUP_NO_LIMIT),
	   "the live figure reads (rc %d)", rc);
	diag("room under this process's cgroup: %llu", (unsigned long long)room);
	if (!want) {
		ok(1,
		   "real cgroup v2 limits # SKIP T_CGROUP_MAX not set (cgroup-vm.test.ts sets it)");
		return;
	}
	max = strtoull(want, NULL, 10);
	ok(rc == 0 && room <= max && room + 64 * MiB > max,
	   "inside a cgroup with memory.max %llu: the room is that less what this process uses",
	   (unsigned long long)max);
	ok(cgroup_fits(room / 2) && !cgroup_fits(max + 1), "cgroup_fits agrees");
}

TEST(the_shim_under_a_memory_limit)
{
	const char *want = getenv("T_CGROUP_MAX");
	size_t free_b = 0, total_b = 0;
	CUdeviceptr small, big;
	uint64_t max;

	if (!want) {
		ok(1, "the shim under a real cgroup # SKIP T_CGROUP_MAX not set");
		return;
	}
	max = strtoull(want, NULL, 10);
	if (!shim_setup("SPILLWAY_VRAM_LIMIT=64M", "SPILLWAY_CHUNK=16M", "SPILLWAY_BACKEND=host",
			"SPILLWAY_REPORT=virtual", "FAKE_CUDA_VRAM=1G", NULL))
		return;
	ok(cuMemGetInfo_v2(&free_b, &total_b) == CUDA_SUCCESS && free_b >= 64 * MiB &&
		   free_b - 64 * MiB <= max,
	   "virtual report: free %zu MiB = the budget + at most what the cgroup leaves",
	   free_b >> 20);
	ok(cuMemAlloc_v2(&small, 80 * MiB) == CUDA_SUCCESS &&
		   cuMemAlloc_v2(&big, 8 * MiB) == CUDA_SUCCESS,
	   "80 MiB (split: VRAM up to budget - reserve, the rest host) and 8 MiB (spilled) fit under memory.max");
	ok(cuMemFree_v2(big) == CUDA_SUCCESS, "the 8 MiB freed");
	ok(cuMemAlloc_v2(&big, 2 * max) == CUDA_ERROR_OUT_OF_MEMORY &&
		   stat_of(NULL, "spill_failures") >= 1,
	   "a spill that would pass memory.max is refused with OUT_OF_MEMORY, not left to the OOM killer");
	ok(cuMemFree_v2(small) == CUDA_SUCCESS && stat_of(NULL, "spill_bytes") == 0, "freed");
}

int main(void)
{
	return tap_run();
}
