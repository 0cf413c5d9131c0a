// CHECK(call): exit with the file, line, call and CUDA's message on any error.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#define CHECK(call)                                                        \
	do {                                                               \
		cudaError_t err_ = (call);                                 \
		if (err_ != cudaSuccess) {                                 \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__,       \
				__LINE__, #call, cudaGetErrorString(err_)); \
			exit(1);                                           \
		}                                                          \
	} while (0)
