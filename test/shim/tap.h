/* Minimal TAP output for the shim's test programs: "ok N - name" lines, then the plan. */
#ifndef SPILLWAY_TAP_H
#define SPILLWAY_TAP_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count, tap_failed;

__attribute__((format(printf, 2, 3)))
static int ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

static int done_testing(void)
{
	printf("1..%d\n", tap_count);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

/* The shim's statistics as JSON (empty when the shim is not loaded). */
static const char *shim_stats(void)
{
	static char buf[8192];
	int (*fn)(char *, size_t) = (int (*)(char *, size_t))dlsym(RTLD_DEFAULT, "spillway_stats_json");

	buf[0] = '\0';
	if (fn)
		fn(buf, sizeof(buf));
	return buf;
}

/* The number after "key": at its first occurrence after @after (NULL: from the start). */
__attribute__((unused)) static long long stat_of(const char *after, const char *key)
{
	const char *json = shim_stats(), *p = json;
	char pat[96];

	if (after) {
		p = strstr(json, after);
		if (!p)
			return -1;
	}
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(p, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* Fake-driver test hooks, found at run time. */
__attribute__((unused)) static long fake_calls(const char *name)
{
	long (*fn)(const char *) = (long (*)(const char *))dlsym(RTLD_DEFAULT, "fake_calls");

	return fn ? fn(name) : -1;
}

__attribute__((unused)) static long fake_registrations(void)
{
	long (*fn)(void) = (long (*)(void))dlsym(RTLD_DEFAULT, "fake_registrations");

	return fn ? fn() : -1;
}

__attribute__((unused)) static uint64_t fake_vram_used(int dev)
{
	uint64_t (*fn)(int) = (uint64_t (*)(int))dlsym(RTLD_DEFAULT, "fake_vram_used");

	return fn ? fn(dev) : (uint64_t)-1;
}

__attribute__((unused)) static const char *file_of(const void *p)
{
	Dl_info info;
	const char *slash;

	if (!p || !dladdr(p, &info) || !info.dli_fname)
		return "";
	slash = strrchr(info.dli_fname, '/');
	return slash ? slash + 1 : info.dli_fname;
}

__attribute__((unused)) static const char *name_of(const void *p)
{
	Dl_info info;

	if (!p || !dladdr(p, &info) || !info.dli_sname || info.dli_saddr != p)
		return "";
	return info.dli_sname;
}

#define MiB (1ULL << 20)

#endif
