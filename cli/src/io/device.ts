// /dev/spillway through the binding: owns the fd, turns errno into errors a user can act on.
import fs from 'node:fs'
import { CliError, EXIT, errnoCode } from '../errors.js'
import { decodeEvents } from '../lib/events.js'
import type { SpillwayEvent } from '../lib/events.js'
import { shareErrorText } from '../lib/share.js'
import type { ShareAction } from '../lib/share.js'
import { DEVICE_PATH, EVENT_SIZE, LIST_MAX } from '../lib/uapi.js'
import { loadBinding } from './native.js'
import type { FdWatch, NativeBinding, NativeBuffer, NativeInfo, NativeShare, NativeVersion } from './native.js'

export function binding(): NativeBinding {
  const loaded = loadBinding()
  if (loaded instanceof Error) {
    throw new CliError(
      `the native binding could not be loaded (${loaded.message.split('\n')[0]})`,
      'build it with `npm run build` (needs gcc, make and python3)',
      EXIT.failed,
      { cause: loaded },
    )
  }
  return loaded
}

/** Maps a failed open/ioctl on the device to a CliError that says what to do. */
export function deviceError(error: unknown, action: string, devicePath = DEVICE_PATH): CliError {
  const code = errnoCode(error)
  const options = { cause: error }
  switch (code) {
    case 'ENOENT':
    case 'ENODEV':
    case 'ENXIO':
      return new CliError(
        `${devicePath} does not exist, so the spillway module is not loaded`,
        'load it with `sudo spillway load` (or `sudo spillway up` to build, load and start everything)',
        EXIT.noModule,
        options,
      )
    case 'EACCES':
      return new CliError(
        `permission denied to ${action} ${devicePath}`,
        'add yourself to the spillway group (`sudo usermod -aG spillway $USER`, then log in again) or use sudo',
        EXIT.permission,
        options,
      )
    case 'EPERM':
      return new CliError(`${action} needs root (CAP_SYS_ADMIN)`, 'run it again with sudo', EXIT.permission, options)
    case 'ENOTTY':
      return new CliError(
        `${devicePath} does not understand the ${action} ioctl`,
        'the loaded module and this spillway command are from different versions: reinstall both (`sudo spillway install`)',
        EXIT.failed,
        options,
      )
    default: {
      const message = error instanceof Error ? error.message : String(error)
      return new CliError(
        `${action} on ${devicePath} failed: ${message}`,
        'check `dmesg` for messages from spillway',
        EXIT.failed,
        options,
      )
    }
  }
}

export class Device {
  private constructor(
    private readonly native: NativeBinding,
    readonly fd: number,
    readonly path: string,
  ) {}

  static open(options: { writable?: boolean; path?: string } = {}): Device {
    const native = binding()
    const devicePath = options.path ?? DEVICE_PATH
    try {
      return new Device(native, native.open(devicePath, options.writable ?? false), devicePath)
    } catch (error) {
      throw deviceError(error, 'open', devicePath)
    }
  }

  private call<T>(action: string, fn: () => T): T {
    try {
      return fn()
    } catch (error) {
      throw deviceError(error, action, this.path)
    }
  }

  version(): NativeVersion {
    return this.call('VERSION', () => this.native.version(this.fd))
  }

  info(): NativeInfo {
    return this.call('INFO', () => this.native.info(this.fd))
  }

  resize(poolBytes: number): number {
    return this.call('RESIZE', () => this.native.resize(this.fd, poolBytes))
  }

  setWatermarks(warnBytes: number, criticalBytes: number): void {
    this.call('SET_WATERMARKS', () => this.native.setWatermarks(this.fd, warnBytes, criticalBytes))
  }

  /** Every live buffer; asks twice when more appeared between the count and the copy. */
  listBuffers(): NativeBuffer[] {
    return this.listAll('LIST_BUFFERS', (capacity) => {
      const { count, buffers } = this.native.listBuffers(this.fd, capacity)
      return { count, entries: buffers }
    })
  }

