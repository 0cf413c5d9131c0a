/*
 * Environment configuration.  Every variable is read once; a bad value gets one message on
 * stderr naming the variable and the default used instead, and the program carries on.
 */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static struct spw_config config;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

int parse_size(const char *s, uint64_t *out)
{
	uint64_t value = 0, shift = 0;
	const char *p = s;

	if (!s || !isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (value > (UINT64_MAX - 9) / 10)
			return -1;
		value = value * 10 + (uint64_t)(*p - '0');
	}
	switch (toupper((unsigned char)*p)) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -1;
	}
	if (*p) {
		p++;
		/* Accept 8G, 8GB, 8GiB; all mean 2^30 multiples. */
		if (strcasecmp(p, "") && strcasecmp(p, "B") && strcasecmp(p, "iB"))
			return -1;
	}
	if (shift && value > (UINT64_MAX >> shift))
		return -1;
	*out = value << shift;
	return 0;
}

static void complain(const char *name, const char *value, const char *expected,
		     const char *fallback)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "spillway: ignoring %s=\"%s\": expected %s; using %s\n",
			 name, value, expected, fallback);

	if (n > 0)
		(void)!write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

/* Returns 1 when the variable set the field, 0 when the fallback was used. */
static int read_size(const char *(*get)(const char *), const char *name, uint64_t *field,
		     uint64_t fallback, const char *fallback_text)
{
	const char *v = get(name);
	uint64_t bytes;

	*field = fallback;
	if (!v || !*v)
		return 0;
	if (parse_size(v, &bytes) == 0) {
		*field = bytes;
		return 1;
	}
	complain(name, v, "a size such as 512M, 8G, 8GiB or a byte count", fallback_text);
	return 0;
}

static int pick(const char *value, const char *const *names, int count)
{
	for (int i = 0; i < count; i++)
		if (!strcasecmp(value, names[i]))
			return i;
	return -1;
}

static void read_backend(struct spw_config *c, const char *v)
{
	static const char *const names[] = { "auto", "pool", "host", "off" };
	int i;

	c->backend = BACKEND_AUTO;
	if (!v || !*v)
		return;
	i = pick(v, names, 4);
	if (i < 0)
		complain("SPILLWAY_BACKEND", v, "auto, pool, host or off", "auto");
	else
		c->backend = (enum spill_backend_mode)i;
}

static void read_report(struct spw_config *c, const char *v)
{
	static const char *const names[] = { "virtual", "physical" };
	int i;

	/* Honest by default: frameworks that size themselves from free memory plan for VRAM. */
	c->report = REPORT_PHYSICAL;
	if (!v || !*v)
		return;
	i = pick(v, names, 2);
	if (i < 0)
		complain("SPILLWAY_REPORT", v, "virtual or physical", "physical");
	else
		c->report = (enum report_mode)i;
}

/* SPILLWAY_LOG: words separated by commas, then an optional ":path"; e.g. "info,stats:/tmp/x". */
static void read_log(struct spw_config *c, const char *v)
{
	static const char *const levels[] = { "off", "error", "warn", "info", "debug" };
	char words[256];
	const char *colon;
	size_t len;
	int bad = 0;

	c->log_level = LOG_WARN;
	c->log_stats = 0;
	c->log_path[0] = '\0';
	if (!v || !*v)
		return;
	colon = strchr(v, ':');
	len = colon ? (size_t)(colon - v) : strlen(v);
	if (len >= sizeof(words) ||
	    (colon && (!colon[1] || strlen(colon + 1) >= sizeof(c->log_path)))) {
		bad = 1;
	} else {
		char *save = NULL, *w;

		memcpy(words, v, len);
		words[len] = '\0';
		for (w = strtok_r(words, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
			int i = pick(w, levels, 5);

			if (i >= 0)
				c->log_level = (enum log_level)i;
			else if (!strcasecmp(w, "stats"))
				c->log_stats = 1;
			else
				bad = 1;
		}
		if (colon)
			strcpy(c->log_path, colon + 1);
	}
	if (bad) {
		c->log_level = LOG_WARN;
		c->log_stats = 0;
		c->log_path[0] = '\0';
		complain(
			"SPILLWAY_LOG", v,
			"off|error|warn|info|debug and/or stats, comma-separated, then optional :path",
			"warn on stderr");
	}
}

void config_parse(struct spw_config *c, const char *(*get)(const char *))
{
	memset(c, 0, sizeof(*c));
	read_log(c, get("SPILLWAY_LOG"));
	read_size(get, "SPILLWAY_VRAM_LIMIT", &c->vram_limit, 0, "no limit");
	read_size(get, "SPILLWAY_HEADROOM", &c->headroom, DEFAULT_HEADROOM, "256M");
	read_size(get, "SPILLWAY_MIN_SPILL", &c->min_spill, DEFAULT_MIN_SPILL, "1M");
	read_size(get, "SPILLWAY_SPILL_LIMIT", &c->spill_limit, 0, "no limit");
	read_size(get, "SPILLWAY_CHUNK", &c->chunk, DEFAULT_CHUNK, "256M");
	if (c->chunk < (2ULL << 20)) {
		complain("SPILLWAY_CHUNK", get("SPILLWAY_CHUNK"), "at least 2M", "256M");
		c->chunk = DEFAULT_CHUNK;
	}
	read_size(get, "SPILLWAY_LARGE", &c->large, DEFAULT_LARGE, "32M");
	c->reserve_auto = !read_size(get, "SPILLWAY_RESERVE", &c->reserve, 0,
				     "10% of the budget, at most 1G");
	read_backend(c, get("SPILLWAY_BACKEND"));
	read_report(c, get("SPILLWAY_REPORT"));
}

static const char *env_get(const char *name)
{
	return getenv(name);
}

static void config_init(void)
{
	config_parse(&config, env_get);
}

const struct spw_config *spw_config(void)
{
	pthread_once(&config_once, config_init);
	return &config;
}
