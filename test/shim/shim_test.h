/*
 * Helpers of the shim's test programs: the setup most of them share, the shim's statistics,
 * the fake driver's counters, names of pointers.  TAP output and TEST() are
 * test/include/tap.h.
 */
#ifndef SPILLWAY_SHIM_TEST_H
#define SPILLWAY_SHIM_TEST_H

#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../include/tap.h"

/*
 * The usual start: set each "NAME=value" of the NULL-terminated list in the environment
 * (the shim reads it at its first call), cuInit, and a context on device 0 made current.
 * Reports it as one result; returns the context (NULL when that failed).
 */
__attribute__((sentinel, unused)) static CUcontext shim_setup(const char *setting, ...)
{
	CUcontext ctx = NULL;
	va_list ap;
	int good;

	va_start(ap, setting);
	for (const char *s = setting; s; s = va_arg(ap, const char *)) {
		const char *eq = strchr(s, '=');
		char name[64];

		if (!eq || (size_t)(eq - s) >= sizeof(name))
			continue;
		memcpy(name, s, (size_t)(eq - s));
		name[eq - s] = '\0';
		setenv(name, eq + 1, 1);
	}
	va_end(ap);
	good = cuInit(0) == CUDA_SUCCESS && cuCtxCreate_v4(&ctx, NULL, 0, 0) == CUDA_SUCCESS;
	ok(good, "cuInit and a context on device 0");
	return good ? ctx : NULL;
}

/* The shim's statistics as JSON (empty when the shim is not loaded). */
static const char *shim_stats(void)
{
	static char buf[8192];
	int (*fn)(char *, size_t) =
		(int (*)(char *, size_t))dlsym(RTLD_DEFAULT, "spillway_stats_json");

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
	uint64_t (*fn)(int) = (uint64_t(*)(int))dlsym(RTLD_DEFAULT, "fake_vram_used");

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

/*
 * The shim's log in a file of this test's own: shim_log_to() before shim_setup (it sets
 * SPILLWAY_LOG=info:PATH), logged() asks whether a line contains @text, shim_log_remove() at
 * the end.
 */
static char shim_log_path[64];

__attribute__((unused)) static void shim_log_to(const char *test)
{
	char setting[96];

	snprintf(shim_log_path, sizeof(shim_log_path), "/tmp/spillway-%s-%d.log", test,
		 (int)getpid());
	snprintf(setting, sizeof(setting), "info:%s", shim_log_path);
	setenv("SPILLWAY_LOG", setting, 1);
}

__attribute__((unused)) static int logged(const char *text)
{
	char buf[65536];
	FILE *f = fopen(shim_log_path, "r");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

__attribute__((unused)) static void shim_log_remove(void)
{
	unlink(shim_log_path);
}

/* Whether @n bytes at @p (a mapping the test wrote) all hold @v, sampled every 4093 bytes. */
__attribute__((unused)) static int filled(CUdeviceptr p, size_t n, unsigned char v)
{
	const unsigned char *c = (const unsigned char *)p;

	for (size_t i = 0; i < n; i += 4093)
		if (c[i] != v)
			return 0;
	return c[n - 1] == v;
}

#define MiB (1ULL << 20)

#endif /* SPILLWAY_SHIM_TEST_H */
