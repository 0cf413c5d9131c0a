// spillway slurm gres | prolog | epilog | task-prolog | guard: the pool as Slurm's generic resource
// `spillway` (GiB), each job's cgroup share of it, its tasks' environment, its OOM protection.
import { Command } from 'commander'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { CliError, EXIT } from '../errors.js'
import { print, printJson, progress, warn } from '../io/console.js'
import { Device } from '../io/device.js'
import { exec, which } from '../io/exec.js'
import { cgroupRoot, removeJob, runDir, writeJob } from '../io/jobs.js'
import { parseJobState, checkJobId, exportLines, gresConfig, jobAllocation, pickJobCgroup, taskEnv } from '../lib/slurm.js'
import type { SlurmJobState } from '../lib/slurm.js'
import { GiB, formatSize } from '../lib/sizes.js'
import { shimCandidates } from '../lib/shim-path.js'
import { applyShare, readShares } from './share.js'
import { finish, repoDir, selfCommand } from './common.js'

export interface SlurmActions {
  gres(ctx: { node: string; output: string | null; json: boolean }): Promise<number>
  prolog(): Promise<number>
  epilog(): Promise<number>
  taskProlog(): Promise<number>
  guard(ctx: { jobId: string }): Promise<number>
}

const stateDir = (): string => path.join(runDir(), 'slurm')
const stateFile = (jobId: string): string => path.join(stateDir(), `${jobId}.json`)
const guardPidFile = (jobId: string): string => path.join(stateDir(), `${jobId}.guard.pid`)
/** How long the guard waits for Slurm to make the job's cgroup, and the TaskProlog for its share. */
const CGROUP_WAIT_MS = 60_000
const shortHost = (): string => os.hostname().split('.')[0] ?? os.hostname()

function jobIdFromEnv(): string {
  const id = checkJobId(process.env.SLURM_JOB_ID)
  if (!id) {
    throw new CliError(
      `SLURM_JOB_ID is ${process.env.SLURM_JOB_ID === undefined ? 'not set' : `"${process.env.SLURM_JOB_ID}", not a job id`}`,
      'this command is run by slurmd (Prolog=, Epilog=, TaskProlog= in slurm.conf), which sets it',
      EXIT.usage,
    )
  }
  return id
}

/** `scontrol show job -d ID` through Slurm's own client. */
function scontrolJob(jobId: string): string {
  const scontrol = which('scontrol') ?? '/usr/bin/scontrol'
  const r = exec([scontrol, 'show', 'job', '-d', jobId], { timeoutMs: 30_000 })
  if (r.status !== 0) {
    throw new CliError(
      `\`scontrol show job -d ${jobId}\` failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`,
      'check that slurm-client is installed and slurmctld answers (`scontrol ping`)',
      EXIT.failed,
    )
  }
  return r.stdout
}

