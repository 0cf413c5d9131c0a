// SPDX-License-Identifier: GPL-2.0
/*
 * spillway: buffers of pool pages exported as dma-bufs.
 *
 * The mmap is page-backed (VM_MIXEDMAP with vm_insert_pages()), never
 * VM_PFNMAP or VM_IO, so that pin_user_pages(FOLL_LONGTERM), which
 * cuMemHostRegister uses, can pin it.  The dma-buf's file lives on an
 * anonymous pseudo filesystem without writeback, and no page_mkwrite is set,
 * so the long-term pin check for file mappings that need dirty tracking
 * (writable_file_mapping_allowed(), 6.5+) lets the pin through.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/minmax.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "compat.h"
#include "spillway_internal.h"

/* One importer's DMA mapping, kept so CPU access can sync it. */
struct spillway_mapping {
	struct list_head node;
	struct device *dev;
	struct sg_table *sgt;
	enum dma_data_direction dir;
};

static atomic64_t spillway_next_id = ATOMIC64_INIT(0);

static struct sg_table *spillway_buf_map(struct dma_buf_attachment *at,
					 enum dma_data_direction dir)
{
	struct spillway_buffer *buf = at->dmabuf->priv;
	struct spillway_mapping *map;
	unsigned int max_seg;
	int ret;

	map = kzalloc(sizeof(*map), GFP_KERNEL);
	if (!map)
		return ERR_PTR(-ENOMEM);
	map->sgt = kzalloc(sizeof(*map->sgt), GFP_KERNEL);
	if (!map->sgt) {
		ret = -ENOMEM;
		goto err_map;
	}
	/* No segment may exceed what the importer's DMA engine takes. */
	max_seg = round_down(dma_get_max_seg_size(at->dev), PAGE_SIZE);
	ret = sg_alloc_table_from_pages_segment(map->sgt, buf->pages,
						buf->nr_pages, 0,
						buf->nr_pages << PAGE_SHIFT,
						max(max_seg, (unsigned int)PAGE_SIZE),
						GFP_KERNEL);
	if (ret)
		goto err_sgt;
	ret = dma_map_sgtable(at->dev, map->sgt, dir, 0);
	if (ret)
		goto err_table;
	map->dev = at->dev;
	map->dir = dir;
	mutex_lock(&buf->lock);
	list_add(&map->node, &buf->mappings);
	mutex_unlock(&buf->lock);
	return map->sgt;

err_table:
	sg_free_table(map->sgt);
err_sgt:
	kfree(map->sgt);
err_map:
	kfree(map);
	return ERR_PTR(ret);
}

static void spillway_buf_unmap(struct dma_buf_attachment *at, struct sg_table *sgt,
			       enum dma_data_direction dir)
{
	struct spillway_buffer *buf = at->dmabuf->priv;
	struct spillway_mapping *map, *found = NULL;

	mutex_lock(&buf->lock);
	list_for_each_entry(map, &buf->mappings, node) {
		if (map->sgt == sgt) {
			list_del(&map->node);
			found = map;
			break;
		}
	}
	mutex_unlock(&buf->lock);

	dma_unmap_sgtable(at->dev, sgt, dir, 0);
	sg_free_table(sgt);
	kfree(sgt);
	kfree(found);
}

/*
 * Syncs every importer's mapping for the CPU or for the device, in the
 * direction the caller of DMA_BUF_IOCTL_SYNC asked for (as udmabuf does):
 * a CPU that only reads needs no write-back, and the reverse.
 */
static int spillway_buffer_sync(struct spillway_buffer *buf,
				enum dma_data_direction dir, bool for_cpu)
{
	struct spillway_mapping *map;

	mutex_lock(&buf->lock);
	list_for_each_entry(map, &buf->mappings, node) {
		if (for_cpu)
			dma_sync_sgtable_for_cpu(map->dev, map->sgt, dir);
		else
			dma_sync_sgtable_for_device(map->dev, map->sgt, dir);
	}
	mutex_unlock(&buf->lock);
	return 0;
}

static int spillway_buf_begin_cpu_access(struct dma_buf *dmabuf,
					 enum dma_data_direction dir)
{
	return spillway_buffer_sync(dmabuf->priv, dir, true);
}

static int spillway_buf_end_cpu_access(struct dma_buf *dmabuf,
				       enum dma_data_direction dir)
{
	return spillway_buffer_sync(dmabuf->priv, dir, false);
}

static int spillway_buf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct spillway_buffer *buf = dmabuf->priv;
	void *vaddr;

	vaddr = vmap(buf->pages, buf->nr_pages, VM_MAP, PAGE_KERNEL);
	if (!vaddr)
		return -ENOMEM;
	iosys_map_set_vaddr(map, vaddr);
	return 0;
}

static void spillway_buf_vunmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	vunmap(map->vaddr);
	iosys_map_clear(map);
}

/* Refills a page after MADV_DONTNEED or a partial unmap and remap. */
static vm_fault_t spillway_buf_fault(struct vm_fault *vmf)
{
	struct spillway_buffer *buf = vmf->vma->vm_private_data;

	if (vmf->pgoff >= buf->nr_pages)
		return VM_FAULT_SIGBUS;
	return vmf_insert_page(vmf->vma, vmf->address, buf->pages[vmf->pgoff]);
}

