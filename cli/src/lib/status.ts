// The status report: its shape (also the --json output) and its text rendering.
import { EXIT } from '../errors.js'
import type { SpillwayEvent } from './events.js'
import type { Holder } from './holders.js'
import { formatSize } from './sizes.js'
import { PLAIN, paintFor } from './style.js'
import type { Style } from './style.js'

export interface PoolStatus {
  poolBytes: number
  requestedBytes: number
  usedBytes: number
  freeBytes: number
  floorBytes: number
  releasedBytes: number
  buffers: number
  /**
   * Capacity lent to GPU drivers (ABI 1.3; 0 from older modules): no longer in the pool, still part
   * of the request. requestedBytes > poolBytes + lentBytes is a shortfall.
   */
  lentBytes: number
}

export interface PressureStatus {
  level: string
  reasons: string[]
  watermarkWarnBytes: number
  watermarkCriticalBytes: number
}

export interface BufferStatus {
  id: number
  size: number
  pid: number
  uid: number
  command: string | null
}

export interface StatusReport {
  /** This command's version (package.json). */
  version: string
  /** The running kernel (uname -r). */
  kernel: string
  module: {
    loaded: boolean
    device: string
    /** How this user can open the device. */
    access: 'read-write' | 'read-only' | 'denied' | 'missing' | 'no-binding'
    abi: { major: number; minor: number } | null
    /** Where the pool numbers came from: the INFO ioctl or sysfs. */
    source: 'ioctl' | 'sysfs' | null
  }
  pool: PoolStatus | null
  pressure: PressureStatus | null
  buffers: BufferStatus[] | null
  /** The loans (pool capacity lent to GPU drivers, ABI 1.3), shaped like buffers; null as buffers. */
  loans: BufferStatus[] | null
  /** Buffers and loans summed per process, largest first; null when the buffers could not be listed. */
  holders: Holder[] | null
  events: SpillwayEvent[]
  memory: { ramBytes: number; availableBytes: number; swapTotalBytes: number; swapFreeBytes: number }
  gpus: { model: string; vramBytes: number; busAddress: string }[]
  jobs: { id: string; pid: number; frozen: boolean; command: string[] }[]
  watch: { running: boolean; pid: number | null }
  /** What is missing, each with what to do. */
  missing: string[]
}

const pad = (label: string) => label.padEnd(10)

/**
 * The exit status of `status`, for scripts: 0 loaded with pressure ok, 3 not loaded,
 * 7 pressure warn, 8 pressure critical (the module's level).
 */
export function statusExitCode(r: StatusReport): number {
  if (!r.module.loaded) return EXIT.noModule
  if (r.pressure?.level === 'critical') return EXIT.pressureCritical
  if (r.pressure?.level === 'warn') return EXIT.pressureWarn
  return EXIT.ok
}

/**
 * The per-process table of `status` and `ps`; LENT is what the process lent to its GPU driver. With
 * cgroupOf, a CGROUP column (the cgroup charged) before COMMAND.
 */
export function renderHolders(rows: readonly Holder[], cgroupOf?: (h: Holder) => string): string[] {
  const cgroups = cgroupOf ? rows.map(cgroupOf) : []
  const width = Math.max(6, ...cgroups.map((c) => c.length))
  const cgroupHead = cgroupOf ? `${'CGROUP'.padEnd(width)} ` : ''
  const lines = [`  PID      USER        BUFFERS  SIZE        LENT        SHARE  ${cgroupHead}COMMAND`]
  rows.forEach((h, i) => {
    const share = h.share === null ? '-' : `${(h.share * 100).toFixed(1)}%`
    const cells = [
      String(h.pid).padEnd(8),
      (h.user ?? String(h.uid)).padEnd(11),
      String(h.buffers).padEnd(8),
      formatSize(h.bytes).padEnd(11),
      (h.loans ? formatSize(h.lentBytes) : '-').padEnd(11),
    ]
    const cgroup = cgroupOf ? `${(cgroups[i] ?? '').padEnd(width)} ` : ''
    lines.push(`  ${cells.join(' ')} ${share.padEnd(6)} ${cgroup}${h.command ?? '?'}`)
  })
  return lines
}

