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
 * Once the level has been ok for regrow_ms, the pool grows back toward the
 * size last asked for (never past the warn mark and its band).
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

/* A mark moved 1/8 to the safe side of a low-is-bad signal, saturating. */
static u64 spillway_band_above(u64 mark)
{
	return mark > U64_MAX - mark / 8 ? U64_MAX : mark + mark / 8;
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
	u32 entered, left, mem, swap, rate, level;

	entered = spillway_level_low(wd->mem_available, wd->warn, wd->critical);
	left = spillway_level_low(wd->mem_available, spillway_band_above(wd->warn),
				  spillway_band_above(wd->critical));
	mem = spillway_hysteresis(cur, entered, left);
	entered = spillway_level_low(wd->swap_free, swap_warn, swap_crit);
	left = spillway_level_low(wd->swap_free, spillway_band_above(swap_warn),
				  spillway_band_above(swap_crit));
	swap = spillway_hysteresis(cur, entered, left);
	entered = spillway_level_high(wd->swap_rate, rate_warn, rate_crit);
	left = spillway_level_high(wd->swap_rate, rate_warn - rate_warn / 8,
				   rate_crit - rate_crit / 8);
	rate = spillway_hysteresis(cur, entered, left);

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

/* Queues a record of @type with the current state, @reason bits and @count. */
void spillway_watchdog_report(u32 type, u32 reason, u64 count)
{
	struct spillway_event ev = {};

	spillway_watchdog_fill_event(&ev, type);
	ev.reason |= reason;
	ev.count = count;
	spillway_event_queue(&ev);
}

/* The current level, lockless (the pool reads it while growing). */
u32 spillway_watchdog_level(void)
{
	return READ_ONCE(wd->level);
}

/* The MemAvailable warn mark in bytes, lockless. */
u64 spillway_watchdog_warn_mark(void)
{
	return READ_ONCE(wd->warn);
}

/* MemAvailable at or above which warn goes back to ok, bytes, lockless. */
u64 spillway_watchdog_ok_mark(void)
{
	return spillway_band_above(READ_ONCE(wd->warn));
}

static void spillway_watchdog_release(u32 reason)
{
	unsigned long pages;

	pages = spillway_pool_release_free();
	if (!pages)
		return;
	spillway_watchdog_report(SPILLWAY_EVENT_RELEASE, reason,
				 (u64)pages << PAGE_SHIFT);
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
 * What a sample measures.  Only the periodic work measures the swap rate,
 * so that the rate is always taken over a whole period: a sample a moment
 * after another, for a watermark change, would turn a single swapped page
 * into a high rate.
 */
enum spillway_sample {
	SPILLWAY_SAMPLE_MARKS,		/* for a watermark change: keeps the rate */
	SPILLWAY_SAMPLE_PERIODIC,	/* the periodic work: measures the rate */
};

/* What to tell, outside @wd->lock, after a sample: SPILLWAY_TELL_* bits. */
#define SPILLWAY_TELL_LEVEL	BIT(0)	/* the level changed: notify sysfs pollers */
#define SPILLWAY_TELL_UEVENT	BIT(1)	/* send a uevent with the level */

/* Takes one sample; called with @wd->lock held. */
static void spillway_watchdog_sample(enum spillway_sample kind)
{
	u64 now = ktime_get_ns(), swap_events;

	wd->sample_ns = now;
	WRITE_ONCE(wd->mem_available, (u64)si_mem_available() << PAGE_SHIFT);
	WRITE_ONCE(wd->swap_free, (u64)get_nr_swap_pages() << PAGE_SHIFT);
	if (kind != SPILLWAY_SAMPLE_PERIODIC)
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
 * @kind:	the periodic sample, or one for a watermark change
 *
 * Runs under @wd->lock, the critical release included: a watermark change
 * takes the same lock, so a release decided against the old marks can not
 * run after the new ones are set.  The release takes the pool lock
 * (wd.lock -> pool.lock) and frees pages without allocating any.
 *
 * Return: SPILLWAY_TELL_* bits; the caller tells sysfs pollers and udev,
 * outside the lock (spillway_watchdog_tell()).
 */
static unsigned int spillway_watchdog_update_locked(enum spillway_sample kind)
{
	struct spillway_event ev = {};
	u32 prev, level, reason;
	unsigned int tell = 0;
	bool changed, uevent;

	lockdep_assert_held(&wd->lock);
	spillway_watchdog_sample(kind);
	prev = wd->level;
	level = spillway_watchdog_evaluate(prev, &reason);
	changed = level != prev;
	WRITE_ONCE(wd->level, level);
	WRITE_ONCE(wd->reason, reason);
	/* Rate limit: one uevent a second; a held-back one goes out later. */
	if (changed || wd->uevent_pending) {
		uevent = !wd->uevent_at ||
			 time_after_eq(jiffies, wd->uevent_at + HZ);
		wd->uevent_pending = !uevent;
		if (uevent) {
			wd->uevent_at = jiffies;
			tell |= SPILLWAY_TELL_UEVENT;
		}
	}
	if (changed) {
		tell |= SPILLWAY_TELL_LEVEL;
		spillway_watchdog_fill_event(&ev, SPILLWAY_EVENT_LEVEL);
		ev.prev_level = prev;
		ev.time_ns = wd->sample_ns;
		spillway_event_queue(&ev);
	}
	if (level != SPILLWAY_LEVEL_OK || changed)
		wd->ok_since_ns = wd->sample_ns;
	if (level == SPILLWAY_LEVEL_CRITICAL)
		spillway_watchdog_release(reason);
	return tell;
}

/* Tells sysfs pollers and udev about a level change, outside @wd->lock. */
static void spillway_watchdog_tell(unsigned int tell, u32 level)
{
	if (tell & SPILLWAY_TELL_LEVEL)
		sysfs_notify(&spillway.misc.this_device->kobj, NULL, "level");
	if (tell & SPILLWAY_TELL_UEVENT)
		spillway_watchdog_uevent(level);
}

/*
 * Grows the pool back once the level has been ok for regrow_ms; on its own
 * work item, so that a long grow never delays a sample.
 */
static void spillway_watchdog_regrow_work(struct work_struct *work)
{
	unsigned long pages = spillway_pool_regrow();

	if (pages)
		pr_info("pool: grew back by %lu KiB\n", pages << (PAGE_SHIFT - 10));
}

/* Called with @wd->lock held, after a periodic sample. */
static void spillway_watchdog_maybe_regrow(void)
{
	u64 wait_ns = (u64)spillway_regrow_ms * NSEC_PER_MSEC;

	lockdep_assert_held(&wd->lock);
	if (!spillway_regrow_ms || wd->level != SPILLWAY_LEVEL_OK ||
	    wd->sample_ns - wd->ok_since_ns < wait_ns || !spillway_pool_short())
		return;
	/* The next try, if this one falls short, is regrow_ms from now. */
	wd->ok_since_ns = wd->sample_ns;
	queue_work(system_unbound_wq, &wd->regrow_work);
}

static void spillway_watchdog_work(struct work_struct *work)
{
	unsigned int tell;
	u32 level;

	mutex_lock(&wd->lock);
	tell = spillway_watchdog_update_locked(SPILLWAY_SAMPLE_PERIODIC);
	if (!wd->stopping)
		spillway_watchdog_maybe_regrow();
	level = wd->level;
	if (!wd->stopping)
		queue_delayed_work(wd->wq, &wd->work,
				   msecs_to_jiffies(spillway_watchdog_ms));
	mutex_unlock(&wd->lock);
	spillway_watchdog_tell(tell, level);
}

/* Runs before the OOM killer picks a victim; may sleep. */
static int spillway_oom_notify(struct notifier_block *nb, unsigned long unused,
			       void *parm)
{
	unsigned long *freed = parm, pages;

	/*
	 * Waits for the pool lock: nothing allocates under it, so the
	 * allocation that ran out is not holding it, and it is held for one
	 * short batch at a time.
	 */
	pages = spillway_pool_release_free();
	if (!pages)
		return NOTIFY_OK;
	*freed += pages;
	spillway_watchdog_report(SPILLWAY_EVENT_RELEASE, SPILLWAY_REASON_OOM,
				 (u64)pages << PAGE_SHIFT);
	return NOTIFY_OK;
}

/* Which MemAvailable marks a change sets: SPILLWAY_MARK_* bits. */
#define SPILLWAY_MARK_WARN	BIT(0)
#define SPILLWAY_MARK_CRITICAL	BIT(1)

/*
 * Sets the MemAvailable marks named in @which (bytes; sysfs sets one, and
 * the other is read under the same lock), and samples against them before
 * returning: when it returns, the level is the one for the new marks and
 * any release they call for is done.
 */
static int spillway_watchdog_change_marks(u64 warn, u64 critical,
					  unsigned int which)
{
	unsigned int tell = 0;
	u32 level;

	mutex_lock(&wd->lock);
	if (!(which & SPILLWAY_MARK_WARN))
		warn = wd->warn;
	if (!(which & SPILLWAY_MARK_CRITICAL))
		critical = wd->critical;
	if (critical > warn) {
		mutex_unlock(&wd->lock);
		return -EINVAL;
	}
	WRITE_ONCE(wd->warn, warn);
	WRITE_ONCE(wd->critical, critical);
	if (!wd->stopping)
		tell = spillway_watchdog_update_locked(SPILLWAY_SAMPLE_MARKS);
	level = wd->level;
	mutex_unlock(&wd->lock);
	spillway_watchdog_tell(tell, level);
	return 0;
}

int spillway_watchdog_set_marks(u64 warn, u64 critical)
{
	return spillway_watchdog_change_marks(warn, critical,
					      SPILLWAY_MARK_WARN | SPILLWAY_MARK_CRITICAL);
}

/* Sets the warn mark and keeps the critical one (sysfs). */
int spillway_watchdog_set_warn_mark(u64 bytes)
{
	return spillway_watchdog_change_marks(bytes, 0, SPILLWAY_MARK_WARN);
}

/* Sets the critical mark and keeps the warn one (sysfs). */
int spillway_watchdog_set_critical_mark(u64 bytes)
{
	return spillway_watchdog_change_marks(0, bytes, SPILLWAY_MARK_CRITICAL);
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
	INIT_WORK(&wd->regrow_work, spillway_watchdog_regrow_work);
	wd->ok_since_ns = ktime_get_ns();
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

/* Undoes spillway_watchdog_start(): nothing samples or regrows afterwards. */
void spillway_watchdog_stop(void)
{
	mutex_lock(&wd->lock);
	wd->stopping = true;
	mutex_unlock(&wd->lock);
	unregister_oom_notifier(&wd->oom_nb);
	cancel_delayed_work_sync(&wd->work);
	cancel_work_sync(&wd->regrow_work);
}

/* Undoes spillway_watchdog_init(). */
void spillway_watchdog_exit(void)
{
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
