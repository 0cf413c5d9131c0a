/*
 * The pure parts, linked in directly: size parsing, configuration parsing, placement
 * decisions and reported figures (clamps).
 */
#include "shim_test.h"

#include "core.h"

static const char *const *env_now;

static const char *fake_getenv(const char *name)
{
	size_t n = strlen(name);

	for (const char *const *e = env_now; e && *e; e++)
		if (!strncmp(*e, name, n) && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static void parse_with(struct spw_config *c, const char *const *env)
{
	env_now = env;
	config_parse(c, fake_getenv);
}

TEST(sizes_parse)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} good[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "512M", 512ULL << 20 },
		{ "512m", 512ULL << 20 },
		{ "8G", 8ULL << 30 },
		{ "8GiB", 8ULL << 30 },
		{ "8GB", 8ULL << 30 },
		{ "64K", 64ULL << 10 },
		{ "1T", 1ULL << 40 },
		{ "1tib", 1ULL << 40 },
	};
	static const char *const bad[] = {
		"", "G", "-1", "8X", "8GiBs", "1.5G", " 8G", "99999999999999999999", "17179869184G"
	};
	uint64_t v;
	int all = 1;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int ok_one = parse_size(good[i].text, &v) == 0 && v == good[i].bytes;

		if (!ok_one)
			printf("# %s\n", good[i].text);
		all &= ok_one;
	}
	ok(all, "sizes parse: bytes, K/M/G/T, with B or iB, any case");
	all = 1;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int refused = parse_size(bad[i], &v) == -1;

		if (!refused)
			printf("# accepted \"%s\"\n", bad[i]);
		all &= refused;
	}
	ok(all, "empty, signed, fractional, junk and overflowing sizes are refused");
}

TEST(config_variables)
{
	struct spw_config c;

	parse_with(&c, NULL);
	ok(c.vram_limit == 0 && c.headroom == DEFAULT_HEADROOM &&
		   c.min_spill == DEFAULT_MIN_SPILL && c.backend == BACKEND_AUTO &&
		   c.report == REPORT_PHYSICAL && c.log_level == LOG_WARN && !c.log_stats &&
		   !c.log_path[0] && c.chunk == DEFAULT_CHUNK,
	   "defaults without variables");
	{
		static const char *const env[] = { "SPILLWAY_VRAM_LIMIT=8GiB",
						   "SPILLWAY_HEADROOM=512M",
						   "SPILLWAY_MIN_SPILL=4M",
						   "SPILLWAY_BACKEND=pool",
						   "SPILLWAY_REPORT=physical",
						   "SPILLWAY_LOG=debug,stats:/tmp/spillway-test.log",
						   "SPILLWAY_CHUNK=1G",
						   NULL };

		parse_with(&c, env);
		ok(c.vram_limit == 8ULL << 30 && c.headroom == 512ULL << 20 &&
			   c.min_spill == 4ULL << 20 && c.backend == BACKEND_POOL &&
			   c.report == REPORT_PHYSICAL && c.log_level == LOG_DEBUG && c.log_stats &&
			   !strcmp(c.log_path, "/tmp/spillway-test.log") && c.chunk == 1ULL << 30,
		   "every variable is read");
	}
	{
		static const char *const env[] = { "SPILLWAY_LOG=stats", "SPILLWAY_BACKEND=OFF",
						   NULL };

		parse_with(&c, env);
		ok(c.log_stats && c.log_level == LOG_WARN && c.backend == BACKEND_OFF,
		   "SPILLWAY_LOG=stats keeps the level; names are case-insensitive");
	}
}

