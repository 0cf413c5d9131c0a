// The watch daemon's pid file, so status and run can tell whether it runs.
import fs from 'node:fs'
import path from 'node:path'
import { runDir } from './jobs.js'

export function watchPidFile(): string {
  return path.join(runDir(), 'watch.pid')
}

export function watchPid(): number | null {
  try {
    const pid = Number(fs.readFileSync(watchPidFile(), 'utf8').trim())
    if (!Number.isInteger(pid) || pid <= 0) return null
    process.kill(pid, 0)
    return pid
  } catch (error) {
    // EPERM: alive but someone else's process.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? Number(fs.readFileSync(watchPidFile(), 'utf8').trim()) : null
  }
}
