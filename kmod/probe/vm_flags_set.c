// SPDX-License-Identifier: GPL-2.0
/* Compile probe: does this kernel have vm_flags_set() (6.3+)? */
#include <linux/mm.h>

void spillway_probe(struct vm_area_struct *vma);

void spillway_probe(struct vm_area_struct *vma)
{
	vm_flags_set(vma, VM_DONTDUMP);
}