  /**
   * Every live loan (pool capacity lent to a GPU driver, ABI 1.3), as listBuffers lists buffers.
   * A module older than 1.3 lends nothing: it answers ENOTTY, and this an empty list.
   */
  listLoans(): NativeBuffer[] {
    try {
      return this.listAll('LIST_LOANS', (capacity) => {
        const { count, loans } = this.native.listLoans(this.fd, capacity)
        return { count, entries: loans }
      })
    } catch (error) {
      if (error instanceof CliError && errnoCode(error.cause) === 'ENOTTY') return []
      throw error
    }
  }

  private listAll(action: string, list: (capacity: number) => { count: number; entries: NativeBuffer[] }): NativeBuffer[] {
    let capacity = 64
    for (;;) {
      const { count, entries } = this.call(action, () => list(capacity))
      if (count <= capacity || capacity === LIST_MAX) return entries
      capacity = Math.min(LIST_MAX, count + 64)
    }
  }

  /** An errno of SET_SHARE / LIST_SHARES as the share contract explains it, else as any ioctl's. */
  private shareError(error: unknown, action: ShareAction, cgroup: string): CliError {
    let abi: NativeVersion | null = null
    try {
      abi = this.native.version(this.fd)
    } catch {
      // no VERSION either: the message says "older than 1.2"
    }
    const text = shareErrorText(errnoCode(error), action, cgroup, abi)
    if (!text) return deviceError(error, action === 'list' ? 'LIST_SHARES' : 'SET_SHARE', this.path)
    return new CliError(text.message, text.hint, EXIT[text.kind], { cause: error })
  }

  /** Sets (or with both 0, clears) the share of the cgroup open on cgroupFd; cgroup names it in errors. */
  setShare(cgroupFd: number, cgroup: string, maxBytes: number, minBytes: number): NativeShare {
    try {
      return this.native.setShare(this.fd, cgroupFd, 0, maxBytes, minBytes)
    } catch (error) {
      throw this.shareError(error, maxBytes === 0 && minBytes === 0 ? 'clear' : 'set', cgroup)
    }
  }

  /** Every cgroup with a share or with buffers charged to it; asks again when more appeared. */
  listShares(): NativeShare[] {
    let capacity = 64
    for (;;) {
      let result: { count: number; shares: NativeShare[] }
      try {
        result = this.native.listShares(this.fd, capacity)
      } catch (error) {
        throw this.shareError(error, 'list', 'any cgroup')
      }
      if (result.count <= capacity || capacity === LIST_MAX) return result.shares
      capacity = Math.min(LIST_MAX, result.count + 64)
    }
  }

  /** Reads the records queued for this open file; [] when none are waiting (the fd is O_NONBLOCK). */
  readEvents(maxRecords = 64): SpillwayEvent[] {
    const buf = Buffer.alloc(EVENT_SIZE * maxRecords)
    let length: number
    try {
      length = fs.readSync(this.fd, buf, 0, buf.length, null)
    } catch (error) {
      if (errnoCode(error) === 'EAGAIN') return []
      throw deviceError(error, 'read events from', this.path)
    }
    return decodeEvents(buf, length)
  }

  /**
   * Calls onEvents with the records each time some are waiting, on node's event loop (uv_poll), until
   * stop(). onError gets a failed read or a watch the kernel ended; the watch has then stopped.
   */
  watchEvents(onEvents: (events: SpillwayEvent[]) => void, onError: (error: CliError) => void): FdWatch {
    const pollin = Number(this.native.constants.POLLIN)
    const watch: FdWatch = new this.native.FdWatch(this.fd, pollin, (error, revents) => {
      if (error) return onError(deviceError(error, 'watch', this.path))
      if (!(revents & pollin)) return
      let events: SpillwayEvent[]
      try {
        events = this.readEvents()
      } catch (readError) {
        watch.stop()
        return onError(readError instanceof CliError ? readError : deviceError(readError, 'read events from', this.path))
      }
      if (events.length) onEvents(events)
    })
    return watch
  }

  close(): void {
    fs.closeSync(this.fd)
  }
}
