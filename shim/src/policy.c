/*
 * Placement policy and reported figures: pure functions of the configuration and the
 * numbers passed in, so the tests can check every branch without a driver.
 */
#include "shim.h"

uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* Requests below SPILLWAY_MIN_SPILL or with spilling off never need the driver's free figure. */
int policy_needs_free(const struct spw_config *c, uint64_t size, uint64_t vram_used)
{
	if (c->backend == BACKEND_OFF || size < c->min_spill)
		return 0;
	if (c->vram_limit && sat_add(vram_used, size) > c->vram_limit)
		return 0;
	return 1;
}

int policy_budgeted(const struct spw_config *c, uint64_t size)
{
	return c->vram_limit && c->backend != BACKEND_OFF && size >= c->min_spill;
}

enum placement policy_decide(const struct spw_config *c, const struct policy_input *in)
{
	if (c->backend == BACKEND_OFF || in->size < c->min_spill)
		return PLACE_VRAM;
	/* The budget: this process's VRAM on this device stays within SPILLWAY_VRAM_LIMIT. */
	if (c->vram_limit && sat_add(in->vram_used, in->size) > c->vram_limit)
		return PLACE_SPILL;
	/* The card: keep SPILLWAY_HEADROOM free for the driver, kernels' stacks and other users. */
	if (sat_add(in->size, c->headroom) > in->vram_free)
		return PLACE_SPILL;
	return PLACE_VRAM;
}

/*
 * physical: the card as limited by SPILLWAY_VRAM_LIMIT: total = min(card, limit), free =
 * min(driver's free, limit - our use).
 * virtual: that plus what can still be spilled (free) and what is spilled now (total), so a
 * framework that sizes itself from free memory places everything on the GPU.
 * Both are clamped: never negative, free never above total.
 */
void policy_report(const struct spw_config *c, uint64_t real_free, uint64_t real_total,
		   uint64_t vram_used, uint64_t spill_used, uint64_t spill_avail,
		   uint64_t *free_out, uint64_t *total_out)
{
	uint64_t total = real_total, free = real_free;

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
