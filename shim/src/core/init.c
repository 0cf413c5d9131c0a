/*
 * Lazy initialisation.  Nothing runs in a constructor: the first hooked call (from whatever
 * thread) runs this once, so a program that never touches CUDA never pays for the shim.
 */
#include "core.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Fork: take every lock so the child never inherits one held by a thread that is gone. */
static void before_fork(void)
{
	spill_lock();
	vmm_lock();
	registry_lock_all();
	pools_lock();
	cgroup_lock();
}

static void after_fork_parent(void)
{
	cgroup_unlock();
	pools_unlock();
	registry_unlock_all();
	vmm_unlock();
	spill_unlock();
}

static void after_fork_child(void)
{
	cgroup_reset_lock();
	pools_reset_lock();
	registry_reset_locks();
	vmm_reset_lock();
	spill_reset_lock();
}

static void init_once_fn(void)
{
	const struct spw_config *c = spw_config();

	log_open(c);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	if (c->log_stats)
		atexit(stats_at_exit);
	spw_log(LOG_INFO,
		"loaded: vram_limit=%llu headroom=%llu min_spill=%llu reserve=%llu%s "
		"large=%llu backend=%d report=%d",
		(unsigned long long)c->vram_limit, (unsigned long long)c->headroom,
		(unsigned long long)c->min_spill, (unsigned long long)policy_reserve(c, 0),
		c->reserve_auto && !c->vram_limit ? "(a tenth of the card)" : "",
		(unsigned long long)c->large, (int)c->backend, (int)c->report);
}

void spw_init(void)
{
	pthread_once(&init_once, init_once_fn);
}
