/*
 * The allocation registry: "whose pointer is this?"
 *
 * Two structures, because the two kinds of question differ in frequency and shape:
 *  - VRAM allocations are looked up only by their exact base (at free) and are the hot path
 *    (PyTorch's caching allocator, many threads).  They live in SHARDS balanced trees keyed by
 *    base, each with its own mutex, so threads freeing different pointers rarely contend and
 *    no lock is global.  O(log n) per operation.
 *  - Spilled pieces and cuMemMap'd ranges must answer interior pointers (pointer attribute
 *    queries, address ranges).  They are rarer and read far more often than written, so they
 *    live in one balanced tree of disjoint intervals under a rwlock: readers run in parallel.
 * Per-device byte counts are atomics in stats.c and need no lock at all.
 *
 * Lock order (fork handlers take all): spill -> vmm -> ranges -> shards[0..SHARDS), then the
 * leaves (nothing is taken under them): the pool records', the cgroup lookup's.
 */
#define _GNU_SOURCE
#include "core.h"

#include <pthread.h>
#include <search.h>
#include <stdlib.h>

#define SHARDS 64

struct shard {
	pthread_mutex_t lock;
	void *root; /* tsearch tree of struct alloc_rec, by base. Protected by @lock. */
	size_t count;
} __attribute__((aligned(64)));

static struct shard shards[SHARDS] = {
	[0 ... SHARDS - 1] = { .lock = PTHREAD_MUTEX_INITIALIZER },
};

static pthread_rwlock_t ranges_lock = PTHREAD_RWLOCK_INITIALIZER;
static void *ranges_root; /* disjoint intervals. Protected by @ranges_lock. */
static size_t ranges_count;

static struct shard *shard_of(uintptr_t base)
{
	/* Allocations are at least 256-byte aligned and often 2 MiB aligned: mix the bits. */
	uint64_t h = (uint64_t)base * 0x9E3779B97F4A7C15ULL;

	return &shards[h >> 58];
}

static int by_base(const void *a, const void *b)
{
	uintptr_t x = ((const struct alloc_rec *)a)->base, y = ((const struct alloc_rec *)b)->base;

	return x < y ? -1 : x > y;
}

/* Disjoint intervals compare by position; overlapping ones are "equal" (found). */
static int by_interval(const void *a, const void *b)
{
	const struct alloc_rec *x = a, *y = b;

	if (x->base + x->size <= y->base)
		return -1;
	if (x->base >= y->base + y->size)
		return 1;
	return 0;
}

int vram_insert(struct alloc_rec *r)
{
	struct shard *s = shard_of(r->base);
	void *node;
	int ok;

	pthread_mutex_lock(&s->lock);
	node = tsearch(r, &s->root, by_base);
	ok = node && *(struct alloc_rec **)node == r;
	if (ok)
		s->count++;
	pthread_mutex_unlock(&s->lock);
	return ok ? 0 : -1;
}

struct alloc_rec *vram_remove(uintptr_t base)
{
	struct shard *s = shard_of(base);
	struct alloc_rec key = { .base = base }, *found = NULL;
	void *node;

