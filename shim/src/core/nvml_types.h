/*
 * The few NVML types the shim needs.  The CUDA 13 toolkit on the build machine has no nvml.h;
 * these layouts are NVML's public ABI (nvml.h, unchanged since the _v2/_v3 entry points).
 */
#ifndef SPILLWAY_NVML_TYPES_H
#define SPILLWAY_NVML_TYPES_H

typedef int nvmlReturn_t;
#define NVML_SUCCESS		      0
#define NVML_ERROR_INVALID_ARGUMENT   2
#define NVML_ERROR_FUNCTION_NOT_FOUND 13

typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
	unsigned long long total;
	unsigned long long free;
	unsigned long long used;
} nvmlMemory_t;

typedef struct {
	unsigned int version;
	unsigned long long total;
	unsigned long long reserved;
	unsigned long long free;
	unsigned long long used;
} nvmlMemory_v2_t;

typedef struct {
	char busIdLegacy[16];
	unsigned int domain;
	unsigned int bus;
	unsigned int device;
	unsigned int pciDeviceId;
	unsigned int pciSubSystemId;
	char busId[32];
} nvmlPciInfo_t;

#endif
