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

static pid_t init_pid;

static void init(void)
{
	init_pid = getpid();
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

/* Why the last enter() on this thread failed: the call returns it. */
static __thread CUresult entered;

/*
 * Every call starts here.  It fails (returns 1, the reason in `entered`) in a child forked
 * after the driver was initialised, where the real driver answers every call with
 * CUDA_ERROR_NOT_INITIALIZED (test/gpu/driver_facts.c, "fork"), and for the functions named
 * in FAKE_CUDA_FAIL (CUDA_ERROR_UNKNOWN), read at every call so a test can inject a fault
 * midway.
 */
static int enter(const char *name)
{
	const char *f = getenv("FAKE_CUDA_FAIL");
	char key[80], list[1024];

	pthread_once(&once, init);
	bump(name);
	if (getpid() != init_pid) {
		entered = CUDA_ERROR_NOT_INITIALIZED;
		return 1;
	}
	if (!f || !*f)
		return 0;
	snprintf(key, sizeof(key), ",%s,", name);
	snprintf(list, sizeof(list), ",%s,", f);
	entered = CUDA_ERROR_UNKNOWN;
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

static CUresult ctx_sync(void); /* in the CUDA semantics section */

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
	if (enter("cuInit"))
		return entered;
	return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *v)
{
	*v = 13000;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count)
{
	if (enter("cuDeviceGetCount"))
		return entered;
	*count = n_dev;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *d, int ordinal)
{
	if (enter("cuDeviceGet"))
		return entered;
	if (ordinal < 0 || ordinal >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	*d = ordinal;
	return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
	if (enter("cuDeviceTotalMem_v2"))
		return entered;
	if (dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	*bytes = vram_total;
	return CUDA_SUCCESS;
}

/* NVML bus b (1-based) is CUDA device n_dev - b: the orders differ on purpose. */
CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *bus_id)
{
	unsigned int dom, bus, d, fn;

	if (enter("cuDeviceGetByPCIBusId"))
		return entered;
	if (sscanf(bus_id, "%x:%x:%x.%x", &dom, &bus, &d, &fn) != 4 || bus < 1 || (int)bus > n_dev)
		return CUDA_ERROR_INVALID_VALUE;
	*dev = n_dev - (int)bus;
	return CUDA_SUCCESS;
}

CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags,
			CUdevice dev)
{
	struct fake_ctx *c;

	if (enter("cuCtxCreate_v4"))
		return entered;
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
	if (enter("cuCtxGetCurrent"))
		return entered;
	*pctx = (CUcontext)current();
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
	if (enter("cuCtxSetCurrent"))
		return entered;
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

	if (enter("cuCtxGetDevice"))
		return entered;
	if (!c || !c->alive)
		return CUDA_ERROR_INVALID_CONTEXT;
	*dev = c->dev;
	return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
	if (enter("cuCtxPushCurrent_v2"))
		return entered;
	if (depth >= 16)
		return CUDA_ERROR_UNKNOWN;
	stack[depth++] = (struct fake_ctx *)ctx;
	return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
	if (enter("cuCtxPopCurrent_v2"))
		return entered;
	if (!depth)
		return CUDA_ERROR_INVALID_CONTEXT;
	depth--;
	if (pctx)
		*pctx = (CUcontext)stack[depth];
	return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void)
{
	if (enter("cuCtxSynchronize"))
		return entered;
	return ctx_sync();
}

/* ---- device memory ---- */

/* Defined in the section "mixed device and host handles in one reserved range" below. */
struct handle;
static CUresult host_handle_check(const CUmemAllocationProp *prop, size_t size);
static void host_handle_note(const struct handle *h, int64_t sign);
static CUresult map_check(CUdeviceptr ptr, size_t size);
static CUresult access_check(CUdeviceptr ptr, size_t size);

enum kind { K_DEVICE, K_MANAGED, K_REGISTERED, K_MAP, K_POOL };

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
	struct fake_pool *pool; /* K_POOL: stream-ordered or graph memory */
	int live;		/* K_POOL: allocated (graph memory: by a launch) */
};

/* Defined in the CUDA semantics section below. */
static CUresult unsafe_call(void);
static int pool_on_host(const struct fake_pool *p);
static void pool_free_region(struct region *r);
static CUresult create_handle_types(const CUmemAllocationProp *prop);
static CUresult more_attributes(const struct region *r, CUpointer_attribute attr, void *data);

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
	add_region((struct region){
		.base = (uintptr_t)p, .size = size, .kind = kind, .dev = c->dev, .ctx = c });
	pthread_mutex_unlock(&lock);
	*dptr = (CUdeviceptr)p;
	return CUDA_SUCCESS;
}

static CUresult device_free(CUdeviceptr p)
{
	struct region *r;

	pthread_mutex_lock(&lock);
	r = find_region(p, 1);
	if (r && r->kind == K_POOL) {
		pool_free_region(r);
		pthread_mutex_unlock(&lock);
		return CUDA_SUCCESS;
	}
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
		return entered;
	if (unsafe_call())
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	return device_alloc(dptr, size, K_DEVICE);
}

CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t w, size_t h, unsigned int e)
{
	if (enter("cuMemAllocPitch_v2"))
		return entered;
	if (e != 4 && e != 8 && e != 16)
		return CUDA_ERROR_INVALID_VALUE;
	*pitch = (w + 511) / 512 * 512;
	return device_alloc(dptr, *pitch * h, K_DEVICE);
}

CUresult cuMemFree_v2(CUdeviceptr p)
{
	if (enter("cuMemFree_v2"))
		return entered;
	if (unsafe_call())
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	return device_free(p);
}

CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t size, unsigned int flags)
{
	if (enter("cuMemAllocManaged"))
		return entered;
	return device_alloc(dptr, size, K_MANAGED);
}

CUresult cuMemGetInfo_v2(size_t *free_b, size_t *total_b)
{
	struct fake_ctx *c = current();

	if (enter("cuMemGetInfo_v2"))
		return entered;
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
		return entered;
	if (unsafe_call())
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
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
	add_region((struct region){ .base = (uintptr_t)p,
				    .size = size,
				    .kind = K_REGISTERED,
				    .dev = current()->dev,
				    .ctx = current() });
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemHostUnregister(void *p)
{
	struct region *r;

	if (enter("cuMemHostUnregister"))
		return entered;
	if (unsafe_call())
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
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
		return entered;
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
	       (r->kind == K_MAP && r->h->prop.location.type != CU_MEM_LOCATION_TYPE_DEVICE) ||
	       (r->kind == K_POOL && pool_on_host(r->pool));
}

CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr)
{
	struct region r, *found;

	if (enter("cuPointerGetAttribute"))
		return entered;
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
		return more_attributes(&r, attr, data);
	}
	return CUDA_SUCCESS;
}

