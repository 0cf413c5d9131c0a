// Jobs started by `spillway run --oom-safe`, as recorded in the jobs directory for `watch`.

export interface JobRecord {
  id: string
  pid: number
  /** The job's own cgroup v2 directory. */
  cgroup: string
  command: string[]
  uid: number
  startedAt: string
}

export class JobRecordError extends Error {
  override name = 'JobRecordError'
}

/**
 * A Slurm job registered by `spillway slurm prolog` (id slurm-JOBID) may name its job's cgroup
 * (.../job_JOBID, anywhere below the cgroup2 root, which is cgroupBase's parent).
 */
function isSlurmJobCgroup(id: string, cgroup: string, cgroupBase: string): boolean {
  const job = /^slurm-(\d+)$/.exec(id)?.[1]
  const root = cgroupBase.slice(0, cgroupBase.lastIndexOf('/'))
  return (
    job !== undefined &&
    cgroup.startsWith(`${root}/`) &&
    cgroup.endsWith(`/job_${job}`) &&
    !cgroup.split('/').some((part) => part === '..' || part === '.')
  )
}

/** Checks a job file; a job may only name a cgroup below the spillway cgroup (`cgroupBase`), or its Slurm job's. */
export function parseJobRecord(text: string, cgroupBase: string): JobRecord {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new JobRecordError('not JSON')
  }
  if (typeof raw !== 'object' || raw === null) throw new JobRecordError('not an object')
  const r = raw as Record<string, unknown>
  if (typeof r.id !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(r.id)) throw new JobRecordError('bad id')
  if (typeof r.pid !== 'number' || !Number.isInteger(r.pid) || r.pid <= 0) throw new JobRecordError('bad pid')
  if (typeof r.cgroup !== 'string' || (r.cgroup !== `${cgroupBase}/${r.id}` && !isSlurmJobCgroup(r.id, r.cgroup, cgroupBase))) {
    throw new JobRecordError(`cgroup must be ${cgroupBase}/${r.id} (or a Slurm job's job_ID cgroup)`)
  }
  if (!Array.isArray(r.command) || !r.command.every((c) => typeof c === 'string')) throw new JobRecordError('bad command')
  if (typeof r.uid !== 'number' || typeof r.startedAt !== 'string') throw new JobRecordError('bad uid or startedAt')
  return { id: r.id, pid: r.pid, cgroup: r.cgroup, command: r.command as string[], uid: r.uid, startedAt: r.startedAt }
}

export function newJobId(pid: number, now: Date): string {
  return `job-${now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${pid}`
}
