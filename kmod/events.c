// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: the event ring read() from /dev/spillway.
 *
 * One ring of SPILLWAY_EVENT_QUEUE_LEN records for all readers; each open
 * file keeps its own cursor (the sequence number it reads next), so a slow
 * reader never holds back the others.  A reader whose next record was
 * overwritten first gets one SPILLWAY_EVENT_OVERFLOW record (sequence
 * number 0, @count = records lost) and then the oldest record still held.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/minmax.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "spillway_internal.h"

static struct spillway_events *const events = &spillway.events;

void spillway_events_init(void)
{
	spin_lock_init(&events->lock);
	init_waitqueue_head(&events->wait);
	events->next_seq = 1;
}

/* Stamps @ev with the next sequence number, stores it and wakes readers. */
void spillway_event_queue(struct spillway_event *ev)
{
	unsigned long flags;

	spin_lock_irqsave(&events->lock, flags);
	ev->seq = events->next_seq++;
	events->ring[(ev->seq - 1) % SPILLWAY_EVENT_QUEUE_LEN] = *ev;
	spin_unlock_irqrestore(&events->lock, flags);
	/* Every bit poll() reports, so that a poller of any one of them wakes. */
	wake_up_interruptible_poll(&events->wait, EPOLLIN | EPOLLRDNORM | EPOLLPRI);
}

u64 spillway_events_produced(void)
{
	unsigned long flags;
	u64 n;

	spin_lock_irqsave(&events->lock, flags);
	n = events->next_seq - 1;
	spin_unlock_irqrestore(&events->lock, flags);
	return n;
}

/* A new reader starts at the next record. */
u64 spillway_events_cursor(void)
{
	return spillway_events_produced() + 1;
}

bool spillway_events_pending(u64 cursor)
{
	return cursor != READ_ONCE(events->next_seq);
}

/*
 * Copies up to @max records for the reader at *@cursor into @out and
 * advances the cursor.  Returns the number copied.
 */
static size_t spillway_events_take(u64 *cursor, struct spillway_event *out,
				   size_t max)
{
	unsigned long flags;
	size_t n = 0;
	u64 oldest;

	spin_lock_irqsave(&events->lock, flags);
	oldest = events->next_seq > SPILLWAY_EVENT_QUEUE_LEN ?
		 events->next_seq - SPILLWAY_EVENT_QUEUE_LEN : 1;
	if (*cursor < oldest) {
		out[n] = events->ring[(events->next_seq - 2) % SPILLWAY_EVENT_QUEUE_LEN];
		out[n].seq = 0;
		out[n].type = SPILLWAY_EVENT_OVERFLOW;
		out[n].count = oldest - *cursor;
		n++;
		*cursor = oldest;
	}
	while (n < max && *cursor < events->next_seq) {
		out[n++] = events->ring[(*cursor - 1) % SPILLWAY_EVENT_QUEUE_LEN];
		(*cursor)++;
	}
	spin_unlock_irqrestore(&events->lock, flags);
	return n;
}

/* Records are copied out in batches of this many (on the stack). */
#define SPILLWAY_READ_BATCH	8

ssize_t spillway_events_read(u64 *cursor, char __user *ubuf, size_t len,
			     bool nonblock)
{
	struct spillway_event batch[SPILLWAY_READ_BATCH];
	size_t want = len / sizeof(batch[0]), n, done = 0;
	u64 saved;
	int ret;

	if (!want)
		return -EINVAL;
	while (!spillway_events_pending(*cursor)) {
		if (nonblock)
			return -EAGAIN;
		ret = wait_event_interruptible(events->wait,
					       spillway_events_pending(*cursor));
		if (ret)
			return ret;
	}
	while (done < want) {
		saved = *cursor;
		n = spillway_events_take(cursor, batch,
					 min_t(size_t, want - done, SPILLWAY_READ_BATCH));
		if (!n)
			break;
		if (copy_to_user(ubuf + done * sizeof(batch[0]), batch,
				 n * sizeof(batch[0]))) {
			/* Nothing of this batch was delivered: read it again. */
			*cursor = saved;
			return done ? done * sizeof(batch[0]) : -EFAULT;
		}
		done += n;
	}
	return done * sizeof(batch[0]);
}
