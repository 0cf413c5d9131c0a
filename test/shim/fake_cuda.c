/*
 * A fake libcuda.so.1 for the shim's tests: the driver subset the shim hooks or calls, over
 * host memory, so the tests run without a GPU.
 *
 *   FAKE_CUDA_VRAM=256M     VRAM per device (default 1G)
 *   FAKE_CUDA_DEVICES=2     device count (default 1, at most 8)
 *   FAKE_CUDA_FAIL=a,b      these functions return CUDA_ERROR_UNKNOWN (fault injection)
 *   FAKE_CUDA_NUMA_NODES, FAKE_CUDA_HOST_NUMA_ID, FAKE_CUDA_HOST_NUMA_LIMIT: host NUMA memory
 *                           for cuMemCreate (section "mixed device and host handles", at the end)
 *
 * It behaves like the real driver where the shim depends on it: cuMemFree of an unknown
 * pointer is INVALID_VALUE, registered memory reports MEMORY_TYPE HOST and the whole
 * registration as its range, host-NUMA VMM ranges report a base 12 GiB off (as measured on
 * the H100), cuCtxGetDevice fails on a thread with no context, and cuMemAllocFromPoolAsync_ptsz
 * is deliberately absent (to test NOT_FOUND).  Test hooks: fake_calls, fake_vram_used,
 * fake_vram_take, fake_stream_block, fake_stream_release, fake_registrations, fake_self_lookup.
 */
#define _GNU_SOURCE
#include <cuda.h>
#undef cuGetProcAddress

#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_DEV 8
#define GRAN	(2ULL << 20)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int n_dev = 1;
static uint64_t vram_total = 1ULL << 30;
static _Atomic uint64_t vram_used[MAX_DEV];

static uint64_t parse(const char *s, uint64_t def)
{
	char *end;
	uint64_t v;

	if (!s || !*s)
		return def;
	v = strtoull(s, &end, 10);
	switch (toupper((unsigned char)*end)) {
	case 'K':
		v <<= 10;
		break;
	case 'M':
		v <<= 20;
		break;
	case 'G':
		v <<= 30;
		break;
	}
	return v;
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

static void fork_child(void)
{
	pthread_mutex_init(&lock, NULL);
}

static void init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	vram_total = parse(getenv("FAKE_CUDA_VRAM"), 1ULL << 30);
	n_dev = (int)parse(getenv("FAKE_CUDA_DEVICES"), 1);
	if (n_dev < 1 || n_dev > MAX_DEV)
		n_dev = 1;
}

/* ---- call counters and fault injection ---- */

static struct {
	char name[64];
	long n;
} counters[128];

