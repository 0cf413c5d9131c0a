// SPDX-License-Identifier: GPL-2.0
/*
 * A load that asks for more than the machine has (pool_mb=4096 in a 1 GiB
 * VM): it succeeds, sysfs and INFO say how much it got, growing stopped at
 * the warn mark, and the watchdog's first sample gives nothing back.
 *
 * The checks wait for that first sample.  It runs asynchronously after the
 * load, and read straight after insmod the level and released_bytes would
 * describe no sample at all.  INFO's mem_available is set by the sample,
 * under the watchdog lock that the critical release also holds, so once it
 * is non-zero the first sample, and any release it decided, is complete.
 * Needs the module loaded with pool_mb=4096 and nothing else.
 */
#include "kmod.h"

#define ASKED (4096 * MiB)

int main(void)
{
	long long sys_req = sysfs_num("requested_bytes");
	long long sys_pool = sysfs_num("pool_bytes");
	int dev = open_dev(), i, sampled = 0;
	struct spillway_info info;
	char level[32] = "?";

	ok(sys_req == (long long)ASKED && sys_pool > 0 && sys_pool < sys_req,
	   "load with too little memory succeeds and says so in sysfs (asked %lld MiB, got %lld MiB)",
	   sys_req / (long long)MiB, sys_pool / (long long)MiB);

	for (i = 0; i < 500 && !sampled; i++) {
		if (get_info(dev, &info))
			break;
		sampled = info.mem_available != 0;
		if (!sampled)
			usleep(10000);
	}
	if (!ok(sampled, "the watchdog sampled within 5 s of the load"))
		return tap_exit();
	sysfs_str("level", level, sizeof(level));
	diag("first sample: MemAvailable %llu MiB, marks warn %llu MiB critical %llu MiB",
	     (unsigned long long)(info.mem_available / MiB),
	     (unsigned long long)(info.watermark_warn / MiB),
	     (unsigned long long)(info.watermark_critical / MiB));
	ok(info.requested_bytes == ASKED && info.pool_bytes == (uint64_t)sys_pool,
	   "INFO agrees after the sample: requested 4096 MiB, pool %llu MiB",
	   (unsigned long long)(info.pool_bytes / MiB));
	ok(info.level != SPILLWAY_LEVEL_CRITICAL && strcmp(level, "critical") &&
		   info.released_bytes == 0 && sysfs_num("released_bytes") == 0,
	   "growing stopped at the warn mark: level not critical, nothing released (level %s)",
	   level);
	/* Growing stops once MemAvailable would fall under the warn mark. */
	ok(info.mem_available >= info.watermark_critical &&
		   info.mem_available < info.watermark_warn + 32 * MiB,
	   "MemAvailable at the sample is above the critical mark, near the warn mark (%llu MiB)",
	   (unsigned long long)(info.mem_available / MiB));
	close(dev);
	return tap_exit();
}
