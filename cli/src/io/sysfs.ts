// The module's sysfs attributes (/sys/class/misc/spillway/), readable without the device's group.
import fs from 'node:fs'
import path from 'node:path'
import { CliError, EXIT, errnoCode } from '../errors.js'
import { parseLevelName } from '../lib/uapi.js'
import type { LevelName } from '../lib/uapi.js'
import { MiB } from '../lib/sizes.js'

export function sysfsDir(): string {
  return process.env.SPILLWAY_SYSFS ?? '/sys/class/misc/spillway'
}

export interface SysfsState {
  poolBytes: number
  requestedBytes: number
  usedBytes: number
  freeBytes: number
  buffers: number
  level: LevelName | undefined
  watermarkWarnBytes: number
  watermarkCriticalBytes: number
  events: number
  releasedBytes: number
  floorBytes: number
  /** lent_bytes (ABI 1.3); 0 from older modules, which have no such attribute. */
  lentBytes: number
}

function readAttr(name: string): string | undefined {
  try {
    return fs.readFileSync(path.join(sysfsDir(), name), 'utf8').trim()
  } catch {
    return undefined
  }
}

function readNumber(name: string): number {
  const text = readAttr(name)
  const value = text === undefined ? NaN : Number(text)
  return Number.isFinite(value) ? value : NaN
}

/** The attributes, or undefined when the module is not loaded. Unreadable numbers are NaN. */
export function readSysfs(): SysfsState | undefined {
  if (!fs.existsSync(sysfsDir())) return undefined
  return {
    poolBytes: readNumber('pool_bytes'),
    requestedBytes: readNumber('requested_bytes'),
    usedBytes: readNumber('used_bytes'),
    freeBytes: readNumber('free_bytes'),
    buffers: readNumber('buffers'),
    level: parseLevelName(readAttr('level') ?? ''),
    watermarkWarnBytes: readNumber('watermark_warn_mb') * MiB,
    watermarkCriticalBytes: readNumber('watermark_critical_mb') * MiB,
    events: readNumber('events'),
    releasedBytes: readNumber('released_bytes'),
    floorBytes: readNumber('pool_floor_mb') * MiB,
    lentBytes: readAttr('lent_bytes') === undefined ? 0 : readNumber('lent_bytes'),
  }
}

export function writeAttr(name: string, value: string): void {
  const file = path.join(sysfsDir(), name)
  try {
    fs.writeFileSync(file, value)
  } catch (error) {
    const code = errnoCode(error)
    if (code === 'EACCES' || code === 'EPERM') {
      throw new CliError(`writing ${file} needs root`, 'run it again with sudo', EXIT.permission, { cause: error })
    }
    if (code === 'ENOENT') {
      throw new CliError(
        `${file} does not exist, so the spillway module is not loaded`,
        'load it with `sudo spillway load`',
        EXIT.noModule,
        { cause: error },
      )
    }
    const message = error instanceof Error ? error.message : String(error)
    throw new CliError(
      `writing "${value}" to ${file} failed: ${message}`,
      'check `dmesg` for messages from spillway',
      EXIT.failed,
      { cause: error },
    )
  }
}