CUresult cuPointerGetAttributes(unsigned int n, CUpointer_attribute *attrs, void **data,
				CUdeviceptr ptr)
{
	if (enter("cuPointerGetAttributes"))
		return entered;
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

	if (enter("cuMemGetAddressRange_v2"))
		return entered;
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

	if (enter("cuMemAddressReserve"))
		return entered;
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
	if (enter("cuMemAddressFree"))
		return entered;
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
		return entered;
	if (create_handle_types(prop))
		return create_handle_types(prop);
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
	if (enter("cuMemRelease"))
		return entered;
	pthread_mutex_lock(&lock);
	handle_unref((struct handle *)(uintptr_t)handle);
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
		  unsigned long long flags)
{
	struct handle *h = (struct handle *)(uintptr_t)handle;

	if (enter("cuMemMap"))
		return entered;
	if (offset + size > h->size || map_check(ptr, size) != CUDA_SUCCESS)
		return CUDA_ERROR_INVALID_VALUE;
	if (mmap((void *)ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, h->fd, (off_t)offset) ==
	    MAP_FAILED)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	h->refs++;
	add_region((struct region){ .base = ptr,
				    .size = size,
				    .kind = K_MAP,
				    .dev = h->prop.location.type == CU_MEM_LOCATION_TYPE_DEVICE
						   ? h->prop.location.id
						   : -1,
				    .h = h });
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
	if (enter("cuMemUnmap"))
		return entered;
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
	if (enter("cuMemSetAccess"))
		return entered;
	if (access_check(ptr, size) != CUDA_SUCCESS)
		return CUDA_ERROR_INVALID_VALUE;
	return mprotect((void *)ptr, size, PROT_READ | PROT_WRITE) ? CUDA_ERROR_INVALID_VALUE
								   : CUDA_SUCCESS;
}

CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *out, void *addr)
{
	struct region *r;

	if (enter("cuMemRetainAllocationHandle"))
		return entered;
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
	if (enter("cuMemGetAllocationPropertiesFromHandle"))
		return entered;
	*prop = ((struct handle *)(uintptr_t)handle)->prop;
	/* Driver 580 reports a HOST handle as made on host NUMA node 0 (driver_facts). */
	if (prop->location.type == CU_MEM_LOCATION_TYPE_HOST) {
		prop->location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
		prop->location.id = 0;
	}
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

	if (enter("cuCtxDestroy_v2"))
		return entered;
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
	if (enter("cuDevicePrimaryCtxRetain"))
		return entered;
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
	if (enter("cuDevicePrimaryCtxRelease_v2"))
		return entered;
	pthread_mutex_lock(&lock);
	if (primary_refs[dev] > 0)
		primary_refs[dev]--;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
	if (enter("cuDevicePrimaryCtxGetState"))
		return entered;
	*flags = 0;
	*active = primary[dev].alive;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
	if (enter("cuDevicePrimaryCtxReset_v2"))
		return entered;
	drop_ctx_regions(&primary[dev]);
	return CUDA_SUCCESS;
}

/*
 * ==== CUDA semantics (issue 13) =============================================================
 * Streams and events, stream capture, stream-ordered pools, graph memory, IPC and export, as
 * the real driver does them where the shim depends on it.  A stream completes its work
 * unless a test blocks it.
 *
 * Measured on the H100 (driver 580.159.04; shared/notes/cuda.md and issue 13): waiting on an
 * event recorded in a capture is 907 and invalidates the capture, even in relaxed mode;
 * cuMemHostRegister during capture is 900; the default pool keeps freed memory (release
 * threshold); FABRIC handles are refused with 800 even for device memory; HOST locations
 * refuse shareable handle types; cuIpcGetMemHandle fails on host memory; every call in a
 * forked child is 3.  From CUDA's documentation, NOT yet checked on the GPU (no device time
 * was lent when this was written; test/gpu/driver_facts.c prints each of them, run it and
 * correct this section): which calls count as "potentially unsafe" in each capture mode
 * (here: cuMemAlloc, cuMemFree, cuMemHostRegister, cuCtxSynchronize), that an unsafe call
 * does not invalidate the capture, that a pool grows by the whole request when its cache is
 * short, that graph memory is backed at launch and kept until cuDeviceGraphMemTrim, the error
 * codes of refused exports (INVALID_VALUE), the device attributes, and FABRIC pools (800).
 */

/* A graph: its memory allocation and free nodes, in order (other nodes are not modelled). */
struct graph_op {
	int is_free;
	uintptr_t base;
	size_t size;
	int dev;
};

struct fake_graph {
	struct graph_op *ops;
	size_t n, cap;
};

struct fake_stream {
	long epoch, done;
	int blocked;
	struct fake_ctx *ctx; /* current at creation: the stream's device */
	/* Capture. Protected by lock. */
	CUstreamCaptureStatus cap_status;
	CUstreamCaptureMode cap_mode;
	cuuint64_t cap_id;
	pthread_t cap_thread;
	struct fake_graph *cap_graph;
};

struct fake_event {
	struct fake_stream *s;
	long epoch;
	struct fake_stream *captured; /* last recorded into this stream while it captured */
};

/* NULL, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD are the context's default stream. */
static struct fake_stream *stream_of(CUstream s)
{
	return (uintptr_t)s <= 2 ? NULL : (struct fake_stream *)s;
}

static int stream_dev(struct fake_stream *fs)
{
	struct fake_ctx *c = fs && fs->ctx ? fs->ctx : current();

	return c ? c->dev : -1;
}

CUresult cuStreamCreate(CUstream *s, unsigned int flags)
{
	struct fake_stream *fs;

	if (enter("cuStreamCreate"))
		return entered;
	fs = calloc(1, sizeof(*fs));
	fs->ctx = current();
	*s = (CUstream)fs;
	return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream s)
{
	if (enter("cuStreamDestroy_v2"))
		return entered;
	/* Kept (leaked): events recorded on it may still be queried, as the driver allows. */
	if (stream_of(s))
		stream_of(s)->done = stream_of(s)->epoch;
	return CUDA_SUCCESS;
}

