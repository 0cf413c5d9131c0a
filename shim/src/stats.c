/*
 * Counters: per-device atomics (no lock), peaks kept with compare-and-swap, and a JSON view
 * for spillway_stats_json() and the exit report.
 */
#include "shim.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct dev_stats {
	_Atomic uint64_t vram_used, vram_peak;
	_Atomic uint64_t spill_used, spill_peak;
	_Atomic int seen;
};

static struct dev_stats devs[MAX_DEVICES];
static _Atomic uint64_t spill_now[SPILL_KINDS], spill_ever[SPILL_KINDS];
static _Atomic uint64_t spill_total_now, spill_total_peak, managed_now;

static _Atomic uint64_t counts[CNT_COUNT];
static const char *const count_names[CNT_COUNT] = {
#define NAME(name) #name,
	SPW_COUNTERS(NAME)
#undef NAME
};

static void raise_peak(_Atomic uint64_t *peak, uint64_t value)
{
	uint64_t old = atomic_load_explicit(peak, memory_order_relaxed);

	while (value > old && !atomic_compare_exchange_weak(peak, &old, value))
		;
}

static void add(_Atomic uint64_t *v, int64_t delta, _Atomic uint64_t *peak)
{
	uint64_t now = atomic_fetch_add(v, (uint64_t)delta) + (uint64_t)delta;

	if (peak && delta > 0)
		raise_peak(peak, now);
}

void stats_vram(int dev, int64_t delta)
{
	if (dev < 0 || dev >= MAX_DEVICES)
		return;
	devs[dev].seen = 1;
	add(&devs[dev].vram_used, delta, &devs[dev].vram_peak);
	vram_free_note(dev, delta);
}

/* Take @size of @dev's VRAM budget if it fits under @ceiling (atomic: threads cannot overshoot). */
int stats_vram_take(int dev, uint64_t size, uint64_t ceiling)
{
	uint64_t old;

	if (dev < 0 || dev >= MAX_DEVICES)
		return 1;
	devs[dev].seen = 1;
	old = atomic_load(&devs[dev].vram_used);
	do {
		if (sat_add(old, size) > ceiling)
			return 0;
	} while (!atomic_compare_exchange_weak(&devs[dev].vram_used, &old, old + size));
	raise_peak(&devs[dev].vram_peak, old + size);
	vram_free_note(dev, (int64_t)size);
	return 1;
}

void stats_spill(int dev, enum spill_kind kind, int64_t delta)
{
	if (dev >= 0 && dev < MAX_DEVICES) {
		devs[dev].seen = 1;
		add(&devs[dev].spill_used, delta, &devs[dev].spill_peak);
	}
	add(&spill_now[kind], delta, NULL);
	if (delta > 0)
		atomic_fetch_add(&spill_ever[kind], (uint64_t)delta);
	add(&spill_total_now, delta, &spill_total_peak);
}

void stats_managed(int64_t delta)
{
	add(&managed_now, delta, NULL);
}

void stats_count(enum counter c)
{
	atomic_fetch_add_explicit(&counts[c], 1, memory_order_relaxed);
}

uint64_t stats_counter(enum counter c)
{
	return atomic_load(&counts[c]);
}

uint64_t stats_vram_used(int dev)
{
	return dev >= 0 && dev < MAX_DEVICES ? atomic_load(&devs[dev].vram_used) : 0;
}

uint64_t stats_spill_used_total(void)
{
	return atomic_load(&spill_total_now);
}

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
	int first = 1;

	put(&o, "{\"devices\":[");
	for (int d = 0; d < MAX_DEVICES; d++) {
		if (!atomic_load(&devs[d].seen))
			continue;
		put(&o, "%s{\"device\":%d,\"vram_bytes\":%llu,\"vram_peak\":%llu,"
		    "\"spill_bytes\":%llu,\"spill_peak\":%llu}", first ? "" : ",", d,
		    (unsigned long long)devs[d].vram_used, (unsigned long long)devs[d].vram_peak,
		    (unsigned long long)devs[d].spill_used, (unsigned long long)devs[d].spill_peak);
		first = 0;
	}
	put(&o, "],\"spill_bytes\":%llu,\"spill_peak\":%llu,\"managed_bytes\":%llu,\"backends\":{",
	    (unsigned long long)spill_total_now, (unsigned long long)spill_total_peak,
	    (unsigned long long)managed_now);
	for (int k = 0; k < SPILL_KINDS; k++)
		put(&o, "%s\"%s\":{\"bytes\":%llu,\"total\":%llu}", k ? "," : "", kinds[k],
		    (unsigned long long)spill_now[k], (unsigned long long)spill_ever[k]);
	put(&o, "},\"counts\":{");
	for (int c = 0; c < CNT_COUNT; c++)
		put(&o, "%s\"%s\":%llu", c ? "," : "", count_names[c],
		    (unsigned long long)atomic_load(&counts[c]));
	{
		const struct spw_config *c = spw_config();
		static const char *const backends[] = { "auto", "pool", "host", "off" };

		put(&o, "},\"config\":{\"vram_limit\":%llu,\"headroom\":%llu,\"min_spill\":%llu,"
		    "\"spill_limit\":%llu,\"chunk\":%llu,\"reserve\":%llu,\"reserve_auto\":%s,"
		    "\"large\":%llu,\"backend\":\"%s\",\"report\":\"%s\"}}",
		    (unsigned long long)c->vram_limit, (unsigned long long)c->headroom,
		    (unsigned long long)c->min_spill, (unsigned long long)c->spill_limit,
		    (unsigned long long)c->chunk, (unsigned long long)policy_reserve(c, 0),
		    c->reserve_auto ? "true" : "false", (unsigned long long)c->large,
		    backends[c->backend],
		    c->report == REPORT_VIRTUAL ? "virtual" : "physical");
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
