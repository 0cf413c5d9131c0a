/* SPDX-License-Identifier: GPL-2.0 */
/*
 * spillway: differences between the kernels the module builds against.
 *
 * Each SPILLWAY_HAVE_* / SPILLWAY_* switch comes from a compile probe in
 * Kbuild, not from a version number: distributions backport these changes.
 */
#ifndef _SPILLWAY_COMPAT_H
#define _SPILLWAY_COMPAT_H

#include <linux/mm.h>
#include <linux/module.h>

/* 6.3 made vma->vm_flags const and added vm_flags_set(). */
static inline void spillway_vm_flags_set(struct vm_area_struct *vma,
					 vm_flags_t flags)
{
#ifdef SPILLWAY_HAVE_VM_FLAGS_SET
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

/*
 * 6.13 made MODULE_IMPORT_NS() take a string; the bare form no longer
 * compiles there, and the string form breaks modpost before.
 */
#ifdef SPILLWAY_IMPORT_NS_BARE
#define SPILLWAY_IMPORT_NS_DMA_BUF	MODULE_IMPORT_NS(DMA_BUF)
#else
#define SPILLWAY_IMPORT_NS_DMA_BUF	MODULE_IMPORT_NS("DMA_BUF")
#endif

#endif /* _SPILLWAY_COMPAT_H */
