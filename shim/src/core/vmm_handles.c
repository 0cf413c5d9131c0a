/*
 * The VMM handles created through the shim (cuMemCreate), and the ranges they are mapped at.
 *
 * Physical memory stays in use until it is released AND unmapped everywhere, so each handle
 * counts its references: 1 for the create, +1 per map and per retain.
 */
#define _GNU_SOURCE
#include "core.h"

#include <pthread.h>
#include <search.h>
#include <stdlib.h>

static pthread_mutex_t vmm_mutex = PTHREAD_MUTEX_INITIALIZER;
static void *handles; /* tsearch tree by handle. Protected by vmm_mutex. */

void vmm_lock(void)
{
	pthread_mutex_lock(&vmm_mutex);
}

void vmm_unlock(void)
{
	pthread_mutex_unlock(&vmm_mutex);
}

void vmm_reset_lock(void)
{
	pthread_mutex_init(&vmm_mutex, NULL);
}

static int by_handle(const void *a, const void *b)
{
	CUmemGenericAllocationHandle x = ((const struct vmm_handle *)a)->handle;
	CUmemGenericAllocationHandle y = ((const struct vmm_handle *)b)->handle;

	return x < y ? -1 : x > y;
}

/* Called with vmm_mutex held. */
static struct vmm_handle *find_handle(CUmemGenericAllocationHandle h)
{
	struct vmm_handle key = { .handle = h };
	void *node = tfind(&key, &handles, by_handle);

	return node ? *(struct vmm_handle **)node : NULL;
}

static void account(struct vmm_handle *v, int sign)
{
	if (v->spilled)
		account_spill(v->dev, SPILL_HOST_NUMA, sign * (int64_t)v->size);
	else
		account_vram(v->dev, sign * (int64_t)v->size);
}

/*
 * A handle that could not be recorded lives on untracked: its loan is kept (the memory is the
 * driver's until the handle goes, which we will not see) and ends when the process exits.
 */
static void untracked_loan(const struct pool_loan *loan)
{
	if (loan && loan->id)
		spw_log(LOG_WARN,
			"loan %llu (%llu bytes) stays until exit: its handle is untracked",
			(unsigned long long)loan->id, (unsigned long long)loan->size);
}

struct vmm_handle *vmm_handle_ref(CUmemGenericAllocationHandle h)
{
	struct vmm_handle *v;

	pthread_mutex_lock(&vmm_mutex);
	v = find_handle(h);
	if (v)
		v->refs++;
	pthread_mutex_unlock(&vmm_mutex);
	return v;
}

void vmm_handle_unref(CUmemGenericAllocationHandle h)
{
	struct vmm_handle *v;
	int gone = 0;

	pthread_mutex_lock(&vmm_mutex);
	v = find_handle(h);
	if (v && --v->refs == 0) {
		tdelete(v, &handles, by_handle);
		gone = 1;
	}
	pthread_mutex_unlock(&vmm_mutex);
	if (gone) {
		/* Released and unmapped everywhere: the driver has freed the memory. */
		account(v, -1);
		pool_return(&v->loan);
		free(v);
	}
}

void vmm_handle_record(CUmemGenericAllocationHandle h, size_t size, int dev, int spilled,
		       const CUmemLocation *asked, int counted, const struct pool_loan *loan)
{
	struct vmm_handle *v = calloc(1, sizeof(*v));
	void *node;

	if (!v) {
		if (counted)
			account_vram(dev, -(int64_t)size);
		untracked_loan(loan);
		return;
	}
	v->handle = h;
	v->size = size;
	v->dev = dev;
	v->spilled = spilled;
	v->refs = 1;
	v->asked = *asked;
	if (loan)
		v->loan = *loan;
	pthread_mutex_lock(&vmm_mutex);
	node = tsearch(v, &handles, by_handle);
	pthread_mutex_unlock(&vmm_mutex);
	if (!node || *(struct vmm_handle **)node != v) {
		if (counted)
			account_vram(dev, -(int64_t)size);
		untracked_loan(loan);
		free(v);
		return;
	}
	if (!counted)
		account(v, 1);
}

int vmm_handle_asked(CUmemGenericAllocationHandle h, CUmemLocation *asked)
{
	struct vmm_handle *v;
	int spilled;

	pthread_mutex_lock(&vmm_mutex);
	v = find_handle(h);
	spilled = v && v->spilled;
	if (spilled)
		*asked = v->asked;
	pthread_mutex_unlock(&vmm_mutex);
	return spilled;
}

void vmm_map_record(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle h)
{
	struct vmm_handle *v = vmm_handle_ref(h);
	struct alloc_rec *r;

	if (!v)
		return; /* not created through us (or before us): nothing to track */
	r = calloc(1, sizeof(*r));
	if (!r) {
		vmm_handle_unref(h);
		return;
	}
	r->base = ptr;
	r->size = size;
	r->dev = v->dev;
	r->kind = REC_VMM_MAP;
	r->handle = v;
	r->offset = offset;
	r->spilled = v->spilled;
	if (range_insert(r) != 0) {
		vmm_handle_unref(h);
		free(r);
	}
}

void vmm_forget_maps(CUdeviceptr ptr, size_t size)
{
	struct alloc_rec *r;

	while ((r = range_remove_overlap(ptr, ptr + size, REC_VMM_MAP))) {
		vmm_handle_unref(r->handle->handle);
		free(r);
	}
}
