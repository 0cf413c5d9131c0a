// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: a pool of system RAM reserved away from userland, handed out as
 * dma-bufs whose mappings can be pinned by a GPU driver, and a watchdog that
 * tells userspace about memory pressure before the OOM killer acts.
 *
 * This file: module parameters, the state, and load and unload.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "compat.h"
#include "spillway_internal.h"

unsigned int spillway_pool_mb;
module_param_named(pool_mb, spillway_pool_mb, uint, 0444);
MODULE_PARM_DESC(pool_mb, "Pool reserved at load, MiB (default 0)");

static unsigned int spillway_pool_floor_mb;
module_param_named(pool_floor_mb, spillway_pool_floor_mb, uint, 0444);
MODULE_PARM_DESC(pool_floor_mb,
		 "Pressure never shrinks the pool below this, MiB (default 0)");

unsigned int spillway_user_limit_mb;
module_param_named(user_limit_mb, spillway_user_limit_mb, uint, 0444);
MODULE_PARM_DESC(user_limit_mb,
		 "Live buffer MiB per user; 0 = no limit (default 0)");

unsigned int spillway_watchdog_ms = 250;
module_param_named(watchdog_ms, spillway_watchdog_ms, uint, 0444);
MODULE_PARM_DESC(watchdog_ms, "Watchdog sampling period, 10..60000 ms (default 250)");

static unsigned int spillway_watermark_warn_mb;
module_param_named(watermark_warn_mb, spillway_watermark_warn_mb, uint, 0444);
MODULE_PARM_DESC(watermark_warn_mb,
		 "MemAvailable under this is WARN, MiB; 0 = 10% of MemTotal (default 0)");

static unsigned int spillway_watermark_critical_mb;
module_param_named(watermark_critical_mb, spillway_watermark_critical_mb, uint, 0444);
MODULE_PARM_DESC(watermark_critical_mb,
		 "MemAvailable under this is CRITICAL, MiB; 0 = 5% of MemTotal (default 0)");

unsigned int spillway_swap_warn_mb;
module_param_named(swap_warn_mb, spillway_swap_warn_mb, uint, 0444);
MODULE_PARM_DESC(swap_warn_mb,
		 "Free swap under this is WARN, MiB; 0 = off; set only with swap (default 0)");

unsigned int spillway_swap_critical_mb;
module_param_named(swap_critical_mb, spillway_swap_critical_mb, uint, 0444);
MODULE_PARM_DESC(swap_critical_mb,
		 "Free swap under this is CRITICAL, MiB; 0 = off (default 0)");

unsigned int spillway_swap_rate_warn = 2560;
module_param_named(swap_rate_warn, spillway_swap_rate_warn, uint, 0444);
MODULE_PARM_DESC(swap_rate_warn,
		 "Swap-in + swap-out pages/s above this is WARN; 0 = off (default 2560, 10 MiB/s)");

unsigned int spillway_swap_rate_critical = 25600;
module_param_named(swap_rate_critical, spillway_swap_rate_critical, uint, 0444);
MODULE_PARM_DESC(swap_rate_critical,
		 "Swap-in + swap-out pages/s above this is CRITICAL; 0 = off (default 25600)");

unsigned int spillway_regrow_ms = 30000;
module_param_named(regrow_ms, spillway_regrow_ms, uint, 0444);
MODULE_PARM_DESC(regrow_ms,
		 "Level ok this long: grow the pool back toward its size, ms; 0 = never (default 30000)");

bool spillway_test_ioctls;
module_param_named(test_ioctls, spillway_test_ioctls, bool, 0444);
MODULE_PARM_DESC(test_ioctls, "Enable SPILLWAY_IOC_TEST_PIN, for tests (default 0)");

struct spillway spillway = {
	.misc = {
		.minor = MISC_DYNAMIC_MINOR,
		.name = SPILLWAY_DEVICE_NAME,
		.fops = &spillway_fops,
		.groups = spillway_groups,
		/* The udev rule gives the group; the kernel gives the mode. */
		.mode = 0660,
	},
};

static void spillway_check_abi(void)
{
	BUILD_BUG_ON(sizeof(struct spillway_event) != SPILLWAY_EVENT_SIZE);
	BUILD_BUG_ON(sizeof(struct spillway_version) != SPILLWAY_VERSION_SIZE);
	BUILD_BUG_ON(sizeof(struct spillway_info) != SPILLWAY_INFO_SIZE);
	BUILD_BUG_ON(sizeof(struct spillway_alloc) != SPILLWAY_ALLOC_SIZE);
	BUILD_BUG_ON(sizeof(struct spillway_resize) != SPILLWAY_RESIZE_SIZE);
	BUILD_BUG_ON(sizeof(struct spillway_watermarks) != SPILLWAY_WATERMARKS_SIZE);
	BUILD_BUG_ON(sizeof(struct spillway_buffer_info) != SPILLWAY_BUFFER_INFO_SIZE);
	BUILD_BUG_ON(sizeof(struct spillway_list) != SPILLWAY_LIST_SIZE);
	BUILD_BUG_ON(sizeof(struct spillway_share) != SPILLWAY_SHARE_SIZE);
	BUILD_BUG_ON(sizeof(struct spillway_loan) != SPILLWAY_LOAN_SIZE);
	BUILD_BUG_ON(sizeof(struct spillway_test_pin) != SPILLWAY_TEST_PIN_SIZE);
}

static int __init spillway_init(void)
{
	int ret;

	spillway_check_abi();
	if (spillway_watchdog_ms < 10 || spillway_watchdog_ms > 60000) {
		pr_err("watchdog_ms must be 10..60000\n");
		return -EINVAL;
	}
	spillway_events_init();
	ret = spillway_watchdog_init(spillway_watermark_warn_mb,
				     spillway_watermark_critical_mb);
	if (ret)
		return ret;
	spillway_pool_init((unsigned long)spillway_pool_mb << (20 - PAGE_SHIFT));
	spillway_pool_set_floor((unsigned long)spillway_pool_floor_mb << (20 - PAGE_SHIFT));

	ret = misc_register(&spillway.misc);
	if (ret)
		goto err_pool;
	ret = spillway_watchdog_start();
	if (ret)
		goto err_misc;
	spillway_timing_init();
	return 0;

err_misc:
	misc_deregister(&spillway.misc);
err_pool:
	spillway_pool_exit();
	spillway_watchdog_exit();
	return ret;
}

static void __exit spillway_exit(void)
{
	spillway_timing_exit();
	spillway_watchdog_stop();
	misc_deregister(&spillway.misc);
	spillway_pool_exit();
	spillway_watchdog_exit();
}

module_init(spillway_init);
module_exit(spillway_exit);

MODULE_DESCRIPTION("Reserved RAM pool exported as dma-bufs, with a memory-pressure watchdog");
MODULE_LICENSE("GPL");
SPILLWAY_IMPORT_NS_DMA_BUF;