static void bump(const char *name)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < 128; i++) {
		if (!counters[i].name[0])
			snprintf(counters[i].name, sizeof(counters[i].name), "%s", name);
		if (!strcmp(counters[i].name, name)) {
			counters[i].n++;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

long fake_calls(const char *name)
{
	long n = 0;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < 128 && counters[i].name[0]; i++)
		if (!strcmp(counters[i].name, name))
			n = counters[i].n;
	pthread_mutex_unlock(&lock);
	return n;
}

/* FAKE_CUDA_FAIL is read at every call, so a test can inject a fault midway. */
static int enter(const char *name)
{
	const char *f = getenv("FAKE_CUDA_FAIL");
	char key[80], list[1024];

	pthread_once(&once, init);
	bump(name);
	if (!f || !*f)
		return 0;
	snprintf(key, sizeof(key), ",%s,", name);
	snprintf(list, sizeof(list), ",%s,", f);
	return strstr(list, key) != NULL;
}

uint64_t fake_vram_used(int dev)
{
	return dev >= 0 && dev < MAX_DEV ? vram_used[dev] : 0;
}

/* Another process takes (@bytes > 0) or gives back (< 0) VRAM on @dev, unseen by the shim. */
void fake_vram_take(int dev, int64_t bytes)
{
	if (dev >= 0 && dev < MAX_DEV)
		atomic_fetch_add(&vram_used[dev], (uint64_t)bytes);
}

/* ---- contexts ---- */

struct fake_ctx {
	int dev;
	int alive;
};

static struct fake_ctx primary[MAX_DEV];
static int primary_refs[MAX_DEV];
static __thread struct fake_ctx *stack[16];
static __thread int depth;

static struct fake_ctx *current(void)
{
	return depth ? stack[depth - 1] : NULL;
}

CUresult cuInit(unsigned int flags)
{
	enter("cuInit");
	return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *v)
{
	*v = 13000;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count)
{
	enter("cuDeviceGetCount");
	*count = n_dev;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *d, int ordinal)
{
	enter("cuDeviceGet");
	if (ordinal < 0 || ordinal >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	*d = ordinal;
	return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
	enter("cuDeviceTotalMem_v2");
	if (dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	*bytes = vram_total;
	return CUDA_SUCCESS;
}

/* NVML bus b (1-based) is CUDA device n_dev - b: the orders differ on purpose. */
CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *bus_id)
{
	unsigned int dom, bus, d, fn;

	enter("cuDeviceGetByPCIBusId");
	if (sscanf(bus_id, "%x:%x:%x.%x", &dom, &bus, &d, &fn) != 4 || bus < 1 || (int)bus > n_dev)
		return CUDA_ERROR_INVALID_VALUE;
	*dev = n_dev - (int)bus;
	return CUDA_SUCCESS;
}

CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags,
			CUdevice dev)
{
	struct fake_ctx *c;

	enter("cuCtxCreate_v4");
	if (dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	c = calloc(1, sizeof(*c));
	c->dev = dev;
	c->alive = 1;
	if (depth < 16)
		stack[depth++] = c;
	*pctx = (CUcontext)c;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *pctx)
{
	*pctx = (CUcontext)current();
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
	if (!ctx) {
		if (depth)
			depth--;
		return CUDA_SUCCESS;
	}
	if (depth)
		stack[depth - 1] = (struct fake_ctx *)ctx;
	else
		stack[depth++] = (struct fake_ctx *)ctx;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *dev)
{
	struct fake_ctx *c = current();

	if (!c || !c->alive)
		return CUDA_ERROR_INVALID_CONTEXT;
	*dev = c->dev;
	return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
	enter("cuCtxPushCurrent_v2");
	if (depth >= 16)
		return CUDA_ERROR_UNKNOWN;
	stack[depth++] = (struct fake_ctx *)ctx;
	return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
	if (!depth)
		return CUDA_ERROR_INVALID_CONTEXT;
	depth--;
	if (pctx)
		*pctx = (CUcontext)stack[depth];
	return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void)
{
	enter("cuCtxSynchronize");
	return CUDA_SUCCESS;
}

/* ---- device memory ---- */

/* Defined in the section "mixed device and host handles in one reserved range" below. */
struct handle;
static CUresult host_handle_check(const CUmemAllocationProp *prop, size_t size);
static void host_handle_note(const struct handle *h, int64_t sign);
static CUresult map_check(CUdeviceptr ptr, size_t size);
static CUresult access_check(CUdeviceptr ptr, size_t size);

enum kind { K_DEVICE, K_MANAGED, K_REGISTERED, K_MAP };

struct handle {
	int fd;
	size_t size;
	CUmemAllocationProp prop;
	long refs;
};

struct region {
	uintptr_t base;
	size_t size;
	enum kind kind;
	int dev;
	struct fake_ctx *ctx;
	struct handle *h;
};

static struct region *regions;
static size_t n_regions, cap_regions;

/* Called with lock held. */
static void add_region(struct region r)
{
	if (n_regions == cap_regions) {
		cap_regions = cap_regions ? cap_regions * 2 : 256;
		regions = realloc(regions, cap_regions * sizeof(*regions));
	}
	regions[n_regions++] = r;
}

static struct region *find_region(uintptr_t p, int exact)
{
	for (size_t i = 0; i < n_regions; i++) {
		struct region *r = &regions[i];

		if (exact ? r->base == p : (p >= r->base && p < r->base + r->size))
			return r;
	}
	return NULL;
}

static void del_region(struct region *r)
{
	*r = regions[--n_regions];
}

static CUresult device_alloc(CUdeviceptr *dptr, size_t size, enum kind kind)
{
	struct fake_ctx *c = current();
	void *p;

	if (!c || !c->alive)
		return CUDA_ERROR_INVALID_CONTEXT;
	if (!size)
		return CUDA_ERROR_INVALID_VALUE;
	if (kind == K_DEVICE) {
		uint64_t used = atomic_fetch_add(&vram_used[c->dev], size);

		if (used + size > vram_total) {
			atomic_fetch_sub(&vram_used[c->dev], size);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
	}
	if (posix_memalign(&p, 512, size)) {
		if (kind == K_DEVICE)
			atomic_fetch_sub(&vram_used[c->dev], size);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	pthread_mutex_lock(&lock);
	add_region((struct region){ (uintptr_t)p, size, kind, c->dev, c, NULL });
	pthread_mutex_unlock(&lock);
	*dptr = (CUdeviceptr)p;
	return CUDA_SUCCESS;
}

static CUresult device_free(CUdeviceptr p)
{
	struct region *r;

	pthread_mutex_lock(&lock);
	r = find_region(p, 1);
	if (!r || (r->kind != K_DEVICE && r->kind != K_MANAGED)) {
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_INVALID_VALUE;
	}
	if (r->kind == K_DEVICE)
		atomic_fetch_sub(&vram_used[r->dev], r->size);
	del_region(r);
	pthread_mutex_unlock(&lock);
	free((void *)p);
	return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t size)
{
	if (enter("cuMemAlloc_v2"))
		return CUDA_ERROR_UNKNOWN;
	return device_alloc(dptr, size, K_DEVICE);
}

CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t w, size_t h, unsigned int e)
{
	if (enter("cuMemAllocPitch_v2"))
		return CUDA_ERROR_UNKNOWN;
	if (e != 4 && e != 8 && e != 16)
		return CUDA_ERROR_INVALID_VALUE;
	*pitch = (w + 511) / 512 * 512;
	return device_alloc(dptr, *pitch * h, K_DEVICE);
}

CUresult cuMemFree_v2(CUdeviceptr p)
{
	if (enter("cuMemFree_v2"))
		return CUDA_ERROR_UNKNOWN;
	return device_free(p);
}

CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t size, CUstream s)
{
	enter("cuMemAllocAsync");
	return device_alloc(dptr, size, K_DEVICE);
}

CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t size, CUstream s)
{
	enter("cuMemAllocAsync_ptsz");
	return device_alloc(dptr, size, K_DEVICE);
}

CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t size, CUmemoryPool pool, CUstream s)
{
	enter("cuMemAllocFromPoolAsync");
	return device_alloc(dptr, size, K_DEVICE);
}

CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s)
{
	enter("cuMemFreeAsync");
	return device_free(p);
}

CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s)
{
	enter("cuMemFreeAsync_ptsz");
	return device_free(p);
}

CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t size, unsigned int flags)
{
	enter("cuMemAllocManaged");
	return device_alloc(dptr, size, K_MANAGED);
}

CUresult cuMemGetInfo_v2(size_t *free_b, size_t *total_b)
{
	struct fake_ctx *c = current();

	enter("cuMemGetInfo_v2");
	if (!c || !c->alive)
		return CUDA_ERROR_INVALID_CONTEXT;
	*total_b = vram_total;
	*free_b = vram_total - vram_used[c->dev];
	return CUDA_SUCCESS;
}

/* ---- registered host memory ---- */

CUresult cuMemHostRegister_v2(void *p, size_t size, unsigned int flags)
{
	if (enter("cuMemHostRegister_v2"))
		return CUDA_ERROR_UNKNOWN;
	if (!current())
		return CUDA_ERROR_INVALID_CONTEXT;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_regions; i++) {
		struct region *r = &regions[i];

		if ((uintptr_t)p < r->base + r->size && (uintptr_t)p + size > r->base) {
			pthread_mutex_unlock(&lock);
			return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
		}
	}
	add_region((struct region){ (uintptr_t)p, size, K_REGISTERED, current()->dev, current(),
				    NULL });
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemHostUnregister(void *p)
{
	struct region *r;

	enter("cuMemHostUnregister");
	pthread_mutex_lock(&lock);
	r = find_region((uintptr_t)p, 1);
	if (!r || r->kind != K_REGISTERED) {
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
	}
	del_region(r);
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *d, void *p, unsigned int flags)
{
	struct region *r;

	if (enter("cuMemHostGetDevicePointer_v2"))
		return CUDA_ERROR_UNKNOWN;
	pthread_mutex_lock(&lock);
	r = find_region((uintptr_t)p, 0);
	pthread_mutex_unlock(&lock);
	if (!r || r->kind != K_REGISTERED)
		return CUDA_ERROR_INVALID_VALUE;
	*d = (CUdeviceptr)p;
	return CUDA_SUCCESS;
}

