/*
 * A fake libnvidia-ml.so.1: NVML index i is PCI bus i+1, and each device reports
 * FAKE_CUDA_VRAM total with 64 MiB used (16 MiB of it reserved, in the _v2 form).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../shim/src/core/nvml_types.h"

static unsigned long long vram(void)
{
	const char *s = getenv("FAKE_CUDA_VRAM");
	char *end;
	unsigned long long v;

	if (!s)
		return 1ULL << 30;
	v = strtoull(s, &end, 10);
	if (*end == 'M')
		v <<= 20;
	else if (*end == 'G')
		v <<= 30;
	return v;
}

nvmlReturn_t nvmlInit_v2(void)
{
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
	*device = (nvmlDevice_t)(uintptr_t)(index + 1);
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *m)
{
	m->total = vram();
	m->used = 64ULL << 20;
	m->free = m->total - m->used;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *m)
{
	m->total = vram();
	m->reserved = 16ULL << 20;
	m->used = 48ULL << 20;
	m->free = m->total - m->used - m->reserved;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
	unsigned int bus = (unsigned int)(uintptr_t)device;

	memset(pci, 0, sizeof(*pci));
	pci->bus = bus;
	snprintf(pci->busId, sizeof(pci->busId), "00000000:%02X:00.0", bus);
	return NVML_SUCCESS;
}
