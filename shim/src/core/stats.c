/*
 * The statistics as one JSON object, for spillway_stats_json() and the exit report: the
 * figures of accounting.c, the counters of counters.c and the configuration.
 */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>

/* snprintf into a moving window; the total length is returned even when it did not fit. */
struct out {
	char *buf;
	size_t len, pos;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->pos < o->len ? o->buf + o->pos : NULL,
		      o->pos < o->len ? o->len - o->pos : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->pos += (size_t)n;
}

/*
 * Write the statistics as one JSON object into @buf (NUL-terminated when @len > 0).
 * Returns the length the whole object needs, like snprintf.  Exported for applications and
 * tests: dlsym(RTLD_DEFAULT, "spillway_stats_json").
 */
int spillway_stats_json(char *buf, size_t len)
{
	static const char *const kinds[SPILL_KINDS] = { "pool", "host", "host_numa" };
	struct out o = { buf, len, 0 };
	struct account_device u;
	struct account_totals t;
	int first = 1;

	put(&o, "{\"devices\":[");
	for (int d = 0; d < MAX_DEVICES; d++) {
		if (!account_device(d, &u))
			continue;
		put(&o,
		    "%s{\"device\":%d,\"vram_bytes\":%llu,\"vram_peak\":%llu,"
		    "\"spill_bytes\":%llu,\"spill_peak\":%llu,\"graph_bytes\":%llu}",
		    first ? "" : ",", d, (unsigned long long)u.vram_used,
		    (unsigned long long)u.vram_peak, (unsigned long long)u.spill_used,
		    (unsigned long long)u.spill_peak, (unsigned long long)graph_memory_reserved(d));
		first = 0;
	}
	account_totals(&t);
	put(&o,
	    "],\"spill_bytes\":%llu,\"spill_peak\":%llu,\"lent_bytes\":%llu,\"lent_peak\":%llu,"
	    "\"managed_bytes\":%llu,\"backends\":{",
	    (unsigned long long)t.spill_used, (unsigned long long)t.spill_peak,
	    (unsigned long long)t.lent, (unsigned long long)t.lent_peak,
	    (unsigned long long)t.managed);
	for (int k = 0; k < SPILL_KINDS; k++)
		put(&o, "%s\"%s\":{\"bytes\":%llu,\"total\":%llu}", k ? "," : "", kinds[k],
		    (unsigned long long)t.spill_now[k], (unsigned long long)t.spill_ever[k]);
	put(&o, "},\"counts\":{");
	for (int c = 0; c < CNT_COUNT; c++)
		put(&o, "%s\"%s\":%llu", c ? "," : "", counter_name(c),
		    (unsigned long long)counter_read(c));
	{
		const struct spw_config *c = spw_config();
		static const char *const backends[] = { "auto", "pool", "host", "off" };

		put(&o,
		    "},\"config\":{\"vram_limit\":%llu,\"headroom\":%llu,\"min_spill\":%llu,"
		    "\"spill_limit\":%llu,\"chunk\":%llu,\"reserve\":%llu,\"reserve_auto\":%s,"
		    "\"large\":%llu,\"backend\":\"%s\",\"report\":\"%s\"}}",
		    (unsigned long long)c->vram_limit, (unsigned long long)c->headroom,
		    (unsigned long long)c->min_spill, (unsigned long long)c->spill_limit,
		    (unsigned long long)c->chunk, (unsigned long long)policy_reserve(c, 0),
		    c->reserve_auto ? "true" : "false", (unsigned long long)c->large,
		    backends[c->backend], c->report == REPORT_VIRTUAL ? "virtual" : "physical");
	}
	return (int)o.pos;
}

void stats_at_exit(void)
{
	char buf[4096];
	int n = spillway_stats_json(buf, sizeof(buf) - 1);

	if (n <= 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	log_write("spillway stats: ", 16);
	buf[n++] = '\n';
	log_write(buf, (size_t)n);
}
