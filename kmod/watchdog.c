// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: the memory-pressure watchdog.
 *
 * Every watchdog_ms it samples MemAvailable, free swap and the swap-in +
 * swap-out page rate, and derives a level:
 *
 *   CRITICAL  MemAvailable < critical mark, or free swap < swap_critical_mb,
 *             or swap rate > swap_rate_critical
 *   WARN      the same against the warn marks
 *   OK        otherwise
 *
 * Hysteresis: a level is entered as soon as one signal crosses its mark and
 * left only when every signal is 1/8 of its mark on the safe side of it
 * (MemAvailable >= mark + mark / 8; swap rate <= mark - mark / 8).
 *
 * On a level change it queues an event record, notifies pollers of the sysfs
 * "level" attribute and sends a KOBJ_CHANGE uevent (at most one a second;
 * a change held back is sent, with the level then current, at the first
 * sample after the second is over).  While CRITICAL, and from the OOM
 * notifier, free pool chunks go back to the kernel down to pool_floor_mb.
 *
 * The sampler is delayed work on its own workqueue rather than a kthread:
 * WQ_MEM_RECLAIM gives the queue a rescuer thread, so a sample still runs
 * when memory is too short to start a new kworker, which is exactly when it
 * matters; WQ_FREEZABLE keeps it quiet across suspend; an ordered queue runs
 * one sample at a time; and cancel_delayed_work_sync() is a complete stop.
 * virtio_balloon made the same move from a kthread to workqueues.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/jiffies.h>
#include <linux/kobject.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/oom.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <linux/sysfs.h>
#include <linux/vmstat.h>

#include "spillway_internal.h"

static struct spillway_watchdog *const wd = &spillway.wd;

static const char *const spillway_level_names[] = {
	[SPILLWAY_LEVEL_OK] = "ok",
	[SPILLWAY_LEVEL_WARN] = "warn",
	[SPILLWAY_LEVEL_CRITICAL] = "critical",
};

const char *spillway_level_name(u32 level)
{
	if (level >= ARRAY_SIZE(spillway_level_names))
		return "?";
	return spillway_level_names[level];
}

/* Level of a signal where low is bad; a mark of 0 is off. */
static u32 spillway_level_low(u64 value, u64 warn, u64 critical)
{
	if (value < critical)
		return SPILLWAY_LEVEL_CRITICAL;
	if (value < warn)
		return SPILLWAY_LEVEL_WARN;
	return SPILLWAY_LEVEL_OK;
}

/* Level of a signal where high is bad; a mark of 0 is off. */
static u32 spillway_level_high(u64 value, u64 warn, u64 critical)
{
	if (critical && value > critical)
		return SPILLWAY_LEVEL_CRITICAL;
	if (warn && value > warn)
		return SPILLWAY_LEVEL_WARN;
	return SPILLWAY_LEVEL_OK;
}

/*
 * Raises at once to the level @entered; lowers only as far as @left, the
 * level against marks moved by the hysteresis margin.
 */
static u32 spillway_hysteresis(u32 cur, u32 entered, u32 left)
{
	return max(entered, min(cur, left));
}