/** "4 GiB of 8 GiB requested: 1 GiB used in 2 buffers, 3 GiB free, 2 GiB lent to GPU drivers" */
export function poolLine(p: PoolStatus): string {
  const short = p.requestedBytes > p.poolBytes + p.lentBytes ? ` of ${formatSize(p.requestedBytes)} requested` : ''
  const used = `${formatSize(p.usedBytes)} used in ${p.buffers} buffer${p.buffers === 1 ? '' : 's'}`
  const lent = p.lentBytes ? `, ${formatSize(p.lentBytes)} lent to GPU drivers` : ''
  return `${formatSize(p.poolBytes)}${short}: ${used}, ${formatSize(p.freeBytes)} free${lent}`
}

export function renderStatus(r: StatusReport, style: Style = PLAIN): string {
  const paint = style.paint
  const lines: string[] = []
  if (!r.module.loaded) lines.push(`${pad('module')} ${paint('not loaded', 'bad')} (${r.module.device} is missing)`)
  else {
    const abi = r.module.abi ? `, ABI ${r.module.abi.major}.${r.module.abi.minor}` : ''
    lines.push(`${pad('module')} loaded (${r.module.device}: ${r.module.access}${abi})`)
  }
  if (r.pool) {
    const p = r.pool
    lines.push(`${pad('pool')} ${poolLine(p)}`)
    lines.push(`${pad('')} floor ${formatSize(p.floorBytes)}, released under pressure ${formatSize(p.releasedBytes)}`)
  }
  if (r.pressure) {
    const why = r.pressure.reasons.length ? ` (${r.pressure.reasons.join(', ')})` : ''
    const level = paint(r.pressure.level, paintFor(r.pressure.level))
    const marks = `warn ${formatSize(r.pressure.watermarkWarnBytes)}, critical ${formatSize(r.pressure.watermarkCriticalBytes)}`
    lines.push(`${pad('pressure')} ${level}${why}; MemAvailable watermarks: ${marks}`)
  }
  const m = r.memory
  const swap = m.swapTotalBytes ? `swap ${formatSize(m.swapFreeBytes)} free of ${formatSize(m.swapTotalBytes)}` : 'no swap'
  lines.push(`${pad('memory')} RAM ${formatSize(m.ramBytes)}, ${formatSize(m.availableBytes)} available; ${swap}`)
  const gpus = r.gpus.map((g) => `${g.model} (${g.vramBytes ? formatSize(g.vramBytes) : 'VRAM unknown'})`).join(', ')
  lines.push(`${pad('GPUs')} ${r.gpus.length ? gpus : 'no NVIDIA GPU found'}`)
  lines.push(`${pad('watch')} ${r.watch.running ? `running (pid ${r.watch.pid})` : paint('not running', 'warn')}`)
  const jobs = r.jobs.map((j) => `${j.id} pid ${j.pid}${j.frozen ? ` ${paint('FROZEN', 'warn')}` : ''}`).join(', ')
  lines.push(`${pad('jobs')} ${r.jobs.length ? jobs : 'no --oom-safe jobs'}`)
  lines.push(`${pad('version')} spillway ${r.version}, kernel ${r.kernel}`)
  if (r.holders && r.holders.length) lines.push('', 'pool memory by process:', ...renderHolders(r.holders))
  if (r.events.length) {
    lines.push('', 'recent events:')
    for (const e of r.events) {
      const detail =
        e.type === 'level'
          ? `${e.prevLevel} -> ${paint(e.level, paintFor(e.level))} (${e.reasons.join(', ') || 'no reason'})`
          : e.type === 'release'
            ? `released ${formatSize(e.count)}`
            : `${e.count} records lost`
      lines.push(`  #${e.seq} ${e.type}: ${detail}, MemAvailable ${formatSize(e.memAvailable)}`)
    }
  }
  if (r.missing.length) {
    lines.push('', paint('missing:', 'warn'))
    for (const item of r.missing) lines.push(`  - ${item}`)
  }
  return lines.join('\n')
}

/** One screen of `status --watch`: a header like watch(1)'s, then the report. */
export function statusFrame(r: StatusReport, at: Date, everySeconds: number, style: Style = PLAIN): string {
  const head = style.paint(`every ${everySeconds} s: spillway status`, 'dim')
  return `${head}    ${at
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')}\n\n${renderStatus(r, style)}`
}