/** Every directory below the cgroup2 mount, at most `depth` levels down, relative to it. */
function cgroupDirs(mount: string, depth: number): string[] {
  const out: string[] = []
  const walk = (rel: string, level: number): void => {
    if (level > depth) return
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(path.join(mount, rel), { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue
      const child = rel ? `${rel}/${e.name}` : e.name
      out.push(child)
      walk(child, level + 1)
    }
  }
  walk('', 1)
  return out
}

/** The job's cgroup v2 directory (absolute), or null when Slurm has not made one. */
export function findJobCgroup(jobId: string, mount = cgroupRoot()): string | null {
  // slurmstepd.scope sits under system.slice (systemd) or where IgnoreSystemd=yes puts it: 4 levels.
  const rel = pickJobCgroup(cgroupDirs(mount, 4), jobId)
  return rel === null ? null : path.join(mount, rel)
}

/** Every pid in a cgroup and its descendants. */
function pidsBelow(dir: string): number[] {
  const pids: number[] = []
  const walk = (d: string): void => {
    let entries: fs.Dirent[]
    try {
      for (const p of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.push(Number(p))
      entries = fs.readdirSync(d, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name))
  }
  walk(dir)
  return pids
}

export async function slurmGres(ctx: { node: string; output: string | null; json: boolean }): Promise<number> {
  const device = Device.open({ writable: false })
  let poolBytes: number
  try {
    poolBytes = device.info().poolBytes
  } finally {
    device.close()
  }
  const conf = gresConfig(poolBytes, ctx.node)
  if (conf.count === 0) warn(`the pool holds ${formatSize(poolBytes)}, less than 1 GiB: Slurm gets Count=0`)
  if (ctx.output) {
    fs.mkdirSync(path.dirname(ctx.output), { recursive: true })
    const tmp = `${ctx.output}.${process.pid}.tmp`
    fs.writeFileSync(
      tmp,
      `# written by \`spillway slurm gres --output\`: the pool holds ${formatSize(poolBytes)}\n${conf.gresConf}\n`,
    )
    fs.renameSync(tmp, ctx.output)
  }
  if (ctx.json) printJson({ poolBytes, count: conf.count, gresConf: conf.gresConf, nodeGres: conf.nodeGres })
  else print(`# gres.conf (or a file it Includes)\n${conf.gresConf}\n# slurm.conf\nGresTypes=spillway\n${conf.nodeGres}`)
  return 0
}

function writeState(state: SlurmJobState): void {
  fs.mkdirSync(stateDir(), { recursive: true, mode: 0o755 })
  const tmp = `${stateFile(state.jobId)}.${process.pid}.tmp`
  fs.writeFileSync(tmp, JSON.stringify(state) + '\n', { mode: 0o644 })
  fs.renameSync(tmp, stateFile(state.jobId))
}

/**
 * Slurm 22.05 makes the job's cgroup (the extern step of PrologFlags=Contain) only after the
 * prolog has returned, so the prolog records the allocation and starts the guard, which sets the
 * share as soon as the cgroup exists; the TaskProlog waits for that before the job's tasks run.
 */
export async function slurmProlog(): Promise<number> {
  const jobId = jobIdFromEnv()
  const node = process.env.SLURMD_NODENAME ?? shortHost()
  const alloc = jobAllocation(scontrolJob(jobId), node)
  if (alloc.gib <= 0) return 0 // the job asked for no spillway GRES: nothing to give or protect
  // Fail here, where Slurm reports it, when no share can be set at all.
  const device = Device.open({ writable: false })
  try {
    device.listShares()
  } finally {
    device.close()
  }
  writeState({ jobId, gib: alloc.gib, cgroup: null, cgroupId: null, error: null })
  startGuard(jobId)
  progress(`job ${jobId}: ${alloc.gib} GiB of the pool (${alloc.from}); the guard sets its cgroup's share`)
  return 0
}

/** Sets the job's share on its cgroup and registers it with watch; the state says how it went. */
function shareJobCgroup(state: SlurmJobState, cgroup: string): SlurmJobState {
  const bytes = state.gib * GiB
  try {
    const row = applyShare(cgroup, bytes, bytes)
    // Registered with watch, which freezes the job at critical pressure instead of the OOM killer.
    writeJob({
      id: `slurm-${state.jobId}`,
      pid: pidsBelow(cgroup)[0] ?? process.pid,
      cgroup,
      command: ['slurm', `job ${state.jobId}`],
      uid: Number(process.env.SLURM_JOB_UID ?? 0) || 0,
      startedAt: new Date().toISOString(),
    })
    return { ...state, cgroup, cgroupId: row.cgroupId }
  } catch (error) {
    return { ...state, cgroup, error: error instanceof Error ? error.message : String(error) }
  }
}

/** Starts `spillway slurm guard JOBID` in its own session, outside the job, for the job's lifetime. */
function startGuard(jobId: string): void {
  const [node, script] = selfCommand()
  const child = spawn(node as string, [script as string, 'slurm', 'guard', jobId], {
    detached: true,
    stdio: 'ignore',
  })
  child.unref()
  if (child.pid) fs.writeFileSync(guardPidFile(jobId), `${child.pid}\n`)
}

function stopGuard(jobId: string): void {
  try {
    const pid = Number(fs.readFileSync(guardPidFile(jobId), 'utf8').trim())
    if (Number.isInteger(pid) && pid > 0 && /slurm\0guard\0/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1')))
      process.kill(pid, 'SIGTERM')
  } catch {
    // already gone
  }
  fs.rmSync(guardPidFile(jobId), { force: true })
}

/**
 * Started by the prolog, outside the job, for the job's lifetime: waits for Slurm to make the
 * job's cgroup (at most CGROUP_WAIT_MS), sets its share, then gives every process in it
 * oom_score_adj -1000 (what `spillway run --oom-safe` gives its job), checking every 250 ms, until
 * the cgroup is gone or the epilog stops it.
 */
export async function slurmGuard(ctx: { jobId: string }): Promise<number> {
  let state = parseJobState(readOr(stateFile(ctx.jobId)))
  if (!state)
    throw new CliError(`no prolog state for job ${ctx.jobId}`, 'the guard is started by `spillway slurm prolog`', EXIT.usage)
  const deadline = Date.now() + CGROUP_WAIT_MS
  const done = new Set<number>()
  let stopped = false
  return new Promise((resolve) => {
    const tick = (): void => {
      if (stopped || !state) return resolve(0)
      if (state.cgroup === null) {
        const cgroup = findJobCgroup(ctx.jobId)
        if (cgroup === null) {
          if (Date.now() < deadline) return void setTimeout(tick, 100)
          writeState({
            ...state,
            error: `Slurm made no cgroup job_${ctx.jobId} under ${cgroupRoot()} (cgroup/v2 and PrologFlags=Contain?)`,
          })
          return resolve(1)
        }
        state = shareJobCgroup(state, cgroup)
        writeState(state)
        if (state.error) return resolve(1)
      }
      const cgroup = state.cgroup as string
      if (!fs.existsSync(cgroup)) return resolve(0) // the job has ended
      for (const pid of pidsBelow(cgroup)) {
        if (done.has(pid)) continue
        try {
          fs.writeFileSync(`/proc/${pid}/oom_score_adj`, '-1000')
          done.add(pid)
        } catch {
          // exited already
        }
      }
      setTimeout(tick, 250)
    }
    process.on('SIGTERM', () => {
      stopped = true
    })
    tick()
  })
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

export async function slurmEpilog(): Promise<number> {
  const jobId = jobIdFromEnv()
  const state = parseJobState(readOr(stateFile(jobId)))
  stopGuard(jobId)
  removeJob(`slurm-${jobId}`)
  if (!state) return 0 // the prolog gave this job nothing
  const row = state.cgroupId === null ? undefined : readShares().find((s) => s.cgroupId === state.cgroupId)
  if (row && state.cgroup && fs.existsSync(state.cgroup)) {
    try {
      applyShare(state.cgroup, 0, 0)
    } catch (error) {
      // removed meanwhile: the module dropped the share with it
      if (!(error instanceof CliError) || fs.existsSync(state.cgroup)) throw error
    }
  }
  const left = row ? formatSize(row.usedBytes) : '0 B'
  const problem = state.error ? ` (the share was never set: ${state.error})` : ''
  progress(`job ${jobId}: share of ${state.gib} GiB released${problem}; pool memory still charged to the job: ${left}`)
  fs.rmSync(stateFile(jobId), { force: true })
  return 0
}

/** The state once the guard has set the share (or failed to), waiting at most CGROUP_WAIT_MS. */
async function settledState(jobId: string): Promise<SlurmJobState | null> {
  const deadline = Date.now() + CGROUP_WAIT_MS
  for (;;) {
    const state = parseJobState(readOr(stateFile(jobId)))
    if (!state || state.cgroupId !== null || state.error !== null || Date.now() > deadline) return state
    await new Promise((r) => setTimeout(r, 100))
  }
}

export async function slurmTaskProlog(): Promise<number> {
  const jobId = jobIdFromEnv()
  const state = await settledState(jobId)
  if (!state) return 0
  if (state.cgroupId === null)
    process.stdout.write(`print spillway: job ${jobId} runs without its pool share: ${state.error ?? 'not set in time'}\n`)
  const shim = shimCandidates(process.env, repoDir()).find((f) => fs.existsSync(f)) ?? null
  const lines = exportLines(taskEnv({ gib: state.gib, shim, env: process.env }))
  // TaskProlog's stdout is read by slurmstepd: only `export`, `unset` and `print` lines.
  process.stdout.write(lines.map((l) => `${l}\n`).join(''))
  if (!shim) process.stdout.write(`print spillway: libspillway-cuda.so not found; CUDA calls do not spill\n`)
  return 0
}

const defaultActions: SlurmActions = {
  gres: slurmGres,
  prolog: slurmProlog,
  epilog: slurmEpilog,
  taskProlog: slurmTaskProlog,
  guard: slurmGuard,
}

export function slurmCommand(actions: SlurmActions = defaultActions): Command {
  const slurm = new Command('slurm').description('the pool as the Slurm generic resource `spillway` (GiB): see docs/cluster.md')
  slurm
    .command('gres')
    .description("the gres.conf line and slurm.conf NodeName fragment for this node's pool")
    .option('--node <name>', 'the NodeName in slurm.conf', shortHost())
    .option('--output <file>', 'also write the gres.conf line to FILE (for gres.conf `Include FILE`)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Count is the pool's size in whole GiB, as the loaded module reports it.

Examples:
  spillway slurm gres
  spillway slurm gres --output /run/spillway/gres.conf   # ExecStartPre of slurmd

Exit codes: 0 printed, 3 module not loaded, 4 may not open /dev/spillway.`,
    )
    .action(async (o: { node: string; output?: string; json?: boolean }) =>
      finish(await actions.gres({ node: o.node, output: o.output ?? null, json: o.json === true })),
    )
  slurm
    .command('prolog')
    .description("slurmd's Prolog: the job's cgroup share of the pool, registered with watch (root)")
    .addHelpText(
      'after',
      `
Reads SLURM_JOB_ID; the allocation from \`scontrol show job -d\`; the job's cgroup job_ID needs
CgroupPlugin=cgroup/v2 and PrologFlags=Contain. Jobs without the spillway GRES are left alone.

Examples:
  Prolog=/usr/lib/spillway/slurm/prolog      (slurm.conf; the package installs it)

Exit codes: 0 done, 1 failed (slurmd then drains the node), 2 no SLURM_JOB_ID, 3 module not loaded.`,
    )
    .action(async () => finish(await actions.prolog()))
  slurm
    .command('epilog')
    .description("slurmd's Epilog: clears the job's share and says what it still held (root)")
    .addHelpText(
      'after',
      '\nExamples:\n  Epilog=/usr/lib/spillway/slurm/epilog\n\nExit codes: 0 done, 1 failed, 2 no SLURM_JOB_ID.',
    )
    .action(async () => finish(await actions.epilog()))
  slurm
    .command('task-prolog')
    .description("slurmd's TaskProlog: exports the shim and the job's SPILLWAY_* budget into its tasks")
    .addHelpText(
      'after',
      `
Prints export lines: LD_PRELOAD (the shim), SPILLWAY_BACKEND=pool, SPILLWAY_SPILL_LIMIT (the
allocation), SPILLWAY_LOG=warn,stats (the shim's statistics at exit in the job's output).

Examples:
  TaskProlog=/usr/lib/spillway/slurm/task-prolog

Exit codes: 0 printed, 2 no SLURM_JOB_ID.`,
    )
    .action(async () => finish(await actions.taskProlog()))
  slurm
    .command('guard')
    .description("(started by prolog) keeps oom_score_adj -1000 on the job's processes while it runs")
    .argument('<jobid>', 'the Slurm job id')
    .addHelpText('after', '\nExamples:\n  spillway slurm guard 42\n\nExit codes: 0 the job ended, 2 no prolog state.')
    .action(async (jobId: string) => finish(await actions.guard({ jobId })))
  return slurm
}