static u32 spillway_watchdog_evaluate(u32 cur, u32 *reason)
{
	u64 swap_warn = (u64)spillway_swap_warn_mb << 20;
	u64 swap_crit = (u64)spillway_swap_critical_mb << 20;
	u64 rate_warn = spillway_swap_rate_warn;
	u64 rate_crit = spillway_swap_rate_critical;
	u32 mem, swap, rate, level;

	mem = spillway_hysteresis(cur,
		spillway_level_low(wd->mem_available, wd->warn, wd->critical),
		spillway_level_low(wd->mem_available, wd->warn + wd->warn / 8,
				   wd->critical + wd->critical / 8));
	swap = spillway_hysteresis(cur,
		spillway_level_low(wd->swap_free, swap_warn, swap_crit),
		spillway_level_low(wd->swap_free, swap_warn + swap_warn / 8,
				   swap_crit + swap_crit / 8));
	rate = spillway_hysteresis(cur,
		spillway_level_high(wd->swap_rate, rate_warn, rate_crit),
		spillway_level_high(wd->swap_rate, rate_warn - rate_warn / 8,
				    rate_crit - rate_crit / 8));

	level = max3(mem, swap, rate);
	*reason = 0;
	if (mem)
		*reason |= SPILLWAY_REASON_MEM_AVAILABLE;
	if (swap)
		*reason |= SPILLWAY_REASON_SWAP_FREE;
	if (rate)
		*reason |= SPILLWAY_REASON_SWAP_RATE;
	if (level == SPILLWAY_LEVEL_OK && cur != SPILLWAY_LEVEL_OK)
		*reason = SPILLWAY_REASON_RECOVERED;
	return level;
}

/*
 * Fills the state part of an event record.  Lockless on purpose: the OOM
 * notifier calls it; each field is one word, read once.
 */
void spillway_watchdog_fill_event(struct spillway_event *ev, u32 type)
{
	ev->type = type;
	ev->level = READ_ONCE(wd->level);
	ev->prev_level = ev->level;
	ev->reason = READ_ONCE(wd->reason);
	ev->time_ns = ktime_get_ns();
	ev->mem_available = READ_ONCE(wd->mem_available);
	ev->swap_free = READ_ONCE(wd->swap_free);
	ev->swap_rate = READ_ONCE(wd->swap_rate);
	ev->pool_free = spillway_pool_free_bytes();
	ev->count = 0;
}

static void spillway_watchdog_release(u32 reason)
{
	struct spillway_event ev = {};
	unsigned long pages;

	pages = spillway_pool_release_free();
	if (!pages)
		return;
	spillway_watchdog_fill_event(&ev, SPILLWAY_EVENT_RELEASE);
	ev.reason |= reason;
	ev.count = (u64)pages << PAGE_SHIFT;
	spillway_event_queue(&ev);
	pr_info("released %lu KiB of free pool memory under pressure\n",
		pages << (PAGE_SHIFT - 10));
}

static void spillway_watchdog_uevent(u32 level)
{
	/* kobject_uevent_env() takes a non-const array of strings. */
	static char *level_env[][2] = {
		[SPILLWAY_LEVEL_OK] = { "SPILLWAY_LEVEL=ok", NULL },
		[SPILLWAY_LEVEL_WARN] = { "SPILLWAY_LEVEL=warn", NULL },
		[SPILLWAY_LEVEL_CRITICAL] = { "SPILLWAY_LEVEL=critical", NULL },
	};

	if (level < ARRAY_SIZE(level_env))
		kobject_uevent_env(&spillway.misc.this_device->kobj, KOBJ_CHANGE,
				   level_env[level]);
}

/*
 * Takes one sample; called with @wd->lock held.  @rate: also measure the swap
 * rate.  Only the periodic work does, so that the rate is always taken over a
 * whole period: a sample a moment after another, for a watermark change,
 * would turn a single swapped page into a high rate.
 */
static void spillway_watchdog_sample(bool rate)
{
	u64 now = ktime_get_ns(), swap_events;

	wd->sample_ns = now;
	WRITE_ONCE(wd->mem_available, (u64)si_mem_available() << PAGE_SHIFT);
	WRITE_ONCE(wd->swap_free, (u64)get_nr_swap_pages() << PAGE_SHIFT);
	if (!rate)
		return;
	all_vm_events(wd->vm_events);
	swap_events = wd->vm_events[PSWPIN] + wd->vm_events[PSWPOUT];
	if (wd->rate_ns && now > wd->rate_ns)
		WRITE_ONCE(wd->swap_rate,
			   div64_u64((swap_events - wd->swap_events) * NSEC_PER_SEC,
				     now - wd->rate_ns));
	wd->swap_events = swap_events;
	wd->rate_ns = now;
}