CUresult cuStreamGetCtx(CUstream s, CUcontext *pctx)
{
	struct fake_stream *fs = stream_of(s);

	if (enter("cuStreamGetCtx"))
		return entered;
	*pctx = (CUcontext)(fs ? fs->ctx : current());
	return *pctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

static int capturing(struct fake_stream *fs);
static void invalidate(struct fake_stream *fs);

CUresult cuStreamGetDevice(CUstream s, CUdevice *dev)
{
	struct fake_stream *fs = stream_of(s);
	int d = stream_dev(fs);

	if (enter("cuStreamGetDevice"))
		return entered;
	/* Refused on a capturing stream, which it invalidates: the H100 did so in global mode
	 * (its error log, driver 580); the other modes are assumed alike. */
	pthread_mutex_lock(&lock);
	if (capturing(fs)) {
		invalidate(fs);
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	}
	pthread_mutex_unlock(&lock);
	if (d < 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	*dev = d;
	return CUDA_SUCCESS;
}

void fake_stream_block(CUstream s)
{
	stream_of(s)->blocked = 1;
}

void fake_stream_release(CUstream s)
{
	struct fake_stream *fs = stream_of(s);

	fs->blocked = 0;
	fs->done = fs->epoch;
}

/* ---- capture ---- */

static cuuint64_t capture_ids;
static int global_captures;		 /* all threads. Protected by lock. */
static __thread int own_strict_captures; /* this thread's non-relaxed ones */
static __thread int own_global_captures;
static __thread CUstreamCaptureMode thread_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

static int capturing(struct fake_stream *fs)
{
	return fs && fs->cap_status != CU_STREAM_CAPTURE_STATUS_NONE;
}

/* The streams capturing now, to invalidate the ones a refused call concerns. Protected by lock. */
#define MAX_CAPTURES 64
static struct fake_stream *captures[MAX_CAPTURES];

/* Called with lock held. */
static void invalidate(struct fake_stream *fs)
{
	if (fs && fs->cap_status == CU_STREAM_CAPTURE_STATUS_ACTIVE)
		fs->cap_status = CU_STREAM_CAPTURE_STATUS_INVALIDATED;
}

/*
 * A "potentially unsafe" call (cuMemAlloc, cuMemHostRegister, ...) while captures are under
 * way: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED unless this thread is in relaxed mode or no
 * capture concerns it (the rules of cuThreadExchangeStreamCaptureMode).
 */
static CUresult unsafe_call(void)
{
	pthread_t self = pthread_self();
	int others_global, refused;

	if (thread_mode == CU_STREAM_CAPTURE_MODE_RELAXED)
		return CUDA_SUCCESS;
	pthread_mutex_lock(&lock);
	others_global = global_captures - own_global_captures;
	refused = own_strict_captures ||
		  (thread_mode == CU_STREAM_CAPTURE_MODE_GLOBAL && others_global > 0);
	/* The real driver also invalidates the captures that forbade the call (driver_facts). */
	for (int i = 0; refused && i < MAX_CAPTURES; i++) {
		struct fake_stream *fs = captures[i];

		if (fs && ((pthread_equal(fs->cap_thread, self) &&
			    fs->cap_mode != CU_STREAM_CAPTURE_MODE_RELAXED) ||
			   (thread_mode == CU_STREAM_CAPTURE_MODE_GLOBAL &&
			    fs->cap_mode == CU_STREAM_CAPTURE_MODE_GLOBAL)))
			invalidate(fs);
	}
	pthread_mutex_unlock(&lock);
	return refused ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS;
}

/* Waiting for a whole context is refused during any of its captures, relaxed ones included. */
static CUresult context_wait_call(struct fake_ctx *c)
{
	int refused = 0;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_CAPTURES; i++) {
		if (captures[i] && (!captures[i]->ctx || captures[i]->ctx == c)) {
			invalidate(captures[i]);
			refused = 1;
		}
	}
	pthread_mutex_unlock(&lock);
	return refused ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS;
}

static CUresult begin_capture(CUstream s, CUstreamCaptureMode mode)
{
	struct fake_stream *fs = stream_of(s);

	if (!fs)
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	if (mode > CU_STREAM_CAPTURE_MODE_RELAXED)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	if (capturing(fs)) {
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_ILLEGAL_STATE;
	}
	fs->cap_status = CU_STREAM_CAPTURE_STATUS_ACTIVE;
	fs->cap_mode = mode;
	fs->cap_id = ++capture_ids;
	fs->cap_thread = pthread_self();
	fs->cap_graph = calloc(1, sizeof(*fs->cap_graph));
	if (mode == CU_STREAM_CAPTURE_MODE_GLOBAL)
		global_captures++;
	for (int i = 0; i < MAX_CAPTURES; i++) {
		if (!captures[i]) {
			captures[i] = fs;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	if (mode != CU_STREAM_CAPTURE_MODE_RELAXED)
		own_strict_captures++;
	if (mode == CU_STREAM_CAPTURE_MODE_GLOBAL)
		own_global_captures++;
	return CUDA_SUCCESS;
}

CUresult cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode)
{
	if (enter("cuStreamBeginCapture_v2"))
		return entered;
	return begin_capture(s, mode);
}

CUresult cuStreamBeginCapture_v2_ptsz(CUstream s, CUstreamCaptureMode mode)
{
	if (enter("cuStreamBeginCapture_v2_ptsz"))
		return entered;
	return begin_capture(s, mode);
}

static void graph_free(struct fake_graph *g);

static CUresult end_capture(CUstream s, CUgraph *out)
{
	struct fake_stream *fs = stream_of(s);
	CUstreamCaptureStatus st;
	struct fake_graph *g;

	*out = NULL;
	pthread_mutex_lock(&lock);
	if (!capturing(fs)) {
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_ILLEGAL_STATE;
	}
	st = fs->cap_status;
	g = fs->cap_graph;
	fs->cap_status = CU_STREAM_CAPTURE_STATUS_NONE;
	fs->cap_graph = NULL;
	if (fs->cap_mode == CU_STREAM_CAPTURE_MODE_GLOBAL)
		global_captures--;
	for (int i = 0; i < MAX_CAPTURES; i++)
		if (captures[i] == fs)
			captures[i] = NULL;
	pthread_mutex_unlock(&lock);
	if (fs->cap_mode != CU_STREAM_CAPTURE_MODE_RELAXED && own_strict_captures)
		own_strict_captures--;
	if (fs->cap_mode == CU_STREAM_CAPTURE_MODE_GLOBAL && own_global_captures)
		own_global_captures--;
	if (st == CU_STREAM_CAPTURE_STATUS_INVALIDATED) {
		graph_free(g);
		return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
	}
	*out = (CUgraph)g;
	return CUDA_SUCCESS;
}

CUresult cuStreamEndCapture(CUstream s, CUgraph *out)
{
	if (enter("cuStreamEndCapture"))
		return entered;
	return end_capture(s, out);
}

CUresult cuStreamEndCapture_ptsz(CUstream s, CUgraph *out)
{
	if (enter("cuStreamEndCapture_ptsz"))
		return entered;
	return end_capture(s, out);
}

static CUresult capture_info(CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id)
{
	struct fake_stream *fs = stream_of(s);

	pthread_mutex_lock(&lock);
	if (st)
		*st = fs ? fs->cap_status : CU_STREAM_CAPTURE_STATUS_NONE;
	if (id && fs && capturing(fs))
		*id = fs->cap_id;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuStreamGetCaptureInfo_v3(CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id,
				   CUgraph *graph, const CUgraphNode **deps,
				   const CUgraphEdgeData **edges, size_t *ndeps)
{
	if (enter("cuStreamGetCaptureInfo_v3"))
		return entered;
	if (ndeps)
		*ndeps = 0;
	return capture_info(s, st, id);
}

CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id,
					CUgraph *graph, const CUgraphNode **deps,
					const CUgraphEdgeData **edges, size_t *ndeps)
{
	if (enter("cuStreamGetCaptureInfo_v3_ptsz"))
		return entered;
	if (ndeps)
		*ndeps = 0;
	return capture_info(s, st, id);
}

CUresult cuStreamGetCaptureInfo_v2(CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id,
				   CUgraph *graph, const CUgraphNode **deps, size_t *ndeps)
{
	if (enter("cuStreamGetCaptureInfo_v2"))
		return entered;
	if (ndeps)
		*ndeps = 0;
	return capture_info(s, st, id);
}

CUresult cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus *st)
{
	if (enter("cuStreamIsCapturing"))
		return entered;
	return capture_info(s, st, NULL);
}

CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
	CUstreamCaptureMode old = thread_mode;

	if (enter("cuThreadExchangeStreamCaptureMode"))
		return entered;
	thread_mode = *mode;
	*mode = old;
	return CUDA_SUCCESS;
}

