/*
 * Bad configuration: each case runs this program again (a fresh process parses afresh) with
 * one bad variable; the child uses the shim and prints the configuration it got.  A bad value
 * must give exactly one clear message on stderr and the default, and never stop the program.
 */
#include "shim_test.h"

#include <cuda.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int child(void)
{
	CUcontext ctx;
	CUdeviceptr p;
	size_t f, t;

	cuInit(0);
	cuCtxCreate_v4(&ctx, NULL, 0, 0);
	cuMemGetInfo_v2(&f, &t);
	cuMemAlloc_v2(&p, 1 << 20);
	cuMemFree_v2(p);
	cuMemGetInfo_v2(&f, &t);
	printf("%s\n", shim_stats());
	return 0;
}

static int read_all(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	return (int)n;
}

/* Run the child with @var set; collect stdout and stderr. */
static int run_child(const char *var, char *out, char *err, size_t len)
{
	int po[2], pe[2], status = -1;
	posix_spawn_file_actions_t fa;
	char *argv[] = { "t_config", "child", NULL };
	char *envp[256];
	size_t n = 0;
	pid_t pid;

	for (char **e = environ; *e && n < 250; e++)
		if (strncmp(*e, "SPILLWAY_", 9))
			envp[n++] = *e;
	envp[n++] = (char *)var;
	envp[n] = NULL;
	if (pipe(po) || pipe(pe))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawn_file_actions_addclose(&fa, po[0]);
	posix_spawn_file_actions_addclose(&fa, pe[0]);
	if (posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, envp) != 0)
		return -1;
	close(po[1]);
	close(pe[1]);
	read_all(po[0], out, len);
	read_all(pe[0], err, len);
	close(po[0]);
	close(pe[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The child's stdout and stderr, for one case at a time. */
static char out[16384], err[16384];

TEST(bad_values_warn_once_and_keep_the_default)
{
	static const struct {
		const char *var, *name, *expect;
	} cases[] = {
		{ "SPILLWAY_VRAM_LIMIT=lots", "SPILLWAY_VRAM_LIMIT", "\"vram_limit\":0," },
		{ "SPILLWAY_HEADROOM=-5M", "SPILLWAY_HEADROOM", "\"headroom\":268435456," },
		{ "SPILLWAY_MIN_SPILL=1.5M", "SPILLWAY_MIN_SPILL", "\"min_spill\":1048576," },
		{ "SPILLWAY_BACKEND=gpu", "SPILLWAY_BACKEND", "\"backend\":\"auto\"" },
		{ "SPILLWAY_REPORT=maybe", "SPILLWAY_REPORT", "\"report\":\"physical\"" },
		{ "SPILLWAY_LOG=loud", "SPILLWAY_LOG", "\"vram_limit\":0," },
		{ "SPILLWAY_CHUNK=1M", "SPILLWAY_CHUNK", "\"chunk\":268435456," },
		{ "SPILLWAY_RESERVE=10%", "SPILLWAY_RESERVE", "\"reserve_auto\":true," },
		{ "SPILLWAY_LARGE=big", "SPILLWAY_LARGE", "\"large\":33554432," },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_child(cases[i].var, out, err, sizeof(out));
		char want[128];

		snprintf(want, sizeof(want), "ignoring %s=", cases[i].name);
		ok(rc == 0 && count(err, want) == 1 && count(err, "spillway: ignoring") == 1 &&
			   strstr(out, cases[i].expect),
		   "%s: one message, the default, the program runs (rc %d)", cases[i].var, rc);
	}
}

TEST(good_value_is_used_quietly)
{
	int rc = run_child("SPILLWAY_VRAM_LIMIT=8GiB", out, err, sizeof(out));

	ok(rc == 0 && !strstr(err, "ignoring") && strstr(out, "\"vram_limit\":8589934592,"),
	   "a good value gives no message and is used");
}

TEST(log_info_and_stats)
{
	int rc = run_child("SPILLWAY_LOG=info,stats", out, err, sizeof(out));

	ok(rc == 0 && strstr(err, "spillway stats: {") && strstr(err, "info: loaded"),
	   "SPILLWAY_LOG=info,stats logs the start and prints stats at exit");
}

TEST(log_stats_to_a_file)
{
	char path[] = "/tmp/spillway-log-XXXXXX", var[128], text[4096] = "";
	int fd = mkstemp(path), rc;

	snprintf(var, sizeof(var), "SPILLWAY_LOG=stats:%s", path);
	rc = run_child(var, out, err, sizeof(out));
	if (fd >= 0) {
		read_all(fd, text, sizeof(text));
		close(fd);
		unlink(path);
	}
	ok(rc == 0 && strstr(text, "spillway stats: {\"devices\"") && !strstr(err, "stats"),
	   "SPILLWAY_LOG=stats:/path writes the exit stats to that file only");
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "child"))
		return child();
	return tap_run();
}
