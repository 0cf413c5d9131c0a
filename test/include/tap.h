/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TAP output for every C test program (test/shim, test/kmod): "ok N - name" and
 * "not ok N - name" lines, "# " diagnostics, and named test cases in the style of the
 * kernel's kselftest_harness.h:
 *
 *	TEST(frees_return_to_the_budget)
 *	{
 *		ok(..., "what was checked");
 *	}
 *
 *	int main(void) { return tap_run(); }
 *
 * tap_run() runs the cases in the order they are written, each under a "# name" line, then
 * prints the plan.  Programs whose lines a script numbers across programs (test/kmod's
 * run-tests.sh) are built with -DTAP_UNNUMBERED: "ok - name", no plan.
 */
#ifndef SPILLWAY_TEST_TAP_H
#define SPILLWAY_TEST_TAP_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failures;

/*
 * Set while a test holds the machine under memory pressure: results stay in stdout's
 * buffer, so that the reader of the pipe does not have to run, and fault its pages back in,
 * until the pressure is over (test/kmod).
 */
static int tap_hold_output;

static inline void tap_flush(void)
{
	if (!tap_hold_output)
		fflush(stdout);
}

__attribute__((format(printf, 1, 2))) static inline void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	tap_flush();
}

/* Prints one result; returns @pass so callers can stop a dependent block. */
__attribute__((format(printf, 2, 3))) static inline int ok(int pass, const char *fmt, ...)
{
	va_list ap;

	tap_count++;
#ifdef TAP_UNNUMBERED
	fputs(pass ? "ok - " : "not ok - ", stdout);
#else
	printf("%sok %d - ", pass ? "" : "not ", tap_count);
#endif
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	tap_flush();
	if (!pass)
		tap_failures++;
	return pass;
}

/*
 * ok() for a call that must fail with errno @want: pass the call's result; errno is read
 * here, after the call (argument order is unspecified).
 */
static inline int ok_errno(long ret, int want, const char *name)
{
	int err = errno;

	if (ret == -1 && err == want)
		return ok(1, "%s -> %s", name, strerror(want));
	ok(0, "%s -> %s", name, strerror(want));
	diag("got ret=%ld errno=%d (%s)", ret, ret == -1 ? err : 0,
	     ret == -1 ? strerror(err) : "success");
	return 0;
}

/* The exit status: 0 when every result so far passed. */
static inline int tap_exit(void)
{
	return tap_failures ? 1 : 0;
}

/* Prints the plan (numbered output) and returns the exit status. */
static inline int done_testing(void)
{
#ifndef TAP_UNNUMBERED
	printf("1..%d\n", tap_count);
	fflush(stdout);
#endif
	return tap_exit();
}

/* ---- named cases ---- */

struct tap_case {
	const char *name;
	void (*fn)(void);
	struct tap_case *next;
};

static struct tap_case *tap_cases, **tap_cases_end = &tap_cases;

static inline void tap_register(struct tap_case *c)
{
	*tap_cases_end = c;
	tap_cases_end = &c->next;
}

/* A named case; registered before main() (a constructor, in the test program only). */
#define TEST(name)                                                             \
	static void test_##name(void);                                         \
	static struct tap_case tap_case_##name = { #name, test_##name, NULL }; \
	__attribute__((constructor)) static void tap_register_##name(void)     \
	{                                                                      \
		tap_register(&tap_case_##name);                                \
	}                                                                      \
	static void test_##name(void)

/* Runs every TEST() in the order written, then prints the plan; returns the exit status. */
static inline int tap_run(void)
{
	for (struct tap_case *c = tap_cases; c; c = c->next) {
		diag("%s", c->name);
		c->fn();
	}
	return done_testing();
}

#endif /* SPILLWAY_TEST_TAP_H */
