// Slurm's generic resource `spillway` (GiB of the pool): the gres.conf line, what `scontrol show job
// -d` says a job was allocated, where its cgroup v2 is, and the environment its tasks get.
import path from 'node:path'
import { GiB } from './sizes.js'

export const GRES_NAME = 'spillway'

/** GiB of the pool that Slurm may hand out: whole GiB of what the pool holds. */
export function gresCount(poolBytes: number): number {
  return Math.floor(poolBytes / GiB)
}

/** The gres.conf line and the slurm.conf NodeName fragment for a node. */
export function gresConfig(poolBytes: number, nodeName: string): { gresConf: string; nodeGres: string; count: number } {
  const count = gresCount(poolBytes)
  return {
    count,
    gresConf: `Name=${GRES_NAME} Count=${count}`,
    nodeGres: `NodeName=${nodeName} Gres=${GRES_NAME}:${count}`,
  }
}

/** Splits at commas outside the brackets open..close: "a(1,2),b" -> ["a(1,2)", "b"]. */
function splitOutside(text: string, open: string, close: string): string[] {
  const items: string[] = []
  let depth = 0
  let current = ''
  for (const ch of text) {
    if (ch === open) depth++
    if (ch === close) depth = Math.max(0, depth - 1)
    if (ch === ',' && depth === 0) {
      items.push(current)
      current = ''
    } else current += ch
  }
  items.push(current)
  return items.map((s) => s.trim()).filter(Boolean)
}

/** Splits at commas outside parentheses: "gpu:2(IDX:0,2),spillway:4" -> two items. */
export function splitGresList(text: string): string[] {
  return splitOutside(text, '(', ')')
}

/**
 * The count of the spillway GRES in a GRES list as scontrol writes it: "spillway:2",
 * "gres:spillway:2", "gres/spillway=2", "spillway:type:2(IDX:0-1)"; null when it is not there.
 */
export function gresCountIn(list: string, name = GRES_NAME): number | null {
  for (const item of splitGresList(list)) {
    // 22.05 writes a count-only GRES of a node as "spillway(CNT:2)"
    const cnt = /\(CNT:(\d+)\)$/.exec(item)?.[1]
    const bare = item.replace(/\(.*\)$/, '').replace(/^gres[:/]/, '')
    if (cnt !== undefined && bare.split(/[:=]/)[0] === name) return Number(cnt)
    const parts = bare.split(/[:=]/)
    if (parts[0] !== name) continue
    const last = parts.length > 1 ? parts[parts.length - 1] : '1'
    const m = /^(\d+)([KMGT]?)$/.exec(last ?? '')
    if (!m) continue
    const scale = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2] as '' | 'K' | 'M' | 'G' | 'T']
    return Number(m[1]) * scale
  }
  return null
}

/** Expands a Slurm host list: "node[01-03,7],login" -> node01 node02 node03 node7 login. */
export function expandHostlist(list: string): string[] {
  const hosts: string[] = []
  for (const item of splitHostItems(list)) {
    const m = /^([^[]*)\[([^\]]*)\](.*)$/.exec(item)
    if (!m) {
      hosts.push(item)
      continue
    }
    const [, prefix = '', ranges = '', suffix = ''] = m
    for (const range of ranges.split(',')) {
      const [from = '', to = from] = range.split('-')
      const width = from.length
      for (let n = Number(from); n <= Number(to); n++) hosts.push(`${prefix}${String(n).padStart(width, '0')}${suffix}`)
    }
  }
  return hosts
}

function splitHostItems(list: string): string[] {
  return splitOutside(list, '[', ']')
}

export interface JobAllocation {
  /** GiB of the spillway GRES on this node; 0 when the job asked for none */
  gib: number
  /** where the figure came from (the scontrol field), for the log */
  from: string
}

/**
 * What `scontrol show job -d JOBID` says the job holds of the spillway GRES on `node`: the per-node
 * line (`Nodes=... GRES=spillway:2`), else JOB_GRES, TresPerNode, then TRES (gres/spillway=N, the
 * whole job's: divided by the node count).
 */
