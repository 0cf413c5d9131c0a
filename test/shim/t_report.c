/*
 * Physical reporting on two devices, NVML's device numbering, per-device accounts and the
 * primary context's reset.  Card: 256 MiB each; budget 64 MiB; NVML index i is CUDA device
 * 1 - i in the fake (the orders differ, as they may on real machines).
 */
#include "shim_test.h"

#include "../../shim/src/core/nvml_types.h"
#include <cuda.h>

typedef nvmlReturn_t (*mem_v1_t)(nvmlDevice_t, nvmlMemory_t *);
typedef nvmlReturn_t (*mem_v2_t)(nvmlDevice_t, nvmlMemory_v2_t *);
typedef nvmlReturn_t (*handle_t)(unsigned int, nvmlDevice_t *);

static CUcontext c0, c1;
static CUdeviceptr a, b;

TEST(budget_reported_per_device)
{
	size_t f = 0, t = 0, total = 0;
	CUresult rc;

	ok(cuCtxCreate_v4(&c1, NULL, 0, 1) == CUDA_SUCCESS, "a context on device 1");
	ok(cuMemAlloc_v2(&b, 16 * MiB) == CUDA_SUCCESS &&
		   stat_of("\"device\":1", "vram_bytes") == (long long)(16 * MiB) &&
		   !strstr(shim_stats(), "\"device\":0"),
	   "its allocation is accounted on device 1, not 0");
	rc = cuMemGetInfo_v2(&f, &t);
	ok(rc == CUDA_SUCCESS && t == 64 * MiB && f == 48 * MiB,
	   "device 1: total is the budget, free the budget less its use (%zu/%zu MiB)", f >> 20,
	   t >> 20);
	ok(cuCtxCreate_v4(&c0, NULL, 0, 0) == CUDA_SUCCESS, "a context on device 0");
	ok(cuMemAlloc_v2(&a, 100 * MiB) == CUDA_SUCCESS, "100 MiB on device 0, past its budget");
	rc = cuMemGetInfo_v2(&f, &t);
	ok(rc == CUDA_SUCCESS && f == 0 && t == 64 * MiB,
	   "device 0: free is 0, not negative; total the budget (%zu/%zu MiB)", f >> 20, t >> 20);
	ok(cuDeviceTotalMem_v2(&total, 1) == CUDA_SUCCESS && total == 64 * MiB,
	   "cuDeviceTotalMem reports the budget");
}

TEST(nvml_numbers_devices_by_pci_bus)
{
	nvmlMemory_v2_t m2 = { .version = 2 };
	void *nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
	mem_v1_t mem1;
	mem_v2_t mem2;
	handle_t by_index;
	nvmlDevice_t n0, n1;
	nvmlMemory_t m;
	CUresult rc;

	if (!ok(nvml != NULL, "the fake libnvidia-ml.so.1 loads"))
		return;
	mem1 = (mem_v1_t)dlsym(nvml, "nvmlDeviceGetMemoryInfo");
	mem2 = (mem_v2_t)dlsym(nvml, "nvmlDeviceGetMemoryInfo_v2");
	by_index = (handle_t)dlsym(nvml, "nvmlDeviceGetHandleByIndex_v2");
	by_index(0, &n0);
	by_index(1, &n1);
	rc = mem1(n1, &m) == NVML_SUCCESS ? CUDA_SUCCESS : CUDA_ERROR_UNKNOWN;
	ok(rc == CUDA_SUCCESS && m.total == 64 * MiB && m.free == 0 && m.used == 64 * MiB,
	   "NVML index 1 is CUDA device 0: full (%llu/%llu MiB)", m.free >> 20, m.total >> 20);
	ok(mem1(n0, &m) == NVML_SUCCESS && m.total == 64 * MiB && m.free == 48 * MiB &&
		   m.used + m.free == m.total,
	   "NVML index 0 is CUDA device 1: 48 of 64 MiB free");
	ok(mem2(n0, &m2) == NVML_SUCCESS && m2.total == 64 * MiB && m2.free == 48 * MiB &&
		   m2.used + m2.reserved + m2.free == m2.total,
	   "the _v2 form keeps used + reserved + free = total");
}

TEST(primary_context_reset_drops_its_records)
{
	CUcontext primary;
	CUdeviceptr p;

	ok(cuDevicePrimaryCtxRetain(&primary, 1) == CUDA_SUCCESS &&
		   cuCtxSetCurrent(primary) == CUDA_SUCCESS &&
		   cuMemAlloc_v2(&p, 8 * MiB) == CUDA_SUCCESS &&
		   stat_of("\"device\":1", "vram_bytes") == (long long)(24 * MiB),
	   "8 MiB in device 1's primary context");
	ok(cuDevicePrimaryCtxReset_v2(1) == CUDA_SUCCESS &&
		   stat_of("\"device\":1", "vram_bytes") == (long long)(16 * MiB),
	   "cuDevicePrimaryCtxReset drops it from the account");
	cuCtxSetCurrent(c0);
	ok(cuMemFree_v2(a) == CUDA_SUCCESS && stat_of("\"device\":0", "vram_bytes") == 0,
	   "device 0's account empties on free");
}

int main(void)
{
	setenv("SPILLWAY_VRAM_LIMIT", "64M", 1);
	setenv("SPILLWAY_MIN_SPILL", "1G", 1); /* nothing spills: budgets can be overrun */
	setenv("SPILLWAY_REPORT", "physical", 1);
	setenv("SPILLWAY_BACKEND", "host", 1);
	setenv("SPILLWAY_HEADROOM", "16M",
	       1); /* the card's 256 MiB less this stays above the budget */
	setenv("FAKE_CUDA_VRAM", "256M", 1);
	setenv("FAKE_CUDA_DEVICES", "2", 1);
	cuInit(0);
	return tap_run();
}
