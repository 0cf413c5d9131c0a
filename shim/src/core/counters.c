/* Event counters: relaxed atomics, read by the JSON view and the tests. */
#include "core.h"

static _Atomic uint64_t counts[CNT_COUNT];
static const char *const count_names[CNT_COUNT] = {
#define NAME(name) #name,
	SPW_COUNTERS(NAME)
#undef NAME
};

void counter_inc(enum counter c)
{
	atomic_fetch_add_explicit(&counts[c], 1, memory_order_relaxed);
}

uint64_t counter_read(enum counter c)
{
	return atomic_load(&counts[c]);
}

const char *counter_name(enum counter c)
{
	return count_names[c];
}