/**
 * spillway_watchdog_update_locked - sample, set the level, release if critical
 * @rate:	measure the swap rate too (the periodic work)
 * @uevent:	set when a uevent for the returned level must go out
 *
 * Runs under @wd->lock, the critical release included: a watermark change
 * takes the same lock, so a release decided against the old marks can not
 * run after the new ones are set.  The release takes the pool lock
 * (wd.lock -> pool.lock) and frees pages without allocating any.
 *
 * Return: true when the level changed; the caller then notifies sysfs
 * pollers and sends the uevent, outside the lock (spillway_watchdog_tell()).
 */
static bool spillway_watchdog_update_locked(bool rate, bool *uevent)
{
	struct spillway_event ev = {};
	u32 prev, level, reason;
	bool changed;

	lockdep_assert_held(&wd->lock);
	spillway_watchdog_sample(rate);
	prev = wd->level;
	level = spillway_watchdog_evaluate(prev, &reason);
	changed = level != prev;
	WRITE_ONCE(wd->level, level);
	WRITE_ONCE(wd->reason, reason);
	/* Rate limit: one uevent a second; a held-back one goes out later. */
	*uevent = false;
	if (changed || wd->uevent_pending) {
		*uevent = !wd->uevent_at ||
			  time_after_eq(jiffies, wd->uevent_at + HZ);
		wd->uevent_pending = !*uevent;
		if (*uevent)
			wd->uevent_at = jiffies;
	}
	if (changed) {
		spillway_watchdog_fill_event(&ev, SPILLWAY_EVENT_LEVEL);
		ev.prev_level = prev;
		ev.time_ns = wd->sample_ns;
		spillway_event_queue(&ev);
	}
	if (level == SPILLWAY_LEVEL_CRITICAL)
		spillway_watchdog_release(reason);
	return changed;
}

/* Tells sysfs pollers and udev about a level change, outside @wd->lock. */
static void spillway_watchdog_tell(bool changed, bool uevent, u32 level)
{
	if (changed)
		sysfs_notify(&spillway.misc.this_device->kobj, NULL, "level");
	if (uevent)
		spillway_watchdog_uevent(level);
}

static void spillway_watchdog_work(struct work_struct *work)
{
	bool changed, uevent;
	u32 level;

	mutex_lock(&wd->lock);
	changed = spillway_watchdog_update_locked(true, &uevent);
	level = wd->level;
	if (!wd->stopping)
		queue_delayed_work(wd->wq, &wd->work,
				   msecs_to_jiffies(spillway_watchdog_ms));
	mutex_unlock(&wd->lock);
	spillway_watchdog_tell(changed, uevent, level);
}

/* Runs before the OOM killer picks a victim; may sleep. */
static int spillway_oom_notify(struct notifier_block *nb, unsigned long unused,
			       void *parm)
{
	unsigned long *freed = parm, pages;
	struct spillway_event ev = {};

	/*
	 * Waits for the pool lock: nothing allocates under it, so the
	 * allocation that ran out is not holding it, and it is held for one
	 * short batch at a time.
	 */
	pages = spillway_pool_release_free();
	if (!pages)
		return NOTIFY_OK;
	*freed += pages;
	spillway_watchdog_fill_event(&ev, SPILLWAY_EVENT_RELEASE);
	ev.reason |= SPILLWAY_REASON_OOM;
	ev.count = (u64)pages << PAGE_SHIFT;
	spillway_event_queue(&ev);
	return NOTIFY_OK;
}

/*
 * Sets both MemAvailable marks (bytes), or one (@keep_warn, @keep_critical:
 * sysfs writes one; the other is read under the same lock), and samples
 * against them before returning: when it returns, the level is the one for
 * the new marks and any release they call for is done.
 */
