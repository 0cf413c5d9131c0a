/* Device facts the placement needs, asked of the driver once per process. */
#include "core.h"

static _Atomic int node_of[MAX_DEVICES]; /* node + 1; 0: not asked yet */

int host_numa_node(int dev)
{
	real_cuDeviceGetAttribute_t get = REAL(cuDeviceGetAttribute);
	int node = -1, cached;

	if (dev < 0 || dev >= MAX_DEVICES)
		return 0;
	cached = atomic_load(&node_of[dev]);
	if (cached)
		return cached - 1;
	/* -1 from the driver: no NUMA; node 0 is what the measured host-NUMA runs used. */
	if (!get || get(&node, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, dev) != CUDA_SUCCESS || node < 0)
		node = 0;
	atomic_store(&node_of[dev], node + 1);
	return node;
}

int device_count(void)
{
	static _Atomic int count;
	real_cuDeviceGetCount_t get = REAL(cuDeviceGetCount);
	int n = atomic_load(&count);

	if (n > 0)
		return n;
	if (!get || get(&n) != CUDA_SUCCESS || n < 1)
		return 1;
	atomic_store(&count, n);
	return n;
}