	pthread_mutex_lock(&s->lock);
	node = tfind(&key, &s->root, by_base);
	if (node) {
		found = *(struct alloc_rec **)node;
		tdelete(&key, &s->root, by_base);
		s->count--;
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

int range_insert(struct alloc_rec *r)
{
	void *node;
	int ok;

	pthread_rwlock_wrlock(&ranges_lock);
	node = tsearch(r, &ranges_root, by_interval);
	ok = node && *(struct alloc_rec **)node == r;
	if (ok)
		ranges_count++;
	pthread_rwlock_unlock(&ranges_lock);
	return ok ? 0 : -1;
}

struct alloc_rec *range_remove_exact(uintptr_t base, enum rec_kind kind)
{
	struct alloc_rec key = { .base = base, .size = 1 }, *found = NULL;
	void *node;

	pthread_rwlock_wrlock(&ranges_lock);
	node = tfind(&key, &ranges_root, by_interval);
	if (node) {
		struct alloc_rec *r = *(struct alloc_rec **)node;

		if (r->base == base && r->kind == kind) {
			found = r;
			tdelete(r, &ranges_root, by_interval);
			ranges_count--;
		}
	}
	pthread_rwlock_unlock(&ranges_lock);
	return found;
}

struct alloc_rec *range_remove_overlap(uintptr_t lo, uintptr_t hi, enum rec_kind kind)
{
	struct alloc_rec key = { .base = lo, .size = hi - lo }, *found = NULL;
	void *node;

	if (hi <= lo)
		return NULL;
	pthread_rwlock_wrlock(&ranges_lock);
	node = tfind(&key, &ranges_root, by_interval);
	if (node) {
		struct alloc_rec *r = *(struct alloc_rec **)node;

		if (r->kind == kind) {
			found = r;
			tdelete(r, &ranges_root, by_interval);
			ranges_count--;
		}
	}
	pthread_rwlock_unlock(&ranges_lock);
	return found;
}

int range_lookup(uintptr_t p, struct alloc_rec *out)
{
	struct alloc_rec key = { .base = p, .size = 1 };
	void *node;
	int found = 0;

	pthread_rwlock_rdlock(&ranges_lock);
	if (ranges_root) {
		node = tfind(&key, &ranges_root, by_interval);
		if (node) {
			*out = **(struct alloc_rec **)node;
			found = 1;
		}
	}
	pthread_rwlock_unlock(&ranges_lock);
	return found;
}

/* Collecting matches during a walk, deleting after: tdelete inside twalk is not allowed. */
struct collect {
	CUcontext ctx;
	struct alloc_rec **items;
	size_t count, cap;
};

static void collect_ctx(const void *nodep, VISIT which, void *closure)
{
	struct collect *c = closure;
	struct alloc_rec *r = *(struct alloc_rec *const *)nodep;

	if (which != postorder && which != leaf)
		return;
	if (r->ctx != c->ctx || r->kind == REC_VMM_MAP)
		return;
	if (c->count == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct alloc_rec **items = realloc(c->items, cap * sizeof(*items));

		if (!items)
			return;
		c->items = items;
		c->cap = cap;
	}
	c->items[c->count++] = r;
}

void registry_drop_context(CUcontext ctx, void (*drop)(struct alloc_rec *r))
{
	struct collect c = { .ctx = ctx };

	for (int i = 0; i < SHARDS; i++) {
		struct shard *s = &shards[i];

		pthread_mutex_lock(&s->lock);
		c.count = 0;
		twalk_r(s->root, collect_ctx, &c);
		for (size_t k = 0; k < c.count; k++) {
			tdelete(c.items[k], &s->root, by_base);
			s->count--;
		}
		pthread_mutex_unlock(&s->lock);
		for (size_t k = 0; k < c.count; k++)
			drop(c.items[k]);
	}
	pthread_rwlock_wrlock(&ranges_lock);
	c.count = 0;
	twalk_r(ranges_root, collect_ctx, &c);
	for (size_t k = 0; k < c.count; k++) {
		tdelete(c.items[k], &ranges_root, by_interval);
		ranges_count--;
	}
	pthread_rwlock_unlock(&ranges_lock);
	for (size_t k = 0; k < c.count; k++)
		drop(c.items[k]);
	free(c.items);
}

size_t registry_count(void)
{
	size_t n;

	pthread_rwlock_rdlock(&ranges_lock);
	n = ranges_count;
	pthread_rwlock_unlock(&ranges_lock);
	for (int i = 0; i < SHARDS; i++) {
		pthread_mutex_lock(&shards[i].lock);
		n += shards[i].count;
		pthread_mutex_unlock(&shards[i].lock);
	}
	return n;
}

void registry_lock_all(void)
{
	pthread_rwlock_wrlock(&ranges_lock);
	for (int i = 0; i < SHARDS; i++)
		pthread_mutex_lock(&shards[i].lock);
}

/* In a forked child only the forking thread exists: start the locks afresh. */
void registry_reset_locks(void)
{
	pthread_rwlock_init(&ranges_lock, NULL);
	for (int i = 0; i < SHARDS; i++)
		pthread_mutex_init(&shards[i].lock, NULL);
}

void registry_unlock_all(void)
{
	for (int i = SHARDS - 1; i >= 0; i--)
		pthread_mutex_unlock(&shards[i].lock);
	pthread_rwlock_unlock(&ranges_lock);
}
