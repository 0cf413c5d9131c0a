// Loads the node-addon-api binding (cli/native) and gives it real types.
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import type { PoolStatus } from '../lib/status.js'

export interface NativeVersion {
  major: number
  minor: number
  eventSize: number
  testIoctls: boolean
}

/** struct spillway_info; the pool's part is the same shape as the status report's. */
export interface NativeInfo extends PoolStatus {
  userLimitBytes: number
  events: number
  level: number
  reason: number
  watermarkWarn: number
  watermarkCritical: number
  memAvailable: number
  swapTotal: number
  swapFree: number
  swapRate: number
  watchdogMs: number
}

/** An entry of LIST_BUFFERS, or of LIST_LOANS (ABI 1.3: the id is the loan's). */
export interface NativeBuffer {
  id: number
  size: number
  pid: number
  uid: number
  /** the cgroup v2 charged for it (ABI 1.2; 0 from older modules) */
  cgroupId: number
}

/** struct spillway_share: a cgroup's share of the pool (ABI 1.2). */
export interface NativeShare {
  cgroupId: number
  maxBytes: number
  minBytes: number
  usedBytes: number
}

/** Called with an error (the watch has then ended) or the poll() bits that are set (POLLIN, POLLPRI). */
export type FdWatchCallback = (error: (Error & { code?: string }) | null, revents: number) => void

export interface FdWatch {
  /** Stops watching at once; no callback follows. */
  stop(): void
}

export interface NativeBinding {
  open(path: string, writable: boolean): number
  version(fd: number): NativeVersion
  info(fd: number): NativeInfo
  alloc(fd: number, size: number): { fd: number; id: number }
  resize(fd: number, poolBytes: number): number
  setWatermarks(fd: number, warn: number, critical: number): void
  listBuffers(fd: number, capacity: number): { count: number; buffers: NativeBuffer[] }
  /** The capacity the pool lent to GPU drivers (ABI 1.3); ENOTTY from older modules. */
  listLoans(fd: number, capacity: number): { count: number; loans: NativeBuffer[] }
  /** cgroupFd -1 names the cgroup by cgroupId. */
  setShare(fd: number, cgroupFd: number, cgroupId: number, maxBytes: number, minBytes: number): NativeShare
  listShares(fd: number, capacity: number): { count: number; shares: NativeShare[] }
  /** Watches fd on node's event loop (uv_poll) until stop(); see FdWatchCallback. */
  FdWatch: new (fd: number, events: number, callback: FdWatchCallback) => FdWatch
  constants: Record<string, number | string>
  sizes: Record<string, number>
  eventOffsets: Record<string, number>
}

export const BINDING_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../native/build/Release/spillway.node')

let cached: NativeBinding | Error | undefined

/** The binding, or the Error that says why it could not be loaded (not built, wrong node ABI). */
export function loadBinding(): NativeBinding | Error {
  if (cached === undefined) {
    try {
      cached = createRequire(import.meta.url)(BINDING_PATH) as NativeBinding
    } catch (error) {
      cached = error instanceof Error ? error : new Error(String(error))
    }
  }
  return cached
}