export function jobAllocation(scontrol: string, node: string): JobAllocation {
  const fields = (line: string): Map<string, string> => {
    const map = new Map<string, string>()
    for (const m of line.matchAll(/(?:^|\s)([A-Za-z_/:]+)=(\S*)/g)) if (m[1] && !map.has(m[1])) map.set(m[1], m[2] ?? '')
    return map
  }
  const all = new Map<string, string>()
  for (const line of scontrol.split('\n')) {
    const f = fields(line)
    const nodes = f.get('Nodes')
    const gres = f.get('GRES')
    if (nodes !== undefined && gres !== undefined && /^\s+Nodes=/.test(line)) {
      if (expandHostlist(nodes).includes(node)) {
        const count = gresCountIn(gres)
        return { gib: count ?? 0, from: `Nodes=${nodes} GRES=${gres}` }
      }
      continue
    }
    for (const [k, v] of f) if (!all.has(k)) all.set(k, v)
  }
  for (const key of ['JOB_GRES', 'TresPerNode']) {
    const value = all.get(key)
    const count = value && value !== '(null)' ? gresCountIn(value) : null
    if (count !== null) return { gib: count, from: `${key}=${value}` }
  }
  const tres = all.get('TRES') ?? all.get('AllocTRES')
  const total = tres ? gresCountIn(tres) : null
  if (total !== null) {
    const nodes = Math.max(1, Number(all.get('NumNodes') ?? 1) || 1)
    return { gib: Math.floor(total / nodes), from: `TRES=${tres}` }
  }
  return { gib: 0, from: 'no spillway GRES in the job' }
}

/**
 * The job's cgroup among cgroup v2 directories (paths relative to the mount): the one named
 * job_ID, nearest the root (Slurm's cgroup/v2 puts it under slurmstepd.scope, which systemd or
 * IgnoreSystemd=yes places under system.slice).
 */
export function pickJobCgroup(dirs: readonly string[], jobId: string): string | null {
  const name = `job_${jobId}`
  const matches = dirs.filter((d) => path.basename(d) === name)
  matches.sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : a > b ? 1 : 0))
  return matches[0] ?? null
}

export interface TaskEnvInput {
  gib: number
  /** the shim's path, when installed */
  shim: string | null
  /** the task's environment (the user's own settings win) */
  env: NodeJS.ProcessEnv
}

/**
 * What a job's tasks get (TaskProlog `export` lines): the shim preloaded, spilling into the pool
 * only (the job's cgroup share then bounds it, and past it allocations fail as CUDA out of memory
 * instead of going to unaccounted host memory), a per-process spill cap of the allocation, and the
 * shim's statistics at exit in the job's output. Variables the user set are left alone.
 */
export function taskEnv(input: TaskEnvInput): Array<[string, string]> {
  if (input.gib <= 0) return []
  const wanted: Array<[string, string]> = [
    ['SPILLWAY_BACKEND', 'pool'],
    ['SPILLWAY_SPILL_LIMIT', `${input.gib}G`],
    ['SPILLWAY_LOG', 'warn,stats'],
    ['SPILLWAY_SLURM_GIB', String(input.gib)],
  ]
  const out = wanted.filter(([k]) => input.env[k] === undefined || k === 'SPILLWAY_SLURM_GIB')
  if (input.shim) {
    const preload = (input.env.LD_PRELOAD ?? '').split(/[\s:]+/).filter(Boolean)
    if (!preload.includes(input.shim)) out.push(['LD_PRELOAD', [input.shim, ...preload].join(':')])
  }
  return out
}

/** TaskProlog output: `export NAME=value` lines, values quoted for the shell Slurm does not run. */
export function exportLines(vars: ReadonlyArray<[string, string]>): string[] {
  return vars.map(([k, v]) => `export ${k}=${v}`)
}

/**
 * What the prolog and its guard record for the TaskProlog and the epilog, in the run directory:
 * the allocation, then (once Slurm has made the job's cgroup and the guard has set its share) the
 * cgroup, or why the share could not be set.
 */
export interface SlurmJobState {
  jobId: string
  gib: number
  cgroup: string | null
  cgroupId: number | null
  error: string | null
}

export function parseJobState(text: string): SlurmJobState | null {
  try {
    const raw = JSON.parse(text) as Record<string, unknown>
    const nullable = (v: unknown, type: 'string' | 'number'): boolean => v === null || typeof v === type
    if (
      typeof raw.jobId === 'string' &&
      /^\d+$/.test(raw.jobId) &&
      typeof raw.gib === 'number' &&
      nullable(raw.cgroup, 'string') &&
      nullable(raw.cgroupId, 'number') &&
      nullable(raw.error ?? null, 'string')
    ) {
      return {
        jobId: raw.jobId,
        gib: raw.gib,
        cgroup: raw.cgroup as string | null,
        cgroupId: raw.cgroupId as number | null,
        error: (raw.error ?? null) as string | null,
      }
    }
  } catch {
    // a torn or foreign file: treated as none
  }
  return null
}

/** A Slurm job id as the prolog's environment gives it (digits; array jobs have their own id). */
export function checkJobId(value: string | undefined): string | null {
  return value !== undefined && /^\d+$/.test(value) ? value : null
}