static int spillway_watchdog_change_marks(u64 warn, u64 critical,
					  bool keep_warn, bool keep_critical)
{
	bool changed = false, uevent = false;
	u32 level;

	mutex_lock(&wd->lock);
	if (keep_warn)
		warn = wd->warn;
	if (keep_critical)
		critical = wd->critical;
	if (critical > warn) {
		mutex_unlock(&wd->lock);
		return -EINVAL;
	}
	WRITE_ONCE(wd->warn, warn);
	WRITE_ONCE(wd->critical, critical);
	if (!wd->stopping)
		changed = spillway_watchdog_update_locked(false, &uevent);
	level = wd->level;
	mutex_unlock(&wd->lock);
	spillway_watchdog_tell(changed, uevent, level);
	return 0;
}

int spillway_watchdog_set_marks(u64 warn, u64 critical)
{
	return spillway_watchdog_change_marks(warn, critical, false, false);
}

/* Sets one mark and keeps the other (sysfs). */
int spillway_watchdog_set_mark(bool critical, u64 bytes)
{
	return spillway_watchdog_change_marks(bytes, bytes, critical, !critical);
}

/*
 * Sets the marks (0 = derive from RAM: warn 10 %, critical 5 % of MemTotal,
 * earlyoom's defaults) and the workqueue; the pool is sized after this, so
 * that growing it can respect the critical mark.
 */
int spillway_watchdog_init(unsigned int warn_mb, unsigned int critical_mb)
{
	u64 total = (u64)totalram_pages() << PAGE_SHIFT;
	u64 warn = warn_mb ? (u64)warn_mb << 20 : div_u64(total, 10);
	u64 critical = critical_mb ? (u64)critical_mb << 20 : div_u64(total, 20);

	mutex_init(&wd->lock);
	INIT_DELAYED_WORK(&wd->work, spillway_watchdog_work);
	if (critical > warn) {
		pr_err("watermark_critical_mb (%llu) above watermark_warn_mb (%llu)\n",
		       critical >> 20, warn >> 20);
		return -EINVAL;
	}
	wd->warn = warn;
	wd->critical = critical;
	wd->vm_events = kcalloc(NR_VM_EVENT_ITEMS, sizeof(*wd->vm_events),
				GFP_KERNEL);
	if (!wd->vm_events)
		return -ENOMEM;
	wd->wq = alloc_ordered_workqueue("spillway",
					 WQ_FREEZABLE | WQ_MEM_RECLAIM | WQ_HIGHPRI);
	if (!wd->wq) {
		kfree(wd->vm_events);
		return -ENOMEM;
	}
	wd->oom_nb.notifier_call = spillway_oom_notify;
	return 0;
}

/* Needs the misc device: events name it. */
int spillway_watchdog_start(void)
{
	int ret;

	ret = register_oom_notifier(&wd->oom_nb);
	if (ret)
		return ret;
	queue_delayed_work(wd->wq, &wd->work, 0);
	return 0;
}

/* Undoes spillway_watchdog_init() and, if it ran, _start(). */
void spillway_watchdog_stop(bool started)
{
	mutex_lock(&wd->lock);
	wd->stopping = true;
	mutex_unlock(&wd->lock);
	if (started) {
		unregister_oom_notifier(&wd->oom_nb);
		cancel_delayed_work_sync(&wd->work);
	}
	destroy_workqueue(wd->wq);
	kfree(wd->vm_events);
}

void spillway_watchdog_fill_info(struct spillway_info *info)
{
	mutex_lock(&wd->lock);
	info->level = wd->level;
	info->reason = wd->reason;
	info->watermark_warn = wd->warn;
	info->watermark_critical = wd->critical;
	info->mem_available = wd->mem_available;
	info->swap_free = wd->swap_free;
	info->swap_rate = wd->swap_rate;
	mutex_unlock(&wd->lock);
	info->watchdog_ms = spillway_watchdog_ms;
}
