// /proc and cgroupfs for the OOM adjustment of pool holders (lib/oom-adjust.ts has the logic).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { cgroupContextPages, mapsPool, poolRssKb } from '../lib/oom-adjust.js'
import type { ProcessView } from '../lib/oom-adjust.js'
import { DMABUF_NAME_PREFIX } from '../lib/uapi.js'

const CGROUP_ROOT = '/sys/fs/cgroup'

function read(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

/** The machine's sizes that every OOM context needs, in pages. */
export interface MachinePages {
  pageSize: number
  /** totalram + total swap: the global OOM's totalpages. */
  globalPages: number
  swapPages: number
}

export function machinePages(): MachinePages {
  const meminfo = read('/proc/meminfo') ?? ''
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(meminfo)?.[1] ?? 0)
  const pageSize = 4096
  const toPages = (k: number) => Math.floor((k * 1024) / pageSize)
  const swapPages = toPages(kb('SwapTotal'))
  return { pageSize, globalPages: toPages(kb('MemTotal')) + swapPages, swapPages }
}

/** ppid from /proc/PID/stat (the comm in parentheses may hold spaces and parentheses). */
function parentOf(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[1])
}

/**
 * Every process that maps a pool buffer, and every process in `interesting` (adjusted earlier) or
 * whose parent is: what planAdjustments() needs. Reads /proc/PID/maps of every process (no page
 * walk) and smaps only of the mappers.
 */
export function scanProcesses(interesting: ReadonlySet<number>, machine: MachinePages): ProcessView[] {
  const views: ProcessView[] = []
  const contexts = new Map<string, number>()
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    if (pid === process.pid) continue
    const stat = read(`/proc/${pid}/stat`)
    const maps = read(`/proc/${pid}/maps`)
    if (stat === null || maps === null) continue
    const ppid = parentOf(stat)
    const mapping = mapsPool(maps, DMABUF_NAME_PREFIX)
    if (!mapping && !interesting.has(pid) && !interesting.has(ppid)) continue
    const smaps = mapping ? read(`/proc/${pid}/smaps`) : null
    const kb = smaps === null ? null : poolRssKb(smaps, DMABUF_NAME_PREFIX)
    const adj = readAdj(pid)
    if (adj === null || !Number.isInteger(adj)) continue
    views.push({
      pid,
      ppid,
      poolPages: kb === null ? null : Math.floor((kb * 1024) / machine.pageSize),
      adj,
      contextPages: contextPagesOf(pid, machine, contexts),
    })
  }
  return views
}

/** The tightest OOM context of a process: its smallest cgroup limit on the way up, or the machine. */
function contextPagesOf(pid: number, machine: MachinePages, cache: Map<string, number>): number {
  const line = (read(`/proc/${pid}/cgroup`) ?? '').split('\n').find((l) => l.startsWith('0::'))
  return line === undefined ? machine.globalPages : tightestAtOrAbove(line.slice(3).trim(), machine, cache)
}

function tightestAtOrAbove(dir: string, machine: MachinePages, cache: Map<string, number>): number {
  if (dir === '/' || dir === '' || dir === '.') return machine.globalPages
  const cached = cache.get(dir)
  if (cached !== undefined) return cached
  let tightest = tightestAtOrAbove(path.dirname(dir), machine, cache)
  const full = path.join(CGROUP_ROOT, dir)
  const memoryMax = read(path.join(full, 'memory.max'))
  if (memoryMax !== null) {
    const pages = cgroupContextPages(memoryMax, read(path.join(full, 'memory.swap.max')), machine.swapPages, machine.pageSize)
    if (pages !== null) tightest = Math.min(tightest, pages)
  }
  cache.set(dir, tightest)
  return tightest
}

export function readAdj(pid: number): number | null {
  const text = read(`/proc/${pid}/oom_score_adj`)
  return text === null ? null : Number(text.trim())
}

export function writeAdj(pid: number, adj: number): void {
  fs.writeFileSync(`/proc/${pid}/oom_score_adj`, `${adj}\n`)
}

export function commandOf(pid: number): string | null {
  return read(`/proc/${pid}/comm`)?.trim() ?? null
}

export const isRoot = (): boolean => os.userInfo().uid === 0