long fake_registrations(void)
{
	long n = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_regions; i++)
		n += regions[i].kind == K_REGISTERED;
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- pointer queries ---- */

static int is_host(const struct region *r)
{
	return r->kind == K_REGISTERED ||
	       (r->kind == K_MAP && r->h->prop.location.type != CU_MEM_LOCATION_TYPE_DEVICE);
}

CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr)
{
	struct region r, *found;

	enter("cuPointerGetAttribute");
	pthread_mutex_lock(&lock);
	found = find_region(ptr, 0);
	if (found)
		r = *found;
	pthread_mutex_unlock(&lock);
	if (!found)
		return CUDA_ERROR_INVALID_VALUE;
	switch (attr) {
	case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
		*(unsigned int *)data = is_host(&r) ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
		break;
	case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
		*(int *)data = r.dev;
		break;
	case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
		*(CUdeviceptr *)data = ptr;
		break;
	case CU_POINTER_ATTRIBUTE_HOST_POINTER:
		if (!is_host(&r))
			return CUDA_ERROR_INVALID_VALUE;
		*(void **)data = (void *)ptr;
		break;
	case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
		*(CUdeviceptr *)data = r.base;
		break;
	case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
		*(size_t *)data = r.size;
		break;
	case CU_POINTER_ATTRIBUTE_IS_MANAGED:
		*(unsigned int *)data = r.kind == K_MANAGED;
		break;
	case CU_POINTER_ATTRIBUTE_CONTEXT:
		*(CUcontext *)data = (CUcontext)r.ctx;
		break;
	case CU_POINTER_ATTRIBUTE_MAPPED:
		*(unsigned int *)data = 1;
		break;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
	return CUDA_SUCCESS;
}

CUresult cuPointerGetAttributes(unsigned int n, CUpointer_attribute *attrs, void **data,
				CUdeviceptr ptr)
{
	enter("cuPointerGetAttributes");
	for (unsigned int i = 0; i < n; i++) {
		CUresult rc = cuPointerGetAttribute(data[i], attrs[i], ptr);

		if (rc != CUDA_SUCCESS && rc != CUDA_ERROR_INVALID_VALUE)
			return rc;
	}
	return CUDA_SUCCESS;
}

CUresult cuMemGetAddressRange_v2(CUdeviceptr *base, size_t *size, CUdeviceptr ptr)
{
	struct region *r;
	CUresult rc = CUDA_SUCCESS;

	enter("cuMemGetAddressRange_v2");
	pthread_mutex_lock(&lock);
	r = find_region(ptr, 0);
	if (!r) {
		rc = CUDA_ERROR_NOT_FOUND;
	} else {
		/* Like the H100's driver: a host-NUMA map reports a base 12 GiB off. */
		uintptr_t off = r->kind == K_MAP && is_host(r) ? 12ULL << 30 : 0;

		if (base)
			*base = r->base - off;
		if (size)
			*size = r->size;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

/* ---- virtual memory management ---- */

CUresult cuMemGetAllocationGranularity(size_t *g, const CUmemAllocationProp *prop,
				       CUmemAllocationGranularity_flags option)
{
	*g = GRAN;
	return CUDA_SUCCESS;
}

CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t align, CUdeviceptr addr,
			     unsigned long long flags)
{
	void *p;

	enter("cuMemAddressReserve");
	if (!size || size % GRAN)
		return CUDA_ERROR_INVALID_VALUE;
	p = mmap(NULL, size + GRAN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*ptr = ((uintptr_t)p + GRAN - 1) / GRAN * GRAN;
	return CUDA_SUCCESS;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
	enter("cuMemAddressFree");
	munmap((void *)ptr, size);
	return CUDA_SUCCESS;
}

static void handle_unref(struct handle *h)
{
	if (--h->refs)
		return;
	if (h->prop.location.type == CU_MEM_LOCATION_TYPE_DEVICE)
		atomic_fetch_sub(&vram_used[h->prop.location.id], h->size);
	host_handle_note(h, -1);
	close(h->fd);
	free(h);
}

CUresult cuMemCreate(CUmemGenericAllocationHandle *out, size_t size,
		     const CUmemAllocationProp *prop, unsigned long long flags)
{
	struct handle *h;
	CUresult rc;
	int fd;

	if (enter("cuMemCreate"))
		return CUDA_ERROR_UNKNOWN;
	if (!size || size % GRAN)
		return CUDA_ERROR_INVALID_VALUE;
	switch (prop->location.type) {
	case CU_MEM_LOCATION_TYPE_DEVICE:
		if (prop->location.id < 0 || prop->location.id >= n_dev)
			return CUDA_ERROR_INVALID_DEVICE;
		if (atomic_fetch_add(&vram_used[prop->location.id], size) + size > vram_total) {
			atomic_fetch_sub(&vram_used[prop->location.id], size);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		break;
	case CU_MEM_LOCATION_TYPE_HOST_NUMA:
		if (getenv("FAKE_CUDA_NO_HOST_NUMA"))
			return CUDA_ERROR_NOT_SUPPORTED;
		rc = host_handle_check(prop, size);
		if (rc != CUDA_SUCCESS)
			return rc;
		break;
	case CU_MEM_LOCATION_TYPE_HOST:
		if (prop->requestedHandleTypes)
			return CUDA_ERROR_INVALID_VALUE;
		rc = host_handle_check(prop, size);
		if (rc != CUDA_SUCCESS)
			return rc;
		break;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
	fd = memfd_create("fake-vmm", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
		return CUDA_ERROR_OUT_OF_MEMORY;
	h = calloc(1, sizeof(*h));
	h->fd = fd;
	h->size = size;
	h->prop = *prop;
	h->refs = 1;
	host_handle_note(h, 1);
	*out = (CUmemGenericAllocationHandle)(uintptr_t)h;
	return CUDA_SUCCESS;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
	enter("cuMemRelease");
	pthread_mutex_lock(&lock);
	handle_unref((struct handle *)(uintptr_t)handle);
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
		  unsigned long long flags)
{
	struct handle *h = (struct handle *)(uintptr_t)handle;

	enter("cuMemMap");
	if (offset + size > h->size || map_check(ptr, size) != CUDA_SUCCESS)
		return CUDA_ERROR_INVALID_VALUE;
	if (mmap((void *)ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, h->fd, (off_t)offset) ==
	    MAP_FAILED)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	h->refs++;
	add_region((struct region){
		ptr, size, K_MAP,
		h->prop.location.type == CU_MEM_LOCATION_TYPE_DEVICE ? h->prop.location.id : -1,
		NULL, h });
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
	enter("cuMemUnmap");
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_regions;) {
		struct region *r = &regions[i];

		if (r->kind == K_MAP && r->base >= ptr && r->base + r->size <= ptr + size) {
			mmap((void *)r->base, r->size, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
			handle_unref(r->h);
			del_region(r);
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
	enter("cuMemSetAccess");
	if (access_check(ptr, size) != CUDA_SUCCESS)
		return CUDA_ERROR_INVALID_VALUE;
	return mprotect((void *)ptr, size, PROT_READ | PROT_WRITE) ? CUDA_ERROR_INVALID_VALUE
								   : CUDA_SUCCESS;
}

CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *out, void *addr)
{
	struct region *r;

	enter("cuMemRetainAllocationHandle");
	pthread_mutex_lock(&lock);
	r = find_region((uintptr_t)addr, 0);
	if (!r || r->kind != K_MAP) {
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_INVALID_VALUE;
	}
	r->h->refs++;
	*out = (CUmemGenericAllocationHandle)(uintptr_t)r->h;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
						CUmemGenericAllocationHandle handle)
{
	enter("cuMemGetAllocationPropertiesFromHandle");
	*prop = ((struct handle *)(uintptr_t)handle)->prop;
	return CUDA_SUCCESS;
}

/* ---- contexts' teardown ---- */

static void drop_ctx_regions(struct fake_ctx *c)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_regions;) {
		struct region *r = &regions[i];

		if (r->ctx == c && (r->kind == K_DEVICE || r->kind == K_MANAGED)) {
			if (r->kind == K_DEVICE)
				atomic_fetch_sub(&vram_used[r->dev], r->size);
			free((void *)r->base);
			del_region(r);
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(&lock);
}

CUresult cuCtxDestroy_v2(CUcontext ctx)
{
	struct fake_ctx *c = (struct fake_ctx *)ctx;

	enter("cuCtxDestroy_v2");
	drop_ctx_regions(c);
	c->alive = 0;
	for (int i = 0; i < depth; i++)
		if (stack[i] == c)
			stack[i] = NULL;
	while (depth && !stack[depth - 1])
		depth--;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
	enter("cuDevicePrimaryCtxRetain");
	if (dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	pthread_mutex_lock(&lock);
	primary[dev].dev = dev;
	primary[dev].alive = 1;
	primary_refs[dev]++;
	pthread_mutex_unlock(&lock);
	*pctx = (CUcontext)&primary[dev];
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
	pthread_mutex_lock(&lock);
	if (primary_refs[dev] > 0)
		primary_refs[dev]--;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
	*flags = 0;
	*active = primary[dev].alive;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
	enter("cuDevicePrimaryCtxReset_v2");
	drop_ctx_regions(&primary[dev]);
	return CUDA_SUCCESS;
}

/* ---- streams and events: a stream completes its work unless a test blocks it ---- */

struct fake_stream {
	long epoch, done;
	int blocked;
};

struct fake_event {
	struct fake_stream *s;
	long epoch;
};

CUresult cuStreamCreate(CUstream *s, unsigned int flags)
{
	*s = (CUstream)calloc(1, sizeof(struct fake_stream));
	return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream s)
{
	free(s);
	return CUDA_SUCCESS;
}

void fake_stream_block(CUstream s)
{
	((struct fake_stream *)s)->blocked = 1;
}

void fake_stream_release(CUstream s)
{
	struct fake_stream *fs = (struct fake_stream *)s;

	fs->blocked = 0;
	fs->done = fs->epoch;
}

static CUresult stream_sync(CUstream s)
{
	if (s)
		fake_stream_release(s);
	return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream s)
{
	enter("cuStreamSynchronize");
	return stream_sync(s);
}

CUresult cuStreamSynchronize_ptsz(CUstream s)
{
	enter("cuStreamSynchronize_ptsz");
	return stream_sync(s);
}

CUresult cuEventCreate(CUevent *e, unsigned int flags)
{
	if (enter("cuEventCreate"))
		return CUDA_ERROR_UNKNOWN;
	*e = (CUevent)calloc(1, sizeof(struct fake_event));
	return CUDA_SUCCESS;
}

static CUresult event_record(CUevent e, CUstream s)
{
	struct fake_event *fe = (struct fake_event *)e;
	struct fake_stream *fs = (struct fake_stream *)s;

	fe->s = fs;
	if (fs) {
		fe->epoch = ++fs->epoch;
		if (!fs->blocked)
			fs->done = fs->epoch;
	}
	return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent e, CUstream s)
{
	enter("cuEventRecord");
	return event_record(e, s);
}

CUresult cuEventRecord_ptsz(CUevent e, CUstream s)
{
	enter("cuEventRecord_ptsz");
	return event_record(e, s);
}

CUresult cuEventQuery(CUevent e)
{
	struct fake_event *fe = (struct fake_event *)e;

	enter("cuEventQuery");
	return fe->s && fe->epoch > fe->s->done ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
}

CUresult cuEventSynchronize(CUevent e)
{
	struct fake_event *fe = (struct fake_event *)e;

	enter("cuEventSynchronize");
	if (fe->s)
		fake_stream_release((CUstream)fe->s);
	return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent e)
{
	enter("cuEventDestroy_v2");
	free(e);
	return CUDA_SUCCESS;
}

/* What a driver-internal dlsym of @name on itself returns (the shim must not substitute). */
void *fake_self_lookup(const char *name)
{
	void *self = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
	void *p = self ? dlsym(self, name) : NULL;

	if (self)
		dlclose(self);
	return p;
}

/* ---- cuGetProcAddress: per-thread variant, then _v2, then the plain name ---- */

static CUresult get_proc(const char *symbol, void **pfn, int version, cuuint64_t flags,
			 CUdriverProcAddressQueryResult *status)
{
	static const char *const suffixes[] = { "_ptsz", "_ptds", "_v2", "" };
	void *self = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
	char name[256];

	*pfn = NULL;
	for (int i = 0; i < 4 && self; i++) {
		if (i < 2 && !(flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
			continue;
		snprintf(name, sizeof(name), "%s%s", symbol, suffixes[i]);
		*pfn = dlsym(self, name);
		if (*pfn)
			break;
	}
	if (self)
		dlclose(self);
	if (status)
		*status = *pfn ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	return *pfn ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags,
			     CUdriverProcAddressQueryResult *status)
{
	enter("cuGetProcAddress_v2");
	return get_proc(symbol, pfn, version, flags, status);
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
	enter("cuGetProcAddress");
	return get_proc(symbol, pfn, version, flags, NULL);
}

/*
 * ---- mixed device and host handles in one reserved range (split placement) ----
 *
 * What the real driver did on the H100 (driver 580.159.04, shared/notes/cuda.md), and what
 * this fake does the same way:
 *   - cuMemCreate with location HOST_NUMA (id 0) gives host memory that cuMemMap places next
 *     to device chunks in one cuMemAddressReserve range; one cuMemSetAccess over the whole
 *     range grants the device access; host granularity is 2 MiB.
 *   - allocFlags.gpuDirectRDMACapable = 1 on a HOST_NUMA or HOST location is INVALID_VALUE.
 *   - HOST needs requestedHandleTypes == 0 (in cuMemCreate above).
 *   - pointer attributes answer per mapping: MEMORY_TYPE HOST for a host chunk, and
 *     cuMemGetAddressRange gives a base 12 GiB off for it (in the queries above).
 * What the fake does as CUDA's documentation says, not measured:
 *   - a HOST_NUMA location id outside [0, FAKE_CUDA_NUMA_NODES) is INVALID_VALUE;
 *   - cuMemMap needs ptr and size aligned to the granularity;
 *   - cuMemSetAccess needs the whole range mapped;
 *   - cuDeviceGetAttribute(HOST_NUMA_ID) is the host node nearest the GPU, -1 without NUMA
 *     (FAKE_CUDA_HOST_NUMA_ID, default 0; the H100 machine's answer is in docs/split-placement.md
 *     once measured).
 * Test-only: FAKE_CUDA_HOST_NUMA_LIMIT caps the host bytes all HOST_NUMA/HOST handles may hold
 * (OUT_OF_MEMORY past it, as a host short of memory would); fake_host_numa_used(node) and
 * fake_host_handles() read what is held (node -1: HOST handles).
 */
#define FAKE_NUMA_MAX 8

static _Atomic uint64_t host_numa_used[FAKE_NUMA_MAX + 1]; /* [FAKE_NUMA_MAX]: HOST */
static _Atomic long host_handles;

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : def;
}

static int host_slot(const CUmemAllocationProp *prop)
{
	if (prop->location.type == CU_MEM_LOCATION_TYPE_HOST)
		return FAKE_NUMA_MAX;
	return prop->location.id;
}

static uint64_t host_bytes_held(void)
{
	uint64_t sum = 0;

	for (int i = 0; i <= FAKE_NUMA_MAX; i++)
		sum += atomic_load(&host_numa_used[i]);
	return sum;
}

static CUresult host_handle_check(const CUmemAllocationProp *prop, size_t size)
{
	int nodes = env_int("FAKE_CUDA_NUMA_NODES", 1);
	uint64_t limit = parse(getenv("FAKE_CUDA_HOST_NUMA_LIMIT"), UINT64_MAX);

	if (prop->allocFlags.gpuDirectRDMACapable)
		return CUDA_ERROR_INVALID_VALUE;
	if (prop->location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA &&
	    (prop->location.id < 0 || prop->location.id >= nodes ||
	     prop->location.id >= FAKE_NUMA_MAX))
		return CUDA_ERROR_INVALID_VALUE;
	if (host_bytes_held() + size > limit)
		return CUDA_ERROR_OUT_OF_MEMORY;
	return CUDA_SUCCESS;
}

static void host_handle_note(const struct handle *h, int64_t sign)
{
	if (h->prop.location.type != CU_MEM_LOCATION_TYPE_HOST_NUMA &&
	    h->prop.location.type != CU_MEM_LOCATION_TYPE_HOST)
		return;
	atomic_fetch_add(&host_numa_used[host_slot(&h->prop)], (uint64_t)(sign * (int64_t)h->size));
	atomic_fetch_add(&host_handles, sign);
}

uint64_t fake_host_numa_used(int node)
{
	if (node == -1)
		return atomic_load(&host_numa_used[FAKE_NUMA_MAX]);
	return node >= 0 && node < FAKE_NUMA_MAX ? atomic_load(&host_numa_used[node]) : 0;
}

long fake_host_handles(void)
{
	return atomic_load(&host_handles);
}

static CUresult map_check(CUdeviceptr ptr, size_t size)
{
	return !size || ptr % GRAN || size % GRAN ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

/* Every byte of [ptr, ptr + size) must belong to a cuMemMap'd region. */
static CUresult access_check(CUdeviceptr ptr, size_t size)
{
	uintptr_t at = ptr, end = ptr + size;

	if (!size)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	while (at < end) {
		struct region *r = find_region(at, 0);

		if (!r || r->kind != K_MAP)
			break;
		at = r->base + r->size;
	}
	pthread_mutex_unlock(&lock);
	return at >= end ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuDeviceGetAttribute(int *value, CUdevice_attribute attrib, CUdevice dev)
{
	enter("cuDeviceGetAttribute");
	if (!value || dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	switch (attrib) {
	case CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID:
		*value = env_int("FAKE_CUDA_HOST_NUMA_ID", 0);
		return CUDA_SUCCESS;
	case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
		*value = 1;
		return CUDA_SUCCESS;
	default:
		/* Not modelled by the fake: a test that needs another attribute adds it here. */
		return CUDA_ERROR_INVALID_VALUE;
	}
}
