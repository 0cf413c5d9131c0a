// SPDX-License-Identifier: GPL-2.0
/* Compile probe: does MODULE_IMPORT_NS() take a bare name (before 6.13)? */
#include <linux/module.h>

MODULE_IMPORT_NS(DMA_BUF);
