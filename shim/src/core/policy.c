/*
 * Placement policy and reported figures: pure functions of the configuration and the
 * numbers passed in, so the tests can check every branch without a driver.
 */
#include "core.h"

uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/*
 * SPILLWAY_RESERVE: the slice of the budget kept for requests below SPILLWAY_LARGE.  Weights
 * are allocated first and in large pieces; activations, the KV cache and library workspaces
 * come later and in small ones, and are the memory a step reads and writes most often.  The
 * budget is SPILLWAY_VRAM_LIMIT, else the card (@card_total, 0 when not known yet).
 */
uint64_t policy_reserve(const struct spw_config *c, uint64_t card_total)
{
	uint64_t budget = c->vram_limit ? c->vram_limit : card_total, r;

	if (!c->reserve_auto)
		return c->reserve;
	r = budget / RESERVE_DEFAULT_DIV;
	return r < RESERVE_DEFAULT_MAX ? r : RESERVE_DEFAULT_MAX;
}

/* How much of the reserve a request must leave alone: all of it when large, else none. */
static uint64_t kept_for(const struct spw_config *c, uint64_t size, uint64_t card_total)
{
	return size >= c->large ? policy_reserve(c, card_total) : 0;
}

uint64_t policy_ceiling(const struct spw_config *c, uint64_t size, int may_use_reserve)
{
	return may_use_reserve ? c->vram_limit : sat_sub(c->vram_limit, kept_for(c, size, 0));
}

/*
 * Requests below SPILLWAY_MIN_SPILL, past the budget (less the reserve for large ones) or with
 * spilling off are decided without the driver's free figure.
 */
int policy_needs_free(const struct spw_config *c, uint64_t size, uint64_t vram_used)
{
	if (c->backend == BACKEND_OFF || size < c->min_spill)
		return 0;
	if (c->vram_limit && sat_add(vram_used, size) > policy_ceiling(c, size, 0))
		return 0;
	return 1;
}

/*
 * The driver's free figure cached @age_ns ago and moved by our own allocations since decides
 * as well as a fresh one when it is recent and the request, with the headroom and the reserve,
 * is at least FREE_CACHE_SLACK away from it (what others may take in that time).
 */
int policy_free_cached_ok(const struct spw_config *c, uint64_t size, uint64_t cached_free,
			  uint64_t card_total, uint64_t age_ns)
{
	uint64_t need = sat_add(sat_add(size, c->headroom), kept_for(c, size, card_total));

	return age_ns <= FREE_CACHE_MAX_AGE_NS && cached_free >= sat_add(need, FREE_CACHE_SLACK);
}

int policy_budgeted(const struct spw_config *c, uint64_t size)
{
	return c->vram_limit && c->backend != BACKEND_OFF && size >= c->min_spill;
}

enum placement policy_decide(const struct spw_config *c, const struct policy_input *in)
{
	uint64_t kept;

	if (c->backend == BACKEND_OFF || in->size < c->min_spill)
		return PLACE_VRAM;
	/* An oversized split opened the reserve to requests of every size (split.c). */
	kept = in->reserve_open ? 0 : kept_for(c, in->size, in->vram_total);
	/*
	 * The budget: this process's VRAM on this device stays within SPILLWAY_VRAM_LIMIT, and
	 * large requests stay out of its last SPILLWAY_RESERVE bytes.
	 */
	if (c->vram_limit && sat_add(in->vram_used, in->size) > sat_sub(c->vram_limit, kept))
		return PLACE_SPILL;
	/* The card: keep SPILLWAY_HEADROOM free for the driver and other users, and the reserve. */
	if (sat_add(sat_add(in->size, c->headroom), kept) > in->vram_free)
		return PLACE_SPILL;
	return PLACE_VRAM;
}

/*
 * physical (the default): the card as limited by SPILLWAY_VRAM_LIMIT: total = min(card, limit),
 * free = min(driver's free less SPILLWAY_HEADROOM, limit - our use): what this process can really
 * get in VRAM (a request that would eat into the headroom spills).
 * virtual: that plus what can still be spilled (free) and what is spilled now (total), so a
 * framework that sizes itself from free memory places everything on the GPU.
 * Both are clamped: never negative, free never above total.
 */
void policy_report(const struct spw_config *c, uint64_t real_free, uint64_t real_total,
		   uint64_t vram_used, uint64_t spill_used, uint64_t spill_avail,
		   uint64_t *free_out, uint64_t *total_out)
{
	uint64_t total = real_total, free = real_free;

	if (c->backend != BACKEND_OFF)
		free = sat_sub(free, c->headroom);
	if (c->vram_limit) {
		if (c->vram_limit < total)
			total = c->vram_limit;
		if (sat_sub(c->vram_limit, vram_used) < free)
			free = sat_sub(c->vram_limit, vram_used);
	}
	if (free > total)
		free = total;
	if (c->report == REPORT_VIRTUAL && c->backend != BACKEND_OFF) {
		free = sat_add(free, spill_avail);
		total = sat_add(sat_add(total, spill_used), spill_avail);
	}
	*free_out = free;
	*total_out = total;
}

/* Why policy_decide answered PLACE_SPILL for @in, in words for the log. */
const char *policy_spill_reason(const struct spw_config *c, const struct policy_input *in)
{
	uint64_t kept = in->reserve_open ? 0 : kept_for(c, in->size, in->vram_total);

	if (c->vram_limit && sat_add(in->vram_used, in->size) > c->vram_limit)
		return "past SPILLWAY_VRAM_LIMIT";
	if (c->vram_limit && sat_add(in->vram_used, in->size) > sat_sub(c->vram_limit, kept))
		return "a large request past the budget less SPILLWAY_RESERVE";
	return "past the card's free VRAM less SPILLWAY_HEADROOM";
}