/* placement without a reserve: first come, first in VRAM */
TEST(placement_without_reserve)
{
	struct spw_config c;
	struct policy_input in;

	parse_with(&c,
		   (const char *const[]){ "SPILLWAY_VRAM_LIMIT=1G", "SPILLWAY_HEADROOM=100M",
					  "SPILLWAY_MIN_SPILL=1M", "SPILLWAY_RESERVE=0", NULL });
	in = (struct policy_input){ .size = 512 << 10, .vram_used = 2ULL << 30, .vram_free = 0 };
	ok(policy_decide(&c, &in) == PLACE_VRAM && !policy_needs_free(&c, in.size, in.vram_used),
	   "below SPILLWAY_MIN_SPILL: VRAM, without asking the driver");
	in = (struct policy_input){ .size = 100 << 20,
				    .vram_used = 950ULL << 20,
				    .vram_free = UINT64_MAX };
	ok(policy_decide(&c, &in) == PLACE_SPILL && !policy_needs_free(&c, in.size, in.vram_used),
	   "past the budget: spill, without asking the driver");
	in = (struct policy_input){ .size = 100 << 20, .vram_used = 0, .vram_free = 150ULL << 20 };
	ok(policy_decide(&c, &in) == PLACE_SPILL && policy_needs_free(&c, in.size, in.vram_used),
	   "within budget but free VRAM - headroom too small: spill");
	in.vram_free = 200ULL << 20;
	ok(policy_decide(&c, &in) == PLACE_VRAM, "within budget and room on the card: VRAM");
	in = (struct policy_input){ .size = 924ULL << 20,
				    .vram_used = 100ULL << 20,
				    .vram_free = UINT64_MAX };
	ok(policy_decide(&c, &in) == PLACE_VRAM, "exactly filling the budget: VRAM");
	in.size++;
	ok(policy_decide(&c, &in) == PLACE_SPILL, "one byte more: spill");
	in = (struct policy_input){ .size = UINT64_MAX,
				    .vram_used = UINT64_MAX,
				    .vram_free = UINT64_MAX };
	ok(policy_decide(&c, &in) == PLACE_SPILL, "sizes near 2^64 do not wrap around");
	ok(policy_budgeted(&c, 2 << 20) && !policy_budgeted(&c, 4096),
	   "budget applies from MIN_SPILL up");
	parse_with(&c,
		   (const char *const[]){ "SPILLWAY_BACKEND=off", "SPILLWAY_VRAM_LIMIT=1G", NULL });
	in = (struct policy_input){ .size = 8ULL << 30, .vram_used = 0, .vram_free = 0 };
	ok(policy_decide(&c, &in) == PLACE_VRAM && !policy_budgeted(&c, in.size),
	   "SPILLWAY_BACKEND=off: always VRAM, as without the shim");
}

