// Shared by the GPU test programs: error checks and the shim's statistics.
#pragma once
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#define CHECK(call)                                                                   \
	do {                                                                          \
		cudaError_t err_ = (call);                                            \
		if (err_ != cudaSuccess) {                                            \
			std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, \
				     cudaGetErrorString(err_));                         \
			std::exit(2);                                                 \
		}                                                                     \
	} while (0)

// The shim's JSON statistics, or "{}" when it is not loaded.
static inline std::string shim_stats()
{
	typedef int (*stats_fn)(char *, size_t);
	stats_fn fn = (stats_fn)dlsym(RTLD_DEFAULT, "spillway_stats_json");
	static char buf[8192];

	if (!fn)
		return "{}";
	fn(buf, sizeof(buf));
	return buf;
}

static inline long long stat_of(const std::string &json, const char *key, const char *after = nullptr)
{
	size_t from = 0;
	if (after) {
		from = json.find(after);
		if (from == std::string::npos)
			return -1;
	}
	std::string pat = std::string("\"") + key + "\":";
	size_t p = json.find(pat, from);
	return p == std::string::npos ? -1 : std::atoll(json.c_str() + p + pat.size());
}
