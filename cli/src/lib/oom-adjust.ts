// The OOM killer's judgement of processes that map pool buffers (issue 14 B), as pure logic.
//
// vm_insert_pages() counts every mapped pool page in the process's RSS (RssFile), and the kernel's
// oom_badness() is RSS + swap + page tables + oom_score_adj * (totalpages / 1000). A holder of a big
// buffer therefore looks like the biggest process although killing it frees nothing: its pool pages
// go back to the pool, not to the kernel. The watch daemon lowers each holder's oom_score_adj by
// exactly what cancels its mapped pool pages, and puts the value back when the mapping goes.
//
// totalpages depends on the OOM's context: RAM + swap for a global OOM, the memory cgroup's limit
// (+ swap) for a cgroup OOM. One adj can cancel exactly in one context only; we cancel in the
// tightest context the process is in (its smallest cgroup limit, else the machine), because that is
// the OOM it meets first. In a looser context the holder is then judged smaller than it is (see
// docs/reliability.md). A mapping bigger than the context's size needs more than -999 and gets -1000:
// the kernel then never kills that process.

/** OOM_SCORE_ADJ_MIN and _MAX in the kernel. */
export const OOM_ADJ_MIN = -1000
export const OOM_ADJ_MAX = 1000

/**
 * The oom_score_adj that removes poolPages from the badness of a process whose own adj is base, in
 * an OOM whose totalpages is contextPages. The kernel multiplies adj by the truncated totalpages /
 * 1000, so the cancel is rounded up to whole units of that.
 */
export function cancellingAdj(base: number, poolPages: number, contextPages: number): number {
  if (base <= OOM_ADJ_MIN) return OOM_ADJ_MIN
  if (poolPages <= 0) return base
  const unit = Math.floor(contextPages / 1000)
  if (unit <= 0) return OOM_ADJ_MIN
  const cancel = Math.ceil(poolPages / unit)
  return Math.max(OOM_ADJ_MIN, Math.min(OOM_ADJ_MAX, base - cancel))
}

/** What the daemon saw of one process in a scan of /proc. */
export interface ProcessView {
  pid: number
  ppid: number
  /** Resident pool pages it maps (smaps Rss of its /dmabuf:spillway: mappings); null: maps none. */
  poolPages: number | null
  /** Its oom_score_adj now. */
  adj: number
  /** totalpages of the tightest OOM context it is in (see the file's comment). */
  contextPages: number
}

/** A process whose adj the daemon changed: base is the adj it had of its own. */
export interface Adjusted {
  base: number
  written: number
}

export interface AdjustWrite {
  pid: number
  adj: number
  /** The adj the process has of its own; adj - base cancels poolPages. */
  base: number
  poolPages: number
  why: 'cancel' | 'restore' | 'inherited'
}

/**
 * One scan's decisions. tracked holds the processes adjusted so far; the result says which
 * oom_score_adj files to write and what to track next.
 *
 * - A process that maps the pool gets cancellingAdj(base, ...). Its base is what it had before the
 *   daemon first wrote, unless someone changed its adj since (then the new value is its base). A
 *   child forked from an adjusted holder inherited the lowered adj: its base is the parent's base.
 * - A tracked process that maps nothing any more gets its base back (unless someone changed its adj).
 * - A child of an adjusted holder that maps nothing (fork + exec) and still has the inherited value
 *   gets the parent's base: the cancel belongs to the parent's mapping, not to it.
 */
export function planAdjustments(
  tracked: ReadonlyMap<number, Adjusted>,
  processes: readonly ProcessView[],
): { writes: AdjustWrite[]; tracked: Map<number, Adjusted> } {
  const next = new Map<number, Adjusted>()
  const writes: AdjustWrite[] = []
  for (const p of processes) {
    const own = tracked.get(p.pid)
    const parent = tracked.get(p.ppid)
    const inherited = !own && parent !== undefined && parent.written !== parent.base && p.adj === parent.written
    if (p.poolPages !== null) {
      const base = own && p.adj === own.written ? own.base : inherited ? parent.base : p.adj
      const adj = cancellingAdj(base, p.poolPages, p.contextPages)
      if (adj !== p.adj) writes.push({ pid: p.pid, adj, base, poolPages: p.poolPages, why: 'cancel' })
      next.set(p.pid, { base, written: adj })
    } else if (own) {
      if (p.adj === own.written && p.adj !== own.base) {
        writes.push({ pid: p.pid, adj: own.base, base: own.base, poolPages: 0, why: 'restore' })
      }
    } else if (inherited) {
      writes.push({ pid: p.pid, adj: parent.base, base: parent.base, poolPages: 0, why: 'inherited' })
    }
  }
  return { writes, tracked: next }
}

/** The writes that give every tracked process its own adj back (the daemon stops). */
export function restoreAll(tracked: ReadonlyMap<number, Adjusted>, currentAdj: (pid: number) => number | null): AdjustWrite[] {
  const writes: AdjustWrite[] = []
  for (const [pid, a] of tracked) {
    if (a.written !== a.base && currentAdj(pid) === a.written) {
      writes.push({ pid, adj: a.base, base: a.base, poolPages: 0, why: 'restore' })
    }
  }
  return writes
}

/** The RSS of the pool mappings in one /proc/PID/smaps text, in kB; null when it maps none. */
export function poolRssKb(smaps: string, namePrefix: string): number | null {
  const marker = `/dmabuf:${namePrefix}`
  let inPool = false
  let found = false
  let kb = 0
  for (const line of smaps.split('\n')) {
    // A mapping's header: "start-end perms offset dev inode [path]"
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      const pathStart = line.indexOf('/')
      inPool = pathStart >= 0 && line.slice(pathStart).startsWith(marker)
      found ||= inPool
    } else if (inPool && line.startsWith('Rss:')) {
      kb += Number(/^Rss:\s+(\d+)/.exec(line)?.[1] ?? 0)
    }
  }
  return found ? kb : null
}

/** Whether a /proc/PID/maps text maps a pool buffer (cheap: no page walk, unlike smaps). */
export function mapsPool(maps: string, namePrefix: string): boolean {
  return maps.includes(`/dmabuf:${namePrefix}`)
}

/**
 * totalpages of a memory cgroup's OOM, in pages: memory.max + min(memory.swap.max, swap), or null
 * when memory.max is "max" (no limit there). Values are the files' text.
 */
export function cgroupContextPages(
  memoryMax: string,
  swapMax: string | null,
  swapTotalPages: number,
  pageSize: number,
): number | null {
  const max = memoryMax.trim()
  if (max === 'max' || max === '') return null
  const bytes = Number(max)
  if (!Number.isFinite(bytes)) return null
  const swap =
    swapMax === null || swapMax.trim() === 'max' ? swapTotalPages : Math.min(Number(swapMax.trim()) / pageSize, swapTotalPages)
  return Math.floor(bytes / pageSize) + Math.floor(Number.isFinite(swap) ? swap : 0)
}