/* the reserve: the last SPILLWAY_RESERVE bytes of the budget are for requests below SPILLWAY_LARGE */
TEST(reserve_for_requests_below_large)
{
	struct spw_config c;
	struct policy_input in;

	parse_with(&c, (const char *const[]){ "SPILLWAY_VRAM_LIMIT=1G", "SPILLWAY_HEADROOM=100M",
					      NULL });
	ok(c.reserve_auto && c.large == DEFAULT_LARGE && policy_reserve(&c, 0) == (1ULL << 30) / 10,
	   "defaults: SPILLWAY_LARGE 32M, reserve a tenth of the budget (%llu)",
	   (unsigned long long)policy_reserve(&c, 0));
	in = (struct policy_input){ .size = 64ULL << 20,
				    .vram_used = (1ULL << 30) - (1ULL << 30) / 10 - (64ULL << 20),
				    .vram_free = UINT64_MAX };
	ok(policy_decide(&c, &in) == PLACE_VRAM,
	   "large request that ends just under budget - reserve: VRAM");
	in.vram_used += 2ULL << 20;
	ok(policy_decide(&c, &in) == PLACE_SPILL && !policy_needs_free(&c, in.size, in.vram_used),
	   "large request that would eat into the reserve: spill, without asking the driver");
	in = (struct policy_input){ .size = 20ULL << 20,
				    .vram_used = (1ULL << 30) - (30ULL << 20),
				    .vram_free = UINT64_MAX };
	ok(policy_decide(&c, &in) == PLACE_VRAM && policy_needs_free(&c, in.size, in.vram_used),
	   "small request (20 MiB) inside the reserve: VRAM");
	in.vram_used = (1ULL << 30) - (10ULL << 20);
	ok(policy_decide(&c, &in) == PLACE_SPILL, "small request past the whole budget: spill");
	in = (struct policy_input){ .size = 32ULL << 20,
				    .vram_used = 950ULL << 20,
				    .vram_free = UINT64_MAX };
	ok(policy_decide(&c, &in) == PLACE_SPILL, "exactly SPILLWAY_LARGE counts as large");
	in.size = (32ULL << 20) - 1;
	ok(policy_decide(&c, &in) == PLACE_VRAM, "one byte less is small");
	ok(policy_ceiling(&c, 64ULL << 20, 0) == (1ULL << 30) - (1ULL << 30) / 10 &&
		   policy_ceiling(&c, 64ULL << 20, 1) == 1ULL << 30 &&
		   policy_ceiling(&c, 2ULL << 20, 0) == 1ULL << 30,
	   "atomic ceilings: budget - reserve for large, the budget for small or after a failed spill");
	in = (struct policy_input){ .size = 64ULL << 20,
				    .vram_used = 0,
				    .vram_free = 260ULL << 20 };
	ok(policy_decide(&c, &in) == PLACE_SPILL,
	   "on the card too: a large request leaves headroom + reserve free (64 + 100 + 102.4 > 260 MiB)");
	in.vram_free = 270ULL << 20;
	ok(policy_decide(&c, &in) == PLACE_VRAM, "and fits when they are");
	parse_with(&c, (const char *const[]){ "SPILLWAY_VRAM_LIMIT=64G", NULL });
	ok(policy_reserve(&c, 0) == 1ULL << 30, "the default reserve is at most 1 GiB");
	parse_with(&c, (const char *const[]){ NULL });
	ok(policy_reserve(&c, 8ULL << 30) == (8ULL << 30) / 10 && policy_reserve(&c, 0) == 0,
	   "without SPILLWAY_VRAM_LIMIT the budget is the card (0 until its size is known)");
	in = (struct policy_input){ .size = 512ULL << 20,
				    .vram_used = 0,
				    .vram_free = 1ULL << 30,
				    .vram_total = 8ULL << 30 };
	ok(policy_decide(&c, &in) == PLACE_SPILL &&
		   (in.size = 16ULL << 20, policy_decide(&c, &in) == PLACE_VRAM),
	   "no limit, 1 GiB free of 8: 512 MiB spills (leaves headroom + 819 MiB), 16 MiB does not");
	parse_with(&c, (const char *const[]){ "SPILLWAY_VRAM_LIMIT=1G", "SPILLWAY_RESERVE=256M",
					      "SPILLWAY_LARGE=100M", NULL });
	in = (struct policy_input){ .size = 99ULL << 20,
				    .vram_used = 900ULL << 20,
				    .vram_free = UINT64_MAX };
	ok(!c.reserve_auto && c.reserve == 256ULL << 20 && c.large == 100ULL << 20 &&
		   policy_decide(&c, &in) == PLACE_VRAM &&
		   (in.size = 100ULL << 20, in.vram_used = 700ULL << 20,
		    policy_decide(&c, &in) == PLACE_SPILL),
	   "SPILLWAY_RESERVE=256M SPILLWAY_LARGE=100M are used as given");
	parse_with(&c,
		   (const char *const[]){ "SPILLWAY_VRAM_LIMIT=1G", "SPILLWAY_RESERVE=0", NULL });
	in = (struct policy_input){ .size = 512ULL << 20,
				    .vram_used = 512ULL << 20,
				    .vram_free = UINT64_MAX };
	ok(policy_reserve(&c, 0) == 0 && policy_decide(&c, &in) == PLACE_VRAM &&
		   policy_ceiling(&c, in.size, 0) == 1ULL << 30,
	   "SPILLWAY_RESERVE=0: first come, first in VRAM, as before");
	parse_with(&c,
		   (const char *const[]){ "SPILLWAY_VRAM_LIMIT=1G", "SPILLWAY_RESERVE=2G", NULL });
	in = (struct policy_input){ .size = 64ULL << 20, .vram_used = 0, .vram_free = UINT64_MAX };
	ok(policy_decide(&c, &in) == PLACE_SPILL &&
		   (in.size = 2ULL << 20, policy_decide(&c, &in) == PLACE_VRAM),
	   "a reserve larger than the budget: every large request spills, small ones fill the budget");
}

