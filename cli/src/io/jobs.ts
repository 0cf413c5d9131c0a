// The jobs directory and the cgroup v2 operations `run --oom-safe` and `watch` share.
import fs from 'node:fs'
import path from 'node:path'
import { parseJobRecord } from '../lib/jobs.js'
import type { JobRecord } from '../lib/jobs.js'

export function runDir(): string {
  return process.env.SPILLWAY_RUN_DIR ?? '/run/spillway'
}

export function jobsDir(): string {
  return path.join(runDir(), 'jobs')
}

export function cgroupRoot(): string {
  return process.env.SPILLWAY_CGROUP_ROOT ?? '/sys/fs/cgroup'
}

/** Every --oom-safe job gets a cgroup below this one. */
export function cgroupBase(): string {
  return path.join(cgroupRoot(), 'spillway')
}

export function writeJob(record: JobRecord): string {
  fs.mkdirSync(jobsDir(), { recursive: true, mode: 0o755 })
  const file = path.join(jobsDir(), `${record.id}.json`)
  const tmp = `${file}.tmp`
  fs.writeFileSync(tmp, JSON.stringify(record) + '\n', { mode: 0o644 })
  fs.renameSync(tmp, file)
  return file
}

export function removeJob(id: string): void {
  fs.rmSync(path.join(jobsDir(), `${id}.json`), { force: true })
}

/** Registered jobs whose cgroup still exists; bad files are reported through onBad and skipped. */
export function listJobs(onBad: (file: string, problem: string) => void = () => {}): JobRecord[] {
  let names: string[]
  try {
    names = fs.readdirSync(jobsDir()).filter((n) => n.endsWith('.json'))
  } catch {
    return []
  }
  const jobs: JobRecord[] = []
  for (const name of names.sort()) {
    const file = path.join(jobsDir(), name)
    try {
      const record = parseJobRecord(fs.readFileSync(file, 'utf8'), cgroupBase())
      if (fs.existsSync(path.join(record.cgroup, 'cgroup.procs'))) jobs.push(record)
    } catch (error) {
      onBad(file, error instanceof Error ? error.message : String(error))
    }
  }
  return jobs
}

export function createCgroup(id: string): string {
  const base = cgroupBase()
  fs.mkdirSync(base, { recursive: true })
  const dir = path.join(base, id)
  fs.mkdirSync(dir)
  return dir
}

export function removeCgroup(dir: string): void {
  try {
    fs.rmdirSync(dir)
  } catch {
    // still has processes (a daemon the job left behind): leave it for the admin
  }
}

export function setFrozen(dir: string, frozen: boolean): void {
  fs.writeFileSync(path.join(dir, 'cgroup.freeze'), frozen ? '1' : '0')
}

export function isFrozen(dir: string): boolean {
  try {
    return /^frozen 1$/m.test(fs.readFileSync(path.join(dir, 'cgroup.events'), 'utf8'))
  } catch {
    return false
  }
}

/** Waits until the kernel reports the cgroup frozen (cgroup.events), at most timeoutMs. */
export async function waitFrozen(dir: string, frozen: boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (isFrozen(dir) === frozen) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return isFrozen(dir) === frozen
}

export function killCgroup(dir: string): void {
  const killFile = path.join(dir, 'cgroup.kill')
  if (fs.existsSync(killFile)) {
    fs.writeFileSync(killFile, '1')
    return
  }
  for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL')
    } catch {
      // already gone
    }
  }
}