/* ---- synchronisation, events ---- */

static void pools_release_over_threshold(void);

/* A call that waits for @fs: illegal on a capturing stream (and it ends that capture). */
static CUresult stream_sync(CUstream s)
{
	struct fake_stream *fs = stream_of(s);

	pthread_mutex_lock(&lock);
	if (capturing(fs)) {
		invalidate(fs);
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	}
	pthread_mutex_unlock(&lock);
	if (fs)
		fake_stream_release(s);
	pools_release_over_threshold();
	return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream s)
{
	if (enter("cuStreamSynchronize"))
		return entered;
	return stream_sync(s);
}

CUresult cuStreamSynchronize_ptsz(CUstream s)
{
	if (enter("cuStreamSynchronize_ptsz"))
		return entered;
	return stream_sync(s);
}

CUresult cuStreamQuery(CUstream s)
{
	struct fake_stream *fs = stream_of(s);
	CUresult rc = CUDA_SUCCESS;

	if (enter("cuStreamQuery"))
		return entered;
	pthread_mutex_lock(&lock);
	if (capturing(fs)) {
		invalidate(fs);
		rc = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	} else if (fs && fs->done < fs->epoch) {
		rc = CUDA_ERROR_NOT_READY;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

CUresult cuEventCreate(CUevent *e, unsigned int flags)
{
	if (enter("cuEventCreate"))
		return entered;
	*e = (CUevent)calloc(1, sizeof(struct fake_event));
	return CUDA_SUCCESS;
}

/* Recording into a capturing stream captures the event: it then names a graph node. */
static CUresult event_record(CUevent e, CUstream s)
{
	struct fake_event *fe = (struct fake_event *)e;
	struct fake_stream *fs = stream_of(s);

	pthread_mutex_lock(&lock);
	if (capturing(fs)) {
		fe->captured = fs;
		pthread_mutex_unlock(&lock);
		return fs->cap_status == CU_STREAM_CAPTURE_STATUS_INVALIDATED
			       ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
			       : CUDA_SUCCESS;
	}
	fe->captured = NULL;
	fe->s = fs;
	if (fs) {
		fe->epoch = ++fs->epoch;
		if (!fs->blocked)
			fs->done = fs->epoch;
	}
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent e, CUstream s)
{
	if (enter("cuEventRecord"))
		return entered;
	return event_record(e, s);
}

CUresult cuEventRecord_ptsz(CUevent e, CUstream s)
{
	if (enter("cuEventRecord_ptsz"))
		return entered;
	return event_record(e, s);
}

/* Waiting on a captured event is CUDA_ERROR_CAPTURED_EVENT and invalidates its capture, even in relaxed mode. */
static CUresult captured_event(struct fake_event *fe)
{
	pthread_mutex_lock(&lock);
	if (!fe->captured) {
		pthread_mutex_unlock(&lock);
		return CUDA_SUCCESS;
	}
	invalidate(fe->captured);
	pthread_mutex_unlock(&lock);
	return CUDA_ERROR_CAPTURED_EVENT;
}

CUresult cuEventQuery(CUevent e)
{
	struct fake_event *fe = (struct fake_event *)e;
	CUresult rc;

	if (enter("cuEventQuery"))
		return entered;
	if ((rc = captured_event(fe)))
		return rc;
	/* Querying an event from outside the capture is an unsafe call (driver_facts: 900). */
	if (unsafe_call())
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	return fe->s && fe->epoch > fe->s->done ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
}

CUresult cuEventSynchronize(CUevent e)
{
	struct fake_event *fe = (struct fake_event *)e;
	CUresult rc;

	if (enter("cuEventSynchronize"))
		return entered;
	if ((rc = captured_event(fe)))
		return rc;
	if (fe->s)
		fake_stream_release((CUstream)fe->s);
	pools_release_over_threshold();
	return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent e)
{
	if (enter("cuEventDestroy_v2"))
		return entered;
	free(e);
	return CUDA_SUCCESS;
}

/* ---- stream-ordered pools: freed memory stays reserved up to the release threshold ---- */

struct fake_pool {
	CUmemPoolProps props;
	int dev;   /* the device whose VRAM it holds, -1 for host memory */
	int graph; /* a device's graph memory pool */
	/* Protected by lock. */
	cuuint64_t threshold, reserved, used, reserved_high, used_high;
	struct fake_pool *next; /* created pools */
};

static struct fake_pool default_pool[MAX_DEV], graph_pool[MAX_DEV];
static struct fake_pool *current_pool[MAX_DEV];
static struct fake_pool *created_pools;

static int pool_on_host(const struct fake_pool *p)
{
	return p->dev < 0;
}

/* Called with lock held. */
static struct fake_pool *pool_of_dev(int dev)
{
	struct fake_pool *p = current_pool[dev] ? current_pool[dev] : &default_pool[dev];

	if (!p->props.allocType) {
		p->props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
		p->props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
		p->props.location.id = dev;
		p->dev = dev;
	}
	return p;
}

/* Called with lock held.  The pool serves @size from what it holds, or grows by @size. */
static CUresult pool_take(struct fake_pool *p, size_t size)
{
	if (p->reserved - p->used < size) {
		if (p->dev >= 0) {
			uint64_t used = atomic_fetch_add(&vram_used[p->dev], size);

			if (used + size > vram_total) {
				atomic_fetch_sub(&vram_used[p->dev], size);
				return CUDA_ERROR_OUT_OF_MEMORY;
			}
		}
		p->reserved += size;
	}
	p->used += size;
	if (p->used > p->used_high)
		p->used_high = p->used;
	if (p->reserved > p->reserved_high)
		p->reserved_high = p->reserved;
	return CUDA_SUCCESS;
}

/* Called with lock held: give back what the pool holds beyond @keep (and beyond its use). */
static void pool_trim(struct fake_pool *p, cuuint64_t keep)
{
	cuuint64_t floor = keep > p->used ? keep : p->used;

	if (p->reserved <= floor)
		return;
	if (p->dev >= 0)
		atomic_fetch_sub(&vram_used[p->dev], p->reserved - floor);
	p->reserved = floor;
}

/* At each stream, event or context synchronisation, as the driver does. */
static void pools_release_over_threshold(void)
{
	pthread_mutex_lock(&lock);
	for (int d = 0; d < n_dev; d++)
		pool_trim(&default_pool[d], default_pool[d].threshold);
	for (struct fake_pool *p = created_pools; p; p = p->next)
		pool_trim(p, p->threshold);
	pthread_mutex_unlock(&lock);
}

CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice dev)
{
	if (enter("cuDeviceGetDefaultMemPool"))
		return entered;
	if (dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	pthread_mutex_lock(&lock);
	current_pool[dev] = current_pool[dev] ? current_pool[dev] : NULL;
	pool_of_dev(dev);
	*pool = (CUmemoryPool)&default_pool[dev];
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
	if (enter("cuDeviceGetMemPool"))
		return entered;
	if (dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	pthread_mutex_lock(&lock);
	*pool = (CUmemoryPool)pool_of_dev(dev);
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
	if (enter("cuDeviceSetMemPool"))
		return entered;
	if (dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	current_pool[dev] = (struct fake_pool *)pool;
	return CUDA_SUCCESS;
}

CUresult cuMemPoolCreate(CUmemoryPool *out, const CUmemPoolProps *props)
{
	struct fake_pool *p;

	if (enter("cuMemPoolCreate"))
		return entered;
	if (props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED)
		return CUDA_ERROR_INVALID_VALUE;
	if (props->handleTypes & CU_MEM_HANDLE_TYPE_FABRIC)
		return CUDA_ERROR_NOT_PERMITTED; /* as the H100 answered */
	switch (props->location.type) {
	case CU_MEM_LOCATION_TYPE_DEVICE:
		if (props->location.id < 0 || props->location.id >= n_dev)
			return CUDA_ERROR_INVALID_DEVICE;
		break;
	case CU_MEM_LOCATION_TYPE_HOST_NUMA:
		break;
	case CU_MEM_LOCATION_TYPE_HOST:
		if (props->handleTypes)
			return CUDA_ERROR_INVALID_VALUE;
		break;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
	p = calloc(1, sizeof(*p));
	p->props = *props;
	p->dev = props->location.type == CU_MEM_LOCATION_TYPE_DEVICE ? props->location.id : -1;
	pthread_mutex_lock(&lock);
	p->next = created_pools;
	created_pools = p;
	pthread_mutex_unlock(&lock);
	*out = (CUmemoryPool)p;
	return CUDA_SUCCESS;
}

CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
	struct fake_pool *p = (struct fake_pool *)pool;

	if (enter("cuMemPoolDestroy"))
		return entered;
	pthread_mutex_lock(&lock);
	for (struct fake_pool **pp = &created_pools; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			pool_trim(p, 0);
			for (int d = 0; d < n_dev; d++)
				if (current_pool[d] == p)
					current_pool[d] = NULL;
			pthread_mutex_unlock(&lock);
			/* Live allocations keep their bytes accounted; the fake leaks the record. */
			return CUDA_SUCCESS;
		}
	}
	pthread_mutex_unlock(&lock);
	return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
	struct fake_pool *p = (struct fake_pool *)pool;
	CUresult rc = CUDA_SUCCESS;

	if (enter("cuMemPoolSetAttribute"))
		return entered;
	pthread_mutex_lock(&lock);
	switch (attr) {
	case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
		p->threshold = *(cuuint64_t *)value;
		break;
	case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
		p->reserved_high = p->reserved; /* only 0 may be written: resets the mark */
		break;
	case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
		p->used_high = p->used;
		break;
	case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
	case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
	case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
		break;
	default:
		rc = CUDA_ERROR_INVALID_VALUE;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
	struct fake_pool *p = (struct fake_pool *)pool;
	CUresult rc = CUDA_SUCCESS;

	if (enter("cuMemPoolGetAttribute"))
		return entered;
	pthread_mutex_lock(&lock);
	switch (attr) {
	case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
		*(cuuint64_t *)value = p->threshold;
		break;
	case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
		*(cuuint64_t *)value = p->reserved;
		break;
	case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
		*(cuuint64_t *)value = p->reserved_high;
		break;
	case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
		*(cuuint64_t *)value = p->used;
		break;
	case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
		*(cuuint64_t *)value = p->used_high;
		break;
	case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
	case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
	case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
		*(int *)value = 1;
		break;
	default:
		rc = CUDA_ERROR_INVALID_VALUE;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t keep)
{
	if (enter("cuMemPoolTrimTo"))
		return entered;
	pthread_mutex_lock(&lock);
	pool_trim((struct fake_pool *)pool, keep);
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

/* ---- graphs: allocation and free nodes, replayed at each launch ---- */

static void graph_add(struct fake_graph *g, int is_free, uintptr_t base, size_t size, int dev)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 8;
		g->ops = realloc(g->ops, g->cap * sizeof(*g->ops));
	}
	g->ops[g->n++] = (struct graph_op){ is_free, base, size, dev };
}

static void graph_free(struct fake_graph *g)
{
	if (g) {
		free(g->ops);
		free(g);
	}
}

/*
 * An address for graph memory: reserved at node creation (capture or cuGraphAddMemAllocNode),
 * backed and accounted from the device's graph pool only while a launch has it allocated.
 */
static CUresult graph_address(struct fake_graph *g, size_t size, int dev, CUdeviceptr *out)
{
	void *p;

	if (!size)
		return CUDA_ERROR_INVALID_VALUE;
	if (posix_memalign(&p, 512, size))
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_lock(&lock);
	graph_pool[dev].graph = 1;
	graph_pool[dev].dev = dev;
	add_region((struct region){ .base = (uintptr_t)p,
				    .size = size,
				    .kind = K_POOL,
				    .dev = dev,
				    .ctx = current(),
				    .pool = &graph_pool[dev] });
	graph_add(g, 0, (uintptr_t)p, size, dev);
	pthread_mutex_unlock(&lock);
	*out = (CUdeviceptr)p;
	return CUDA_SUCCESS;
}

CUresult cuGraphCreate(CUgraph *g, unsigned int flags)
{
	if (enter("cuGraphCreate"))
		return entered;
	*g = (CUgraph)calloc(1, sizeof(struct fake_graph));
	return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph g)
{
	if (enter("cuGraphDestroy"))
		return entered;
	graph_free((struct fake_graph *)g);
	return CUDA_SUCCESS;
}

CUresult cuGraphGetNodes(CUgraph g, CUgraphNode *nodes, size_t *n)
{
	if (enter("cuGraphGetNodes"))
		return entered;
	*n = ((struct fake_graph *)g)->n;
	return CUDA_SUCCESS;
}

CUresult cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph graph, const CUgraphNode *deps,
				size_t ndeps, CUDA_MEM_ALLOC_NODE_PARAMS *np)
{
	if (enter("cuGraphAddMemAllocNode"))
		return entered;
	/* Host memory and shareable handles: NOT_SUPPORTED on the H100 (driver_facts). */
	if (np->poolProps.handleTypes != CU_MEM_HANDLE_TYPE_NONE ||
	    np->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE)
		return CUDA_ERROR_NOT_SUPPORTED;
	if (np->poolProps.location.id < 0 || np->poolProps.location.id >= n_dev)
		return CUDA_ERROR_INVALID_VALUE;
	*node = (CUgraphNode)(uintptr_t)(((struct fake_graph *)graph)->n + 1);
	return graph_address((struct fake_graph *)graph, np->bytesize, np->poolProps.location.id,
			     &np->dptr);
}

CUresult cuGraphAddMemFreeNode(CUgraphNode *node, CUgraph graph, const CUgraphNode *deps,
			       size_t ndeps, CUdeviceptr dptr)
{
	struct fake_graph *g = (struct fake_graph *)graph;

	if (enter("cuGraphAddMemFreeNode"))
		return entered;
	*node = (CUgraphNode)(uintptr_t)(g->n + 1);
	pthread_mutex_lock(&lock);
	graph_add(g, 1, dptr, 0, -1);
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph graph, unsigned long long flags)
{
	struct fake_graph *g = (struct fake_graph *)graph, *copy = calloc(1, sizeof(*copy));

	if (enter("cuGraphInstantiateWithFlags"))
		return entered;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < g->n; i++)
		graph_add(copy, g->ops[i].is_free, g->ops[i].base, g->ops[i].size, g->ops[i].dev);
	pthread_mutex_unlock(&lock);
	*exec = (CUgraphExec)copy;
	return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec exec)
{
	if (enter("cuGraphExecDestroy"))
		return entered;
	graph_free((struct fake_graph *)exec);
	return CUDA_SUCCESS;
}

/* Called with lock held: graph memory at @base is allocated (@on) or freed by a launch or free. */
static CUresult graph_memory(struct region *r, int on)
{
	struct fake_pool *p = r->pool;
	CUresult rc;

	if (on == r->live)
		return on ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
	if (on) {
		rc = pool_take(p, r->size);
		if (rc)
			return rc;
	} else {
		p->used -= r->size;
	}
	r->live = on;
	return CUDA_SUCCESS;
}

static CUresult graph_launch(CUgraphExec exec, CUstream s)
{
	struct fake_graph *g = (struct fake_graph *)exec;
	struct fake_stream *fs = stream_of(s);
	CUresult rc = CUDA_SUCCESS;

	pthread_mutex_lock(&lock);
	if (capturing(fs)) {
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	}
	for (size_t i = 0; i < g->n && rc == CUDA_SUCCESS; i++) {
		struct region *r = find_region(g->ops[i].base, 1);

		if (r && r->kind == K_POOL)
			rc = graph_memory(r, !g->ops[i].is_free);
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

CUresult cuGraphLaunch(CUgraphExec exec, CUstream s)
{
	if (enter("cuGraphLaunch"))
		return entered;
	return graph_launch(exec, s);
}

CUresult cuGraphLaunch_ptsz(CUgraphExec exec, CUstream s)
{
	if (enter("cuGraphLaunch_ptsz"))
		return entered;
	return graph_launch(exec, s);
}

CUresult cuDeviceGetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void *value)
{
	struct fake_pool *p;
	cuuint64_t v;

	if (enter("cuDeviceGetGraphMemAttribute"))
		return entered;
	if (dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	p = &graph_pool[dev];
	pthread_mutex_lock(&lock);
	switch (attr) {
	case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT:
		v = p->used;
		break;
	case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH:
		v = p->used_high;
		break;
	case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT:
		v = p->reserved;
		break;
	case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH:
		v = p->reserved_high;
		break;
	default:
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_INVALID_VALUE;
	}
	pthread_mutex_unlock(&lock);
	*(cuuint64_t *)value = v;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGraphMemTrim(CUdevice dev)
{
	if (enter("cuDeviceGraphMemTrim"))
		return entered;
	if (dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	pthread_mutex_lock(&lock);
	pool_trim(&graph_pool[dev], 0);
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

/* ---- stream-ordered allocation and free ---- */

static CUresult alloc_async(CUdeviceptr *dptr, size_t size, struct fake_pool *pool, CUstream s)
{
	struct fake_stream *fs = stream_of(s);
	struct fake_ctx *c = fs && fs->ctx ? fs->ctx : current();
	CUresult rc;
	void *p;

	if (!c || !c->alive)
		return CUDA_ERROR_INVALID_CONTEXT;
	if (!size)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	if (capturing(fs)) {
		/* An allocation node of the graph being captured. */
		struct fake_graph *g = fs->cap_graph;
		int invalid = fs->cap_status == CU_STREAM_CAPTURE_STATUS_INVALIDATED;

		pthread_mutex_unlock(&lock);
		if (invalid)
			return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
		return graph_address(g, size, c->dev, dptr);
	}
	pthread_mutex_unlock(&lock);
	/* On a stream that does not capture, while one does: an unsafe call (driver_facts). */
	rc = unsafe_call();
	if (rc)
		return rc;
	pthread_mutex_lock(&lock);
	if (!pool)
		pool = pool_of_dev(c->dev);
	rc = pool_take(pool, size);
	pthread_mutex_unlock(&lock);
	if (rc)
		return rc;
	if (posix_memalign(&p, 512, size)) {
		pthread_mutex_lock(&lock);
		pool->used -= size;
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	pthread_mutex_lock(&lock);
	add_region((struct region){ .base = (uintptr_t)p,
				    .size = size,
				    .kind = K_POOL,
				    .dev = pool->dev,
				    .ctx = c,
				    .pool = pool,
				    .live = 1 });
	pthread_mutex_unlock(&lock);
	*dptr = (CUdeviceptr)p;
	return CUDA_SUCCESS;
}

CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t size, CUstream s)
{
	if (enter("cuMemAllocAsync"))
		return entered;
	return alloc_async(dptr, size, NULL, s);
}

CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t size, CUstream s)
{
	if (enter("cuMemAllocAsync_ptsz"))
		return entered;
	return alloc_async(dptr, size, NULL, s);
}

CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t size, CUmemoryPool pool, CUstream s)
{
	if (enter("cuMemAllocFromPoolAsync"))
		return entered;
	if (!pool)
		return CUDA_ERROR_INVALID_VALUE;
	return alloc_async(dptr, size, (struct fake_pool *)pool, s);
}

/* Called with lock held: return a pool allocation (graph memory stays reserved for its graph). */
static void pool_free_region(struct region *r)
{
	if (r->pool->graph) {
		graph_memory(r, 0);
		return;
	}
	r->pool->used -= r->size;
	free((void *)r->base);
	del_region(r);
}

static CUresult free_async(CUdeviceptr p, CUstream s)
{
	struct fake_stream *fs = stream_of(s);
	struct region *r;

	pthread_mutex_lock(&lock);
	r = find_region(p, 1);
	if (r && r->kind == K_POOL) {
		if (capturing(fs) && !r->pool->graph) {
			/* Made before the capture: the driver refuses it and the capture goes on. */
			pthread_mutex_unlock(&lock);
			return CUDA_ERROR_INVALID_VALUE;
		}
		if (capturing(fs)) {
			/* A free node of the graph being captured. */
			graph_add(fs->cap_graph, 1, p, 0, -1);
			pthread_mutex_unlock(&lock);
			return CUDA_SUCCESS;
		}
		pool_free_region(r);
		pthread_mutex_unlock(&lock);
		return CUDA_SUCCESS;
	}
	pthread_mutex_unlock(&lock);
	return device_free(p);
}

CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s)
{
	if (enter("cuMemFreeAsync"))
		return entered;
	return free_async(p, s);
}

CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s)
{
	if (enter("cuMemFreeAsync_ptsz"))
		return entered;
	return free_async(p, s);
}

/* ---- IPC and export: only device memory, only the handle types asked for ---- */

CUresult cuIpcGetMemHandle(CUipcMemHandle *h, CUdeviceptr p)
{
	struct region *r;
	CUresult rc = CUDA_SUCCESS;

	if (enter("cuIpcGetMemHandle"))
		return entered;
	pthread_mutex_lock(&lock);
	r = find_region(p, 0);
	/* cuMemAlloc'd memory only: not host, pool, graph or VMM memory. */
	if (!r || r->kind != K_DEVICE)
		rc = CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_unlock(&lock);
	if (rc == CUDA_SUCCESS) {
		memset(h, 0, sizeof(*h));
		memcpy(h->reserved, &p, sizeof(p));
	}
	return rc;
}

CUresult cuMemExportToShareableHandle(void *out, CUmemGenericAllocationHandle handle,
				      CUmemAllocationHandleType type, unsigned long long flags)
{
	struct handle *h = (struct handle *)(uintptr_t)handle;

	if (enter("cuMemExportToShareableHandle"))
		return entered;
	if (!(h->prop.requestedHandleTypes & type))
		return CUDA_ERROR_INVALID_VALUE;
	if (type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
		return CUDA_ERROR_NOT_SUPPORTED;
	*(int *)out = dup(h->fd);
	return *(int *)out < 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

/* A dma-buf of device memory (as a memfd here); host memory has none. */
CUresult cuMemGetHandleForAddressRange(void *out, CUdeviceptr p, size_t size,
				       CUmemRangeHandleType type, unsigned long long flags)
{
	struct region *r;
	int device = 0;

	if (enter("cuMemGetHandleForAddressRange"))
		return entered;
	if (type != CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	r = find_region(p, 0);
	if (r && p + size <= r->base + r->size)
		device = !is_host(r);
	pthread_mutex_unlock(&lock);
	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	*(int *)out = memfd_create("fake-dmabuf", MFD_CLOEXEC);
	return CUDA_SUCCESS;
}

CUresult cuMemPoolExportPointer(CUmemPoolPtrExportData *out, CUdeviceptr p)
{
	struct region *r;
	CUresult rc = CUDA_ERROR_INVALID_VALUE;

	if (enter("cuMemPoolExportPointer"))
		return entered;
	pthread_mutex_lock(&lock);
	r = find_region(p, 1);
	if (r && r->kind == K_POOL && !r->pool->graph && r->pool->props.handleTypes) {
		memset(out, 0, sizeof(*out));
		memcpy(out->reserved, &p, sizeof(p));
		rc = CUDA_SUCCESS;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

CUresult cuMemPoolExportToShareableHandle(void *out, CUmemoryPool pool,
					  CUmemAllocationHandleType type, unsigned long long flags)
{
	struct fake_pool *p = (struct fake_pool *)pool;

	if (enter("cuMemPoolExportToShareableHandle"))
		return entered;
	if (!(p->props.handleTypes & type))
		return CUDA_ERROR_INVALID_VALUE;
	*(int *)out = memfd_create("fake-pool", MFD_CLOEXEC);
	return CUDA_SUCCESS;
}

/* cuMemCreate's handle types: FABRIC needs a fabric this machine does not have. */
static CUresult create_handle_types(const CUmemAllocationProp *prop)
{
	if (prop->requestedHandleTypes & CU_MEM_HANDLE_TYPE_FABRIC)
		return CUDA_ERROR_NOT_PERMITTED;
	return CUDA_SUCCESS;
}

/* Pointer attributes beyond the basic ones (cuPointerGetAttribute's default case). */
static CUresult more_attributes(const struct region *r, CUpointer_attribute attr, void *data)
{
	switch (attr) {
	case CU_POINTER_ATTRIBUTE_BUFFER_ID:
		*(unsigned long long *)data = r->base; /* unique while the allocation lives */
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
		*(int *)data = r->kind == K_DEVICE;
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
		*(CUmemoryPool *)data = r->kind == K_POOL ? (CUmemoryPool)r->pool : NULL;
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
		*(unsigned long long *)data = r->kind == K_MAP	  ? r->h->prop.requestedHandleTypes
					      : r->kind == K_POOL ? r->pool->props.handleTypes
								  : 0;
		return CUDA_SUCCESS;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
}

/* ---- contexts' synchronisation, per context (the shim must wait on the owner's) ---- */

static struct {
	struct fake_ctx *ctx;
	long n;
} ctx_syncs[64];

static CUresult ctx_sync(void)
{
	struct fake_ctx *c = current();
	CUresult rc = context_wait_call(c);

	if (rc)
		return rc;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < 64; i++) {
		if (!ctx_syncs[i].ctx)
			ctx_syncs[i].ctx = c;
		if (ctx_syncs[i].ctx == c) {
			ctx_syncs[i].n++;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	pools_release_over_threshold();
	return CUDA_SUCCESS;
}

long fake_ctx_syncs(CUcontext ctx)
{
	long n = 0;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < 64 && ctx_syncs[i].ctx; i++)
		if (ctx_syncs[i].ctx == (struct fake_ctx *)ctx)
			n = ctx_syncs[i].n;
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- errors ---- */

CUresult cuGetErrorName(CUresult error, const char **name)
{
	static const struct {
		CUresult rc;
		const char *name;
	} names[] = {
		{ CUDA_SUCCESS, "CUDA_SUCCESS" },
		{ CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE" },
		{ CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY" },
		{ CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED" },
		{ CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT" },
		{ CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED" },
		{ CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED" },
		{ CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED" },
		{ CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED" },
		{ CUDA_ERROR_CAPTURED_EVENT, "CUDA_ERROR_CAPTURED_EVENT" },
		{ CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD,
		  "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD" },
		{ CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].rc == error) {
			*name = names[i].name;
			return CUDA_SUCCESS;
		}
	}
	*name = NULL;
	return CUDA_ERROR_INVALID_VALUE;
}

/* ---- the rest that test/gpu/driver_facts.c calls ---- */

/* Device attributes as the H100 answered them (driver_facts "device.*"). */
CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute attr, CUdevice dev)
{
	if (enter("cuDeviceGetAttribute"))
		return entered;
	if (dev < 0 || dev >= n_dev)
		return CUDA_ERROR_INVALID_DEVICE;
	switch (attr) {
	case CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID:
		/* The H100's 0; a test sets another node (split placement, at the end of this file). */
		*v = getenv("FAKE_CUDA_HOST_NUMA_ID") ? atoi(getenv("FAKE_CUDA_HOST_NUMA_ID")) : 0;
		break;
	case CU_DEVICE_ATTRIBUTE_HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
	case CU_DEVICE_ATTRIBUTE_HOST_NUMA_MEMORY_POOLS_SUPPORTED:
	case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED:
	case CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED:
	case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED:
	case CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM:
	case CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED:
		*v = 1;
		break;
	case CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES:
		*v = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
		break;
	case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_FABRIC_SUPPORTED:
		*v = 0;
		break;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
	return CUDA_SUCCESS;
}

/* Pinned host memory, mapped: to the shim and the attributes it is registered memory. */
CUresult cuMemHostAlloc(void **pp, size_t size, unsigned int flags)
{
	void *p;

	if (enter("cuMemHostAlloc"))
		return entered;
	if (!current())
		return CUDA_ERROR_INVALID_CONTEXT;
	if (posix_memalign(&p, 4096, size))
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_lock(&lock);
	add_region((struct region){ .base = (uintptr_t)p,
				    .size = size,
				    .kind = K_REGISTERED,
				    .dev = current()->dev,
				    .ctx = current() });
	pthread_mutex_unlock(&lock);
	*pp = p;
	return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void *p)
{
	struct region *r;

	if (enter("cuMemFreeHost"))
		return entered;
	pthread_mutex_lock(&lock);
	r = find_region((uintptr_t)p, 1);
	if (!r || r->kind != K_REGISTERED) {
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_INVALID_VALUE;
	}
	del_region(r);
	pthread_mutex_unlock(&lock);
	free(p);
	return CUDA_SUCCESS;
}

CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n)
{
	struct region *r;

	if (enter("cuMemsetD8_v2"))
		return entered;
	pthread_mutex_lock(&lock);
	r = find_region(p, 0);
	pthread_mutex_unlock(&lock);
	if (!r || p + n > r->base + r->size)
		return CUDA_ERROR_INVALID_VALUE;
	memset((void *)p, v, n);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
	if (enter("cuMemcpyDtoH_v2"))
		return entered;
	memcpy(dst, (void *)src, n);
	return CUDA_SUCCESS;
}
/* ==== end of CUDA semantics ================================================================= */

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
	if (enter("cuGetProcAddress_v2"))
		return entered;
	return get_proc(symbol, pfn, version, flags, status);
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
	if (enter("cuGetProcAddress"))
		return entered;
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
 *   - cuDeviceGetAttribute(HOST_NUMA_ID): the H100 answered 0 (test/gpu/driver_facts); the fake
 *     answers FAKE_CUDA_HOST_NUMA_ID, default 0 (in cuDeviceGetAttribute above).
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
	/* Host memory is allocated and pinned here, as cuMemHostRegister pins: taken to be a
	 * "potentially unsafe" call during capture likewise (documentation, not measured). */
	if (unsafe_call())
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
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
