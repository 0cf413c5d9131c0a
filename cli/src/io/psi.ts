// PSI triggers (/proc/pressure/<resource>): one open file per trigger, created by writing its line;
// the kernel signals POLLPRI each time the stall passes the threshold within the window. Owns the fd
// as Device owns /dev/spillway's; the trigger goes away when the fd is closed.
import fs from 'node:fs'
import { psiTriggerLine } from '../lib/config.js'
import type { PsiTrigger } from '../lib/config.js'
import { binding } from './device.js'
import type { FdWatch } from './native.js'

export function pressureFile(resource: PsiTrigger['resource']): string {
  return `/proc/pressure/${resource}`
}

export class PsiTriggerFile {
  private watch: FdWatch | null = null

  private constructor(
    readonly trigger: PsiTrigger,
    /** The line the kernel accepted, e.g. "full 400000 2000000" (µs). */
    readonly line: string,
    readonly file: string,
    private readonly fd: number,
  ) {}

  /** Creates the trigger; throws the kernel's error (EINVAL for a bad line, ENOENT without PSI). */
  static open(trigger: PsiTrigger, windowMs: number): PsiTriggerFile {
    const file = pressureFile(trigger.resource)
    const line = psiTriggerLine(trigger, windowMs)
    const fd = fs.openSync(file, 'r+')
    try {
      fs.writeSync(fd, `${line}\0`)
    } catch (error) {
      fs.closeSync(fd)
      throw error
    }
    return new PsiTriggerFile(trigger, line, file, fd)
  }

  /** "memory full 400000 2000000": what the daemon logs. */
  describe(): string {
    return `${this.trigger.resource} ${this.line}`
  }

  /** Calls onFire each time the trigger fires, until close(); onError when the watch fails. */
  onFire(onFire: () => void, onError: (error: Error) => void): void {
    const native = binding()
    const pollpri = Number(native.constants.POLLPRI)
    this.watch?.stop()
    this.watch = new native.FdWatch(this.fd, pollpri, (error, revents) => {
      if (error) onError(error)
      else if (revents & pollpri) onFire()
    })
  }

  close(): void {
    this.watch?.stop()
    this.watch = null
    fs.closeSync(this.fd)
  }
}