/* when a cached free figure may stand in for the driver's */
TEST(cached_free_figure)
{
	struct spw_config c;

	parse_with(&c, (const char *const[]){ "SPILLWAY_VRAM_LIMIT=8G", "SPILLWAY_HEADROOM=256M",
					      NULL });
	ok(policy_free_cached_ok(&c, 112ULL << 20, 70ULL << 30, 80ULL << 30, 5000000),
	   "recent and far from the request: the cached figure decides");
	ok(!policy_free_cached_ok(&c, 112ULL << 20, 70ULL << 30, 80ULL << 30,
				  FREE_CACHE_MAX_AGE_NS + 1),
	   "older than FREE_CACHE_MAX_AGE_NS: ask the driver");
	ok(!policy_free_cached_ok(&c, 1ULL << 30, (2ULL << 30) + (256ULL << 20) + (819ULL << 20),
				  80ULL << 30, 0) &&
		   policy_free_cached_ok(&c, 1ULL << 30,
					 (3ULL << 30) + (256ULL << 20) + (820ULL << 20),
					 80ULL << 30, 0),
	   "within FREE_CACHE_SLACK of request + headroom + reserve: ask the driver");
	ok(!policy_free_cached_ok(&c, UINT64_MAX, UINT64_MAX - 1, 0, 0),
	   "sizes near 2^64 do not wrap around");
}

/* reporting */
TEST(reporting)
{
	struct spw_config c;
	uint64_t f, t;

	parse_with(&c, (const char *const[]){ "SPILLWAY_VRAM_LIMIT=1G", "SPILLWAY_REPORT=physical",
					      NULL });
	policy_report(&c, 70ULL << 30, 80ULL << 30, 300ULL << 20, 0, 0, &f, &t);
	ok(t == 1ULL << 30 && f == (1ULL << 30) - (300ULL << 20),
	   "physical: total is the budget, free what is left of it");
	policy_report(&c, 70ULL << 30, 80ULL << 30, 3ULL << 30, 0, 0, &f, &t);
	ok(f == 0 && t == 1ULL << 30, "past the budget: free is 0, never negative");
	policy_report(&c, 300ULL << 20, 80ULL << 30, 0, 0, 0, &f, &t);
	ok(f == 44ULL << 20,
	   "the card's own free figure, less the 256 MiB headroom, wins when smaller");
	policy_report(&c, 100ULL << 20, 80ULL << 30, 0, 0, 0, &f, &t);
	ok(f == 0,
	   "a card with less free than the headroom: free is 0 (every request would spill)");
	parse_with(&c, (const char *const[]){ "SPILLWAY_REPORT=physical", "SPILLWAY_HEADROOM=0",
					      NULL });
	policy_report(&c, 90, 80, 0, 0, 0, &f, &t);
	ok(f == 80 && t == 80, "free is never above total");
	parse_with(&c, (const char *const[]){ "SPILLWAY_VRAM_LIMIT=1G", NULL });
	policy_report(&c, 70ULL << 30, 80ULL << 30, 3ULL << 30, 2ULL << 30, 5ULL << 30, &f, &t);
	ok(c.report == REPORT_PHYSICAL && f == 0 && t == 1ULL << 30,
	   "the default report is physical: nothing spillable counted, even with spill available");
	parse_with(&c, (const char *const[]){ "SPILLWAY_VRAM_LIMIT=1G", "SPILLWAY_REPORT=virtual",
					      NULL });
	policy_report(&c, 70ULL << 30, 80ULL << 30, 3ULL << 30, 2ULL << 30, 5ULL << 30, &f, &t);
	ok(f == 5ULL << 30 && t == (1ULL << 30) + (2ULL << 30) + (5ULL << 30),
	   "virtual: free = budget left (0) + spill available; total = budget + spilled + available");
	policy_report(&c, UINT64_MAX, UINT64_MAX, 0, UINT64_MAX, UINT64_MAX, &f, &t);
	ok(f <= t && t == UINT64_MAX, "virtual figures saturate instead of wrapping");
	parse_with(&c, (const char *const[]){ "SPILLWAY_BACKEND=off", "SPILLWAY_REPORT=virtual",
					      NULL });
	policy_report(&c, 10, 20, 0, 5, 7, &f, &t);
	ok(f == 10 && t == 20, "with spilling off, virtual reports the card");
	ok(sat_sub(1, 2) == 0 && sat_add(UINT64_MAX, 1) == UINT64_MAX, "saturating arithmetic");
}

int main(void)
{
	return tap_run();
}
