// The status report: its shape (also the --json output) and its text rendering.
import type { SpillwayEvent } from './events.js'
import { formatSize } from './sizes.js'

export interface PoolStatus {
  poolBytes: number
  requestedBytes: number
  usedBytes: number
  freeBytes: number
  floorBytes: number
  releasedBytes: number
  buffers: number
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
  events: SpillwayEvent[]
  memory: { ramBytes: number; availableBytes: number; swapTotalBytes: number; swapFreeBytes: number }
  gpus: { model: string; vramBytes: number; busAddress: string }[]
  jobs: { id: string; pid: number; frozen: boolean; command: string[] }[]
  watch: { running: boolean; pid: number | null }
  /** What is missing, each with what to do. */
  missing: string[]
}

const pad = (label: string) => label.padEnd(10)

export function renderStatus(r: StatusReport): string {
  const lines: string[] = []
  if (!r.module.loaded) lines.push(`${pad('module')} not loaded (${r.module.device} is missing)`)
  else {
    const abi = r.module.abi ? `, ABI ${r.module.abi.major}.${r.module.abi.minor}` : ''
    lines.push(`${pad('module')} loaded (${r.module.device}: ${r.module.access}${abi})`)
  }
  if (r.pool) {
    const p = r.pool
    const short = p.requestedBytes > p.poolBytes ? ` of ${formatSize(p.requestedBytes)} requested` : ''
    lines.push(`${pad('pool')} ${formatSize(p.poolBytes)}${short}: ${formatSize(p.usedBytes)} used in ${p.buffers} buffer${p.buffers === 1 ? '' : 's'}, ${formatSize(p.freeBytes)} free`)
    lines.push(`${pad('')} floor ${formatSize(p.floorBytes)}, released under pressure ${formatSize(p.releasedBytes)}`)
  }
  if (r.pressure) {
    const why = r.pressure.reasons.length ? ` (${r.pressure.reasons.join(', ')})` : ''
    lines.push(`${pad('pressure')} ${r.pressure.level}${why}; MemAvailable watermarks: warn ${formatSize(r.pressure.watermarkWarnBytes)}, critical ${formatSize(r.pressure.watermarkCriticalBytes)}`)
  }
  const m = r.memory
  const swap = m.swapTotalBytes ? `swap ${formatSize(m.swapFreeBytes)} free of ${formatSize(m.swapTotalBytes)}` : 'no swap'
  lines.push(`${pad('memory')} RAM ${formatSize(m.ramBytes)}, ${formatSize(m.availableBytes)} available; ${swap}`)
  lines.push(`${pad('GPUs')} ${r.gpus.length ? r.gpus.map((g) => `${g.model} (${g.vramBytes ? formatSize(g.vramBytes) : 'VRAM unknown'})`).join(', ') : 'no NVIDIA GPU found'}`)
  lines.push(`${pad('watch')} ${r.watch.running ? `running (pid ${r.watch.pid})` : 'not running'}`)
  lines.push(`${pad('jobs')} ${r.jobs.length ? r.jobs.map((j) => `${j.id} pid ${j.pid}${j.frozen ? ' FROZEN' : ''}`).join(', ') : 'no --oom-safe jobs'}`)
  if (r.buffers && r.buffers.length) {
    lines.push('', 'buffers:', '  ID        SIZE        PID  UID    COMMAND')
    for (const b of r.buffers) {
      lines.push(`  ${String(b.id).padEnd(9)} ${formatSize(b.size).padEnd(11)} ${String(b.pid).padEnd(4)} ${String(b.uid).padEnd(6)} ${b.command ?? '?'}`)
    }
  }
  if (r.events.length) {
    lines.push('', 'recent events:')
    for (const e of r.events) {
      const detail = e.type === 'level' ? `${e.prevLevel} -> ${e.level} (${e.reasons.join(', ') || 'no reason'})` : e.type === 'release' ? `released ${formatSize(e.count)}` : `${e.count} records lost`
      lines.push(`  #${e.seq} ${e.type}: ${detail}, MemAvailable ${formatSize(e.memAvailable)}`)
    }
  }
  if (r.missing.length) {
    lines.push('', 'missing:')
    for (const item of r.missing) lines.push(`  - ${item}`)
  }
  return lines.join('\n')
}