static const struct vm_operations_struct spillway_vm_ops = {
	.fault = spillway_buf_fault,
};

/*
 * Pages inserted between rescheduling points by mmap: a mapping of many GiB
 * is filled under the mmap lock, which must not keep a CPU for long.
 */
#define SPILLWAY_MMAP_BATCH	512UL

static int spillway_buffer_insert(struct spillway_buffer *buf,
				  struct vm_area_struct *vma)
{
	unsigned long done = 0, total = vma_pages(vma), num;
	int ret;

	while (done < total) {
		num = min(total - done, SPILLWAY_MMAP_BATCH);
		ret = vm_insert_pages(vma, vma->vm_start + (done << PAGE_SHIFT),
				      buf->pages + vma->vm_pgoff + done, &num);
		if (ret)
			return ret;
		done += min(total - done, SPILLWAY_MMAP_BATCH);
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	return 0;
}

static int spillway_buf_mmap(struct dma_buf *dmabuf, struct vm_area_struct *vma)
{
	struct spillway_buffer *buf = dmabuf->priv;
	u64 t0;
	int ret;

	/* A private mapping would copy on write: the GPU would not see it. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	/* The dma-buf core checked that the range lies inside the buffer. */
	spillway_vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &spillway_vm_ops;
	vma->vm_private_data = buf;
	t0 = spillway_timing_start();
	ret = spillway_buffer_insert(buf, vma);
	spillway_timing_end(&spillway.timing.mmap_max_ns, t0);
	return ret;
}

static void spillway_buffer_free(struct spillway_buffer *buf)
{
	kvfree(buf->chunks);
	kvfree(buf->pages);
	kfree(buf);
}

/* The last fd, mapping and importer are gone. */
static void spillway_buf_release(struct dma_buf *dmabuf)
{
	struct spillway_buffer *buf = dmabuf->priv;

	WARN_ON(!list_empty(&buf->mappings));
	spillway_pool_put(buf);
	spillway_buffer_free(buf);
}

static const struct dma_buf_ops spillway_dmabuf_ops = {
	.map_dma_buf = spillway_buf_map,
	.unmap_dma_buf = spillway_buf_unmap,
	.release = spillway_buf_release,
	.begin_cpu_access = spillway_buf_begin_cpu_access,
	.end_cpu_access = spillway_buf_end_cpu_access,
	.vmap = spillway_buf_vmap,
	.vunmap = spillway_buf_vunmap,
	.mmap = spillway_buf_mmap,
};

/*
 * The buffer and its page arrays, charged to the caller's memory cgroup
 * (GFP_KERNEL_ACCOUNT): they grow with the buffer, 16 bytes a page.
 */
static struct spillway_buffer *spillway_buffer_alloc(unsigned long nr_pages,
						     uid_t uid,
						     struct spillway_share_node *share)
{
	struct spillway_buffer *buf;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT);
	if (!buf)
		return NULL;
	buf->pages = kvmalloc_array(nr_pages, sizeof(*buf->pages),
				    GFP_KERNEL_ACCOUNT);
	buf->chunks = kvmalloc_array(nr_pages, sizeof(*buf->chunks),
				     GFP_KERNEL_ACCOUNT);
	if (!buf->pages || !buf->chunks) {
		spillway_buffer_free(buf);
		return NULL;
	}
	buf->nr_pages = nr_pages;
	/* Set before the pool lists the buffer: no listing shows id 0. */
	buf->id = atomic64_inc_return(&spillway_next_id);
	buf->pid = task_tgid_nr(current);
	buf->uid = uid;
	buf->share = share;
	mutex_init(&buf->lock);
	INIT_LIST_HEAD(&buf->mappings);
	return buf;
}

/*
 * Takes @size bytes (a page multiple) from the pool, charged to @uid and to
 * the cgroup of @share, and wraps them in a dma-buf.  No fd exists yet: the
 * caller installs one when nothing else can fail.
 */
struct dma_buf *spillway_buffer_export(u64 size, uid_t uid,
				       struct spillway_share_node *share, u64 *id)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp_info);
	struct spillway_buffer *buf;
	struct dma_buf *dmabuf;
	int ret;

	/* A request that must fail allocates nothing. */
	ret = spillway_pool_precheck(uid, share, size >> PAGE_SHIFT);
	if (ret)
		return ERR_PTR(ret);
	buf = spillway_buffer_alloc(size >> PAGE_SHIFT, uid, share);
	if (!buf)
		return ERR_PTR(-ENOMEM);
	ret = spillway_pool_take(buf);
	if (ret)
		goto err_free;

	exp_info.ops = &spillway_dmabuf_ops;
	exp_info.size = size;
	exp_info.flags = O_RDWR;
	exp_info.priv = buf;
	dmabuf = dma_buf_export(&exp_info);
	if (IS_ERR(dmabuf)) {
		ret = PTR_ERR(dmabuf);
		goto err_put;
	}
	/* From here on spillway_buf_release() owns @buf. */
	*id = buf->id;
	return dmabuf;

err_put:
	spillway_pool_put(buf);
err_free:
	spillway_buffer_free(buf);
	return ERR_PTR(ret);
}
