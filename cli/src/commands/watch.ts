// spillway watch: the daemon. Reads the module's events and PSI triggers, logs one JSON line per
// event, and acts by policy: hooks at each level, freeze --oom-safe jobs at critical, thaw at ok.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { Command, InvalidArgumentError } from 'commander'
import { CliError, EXIT } from '../errors.js'
import { readConfig } from '../io/config-file.js'
import { Device, binding } from '../io/device.js'
import { isFrozen, jobsDir, killCgroup, listJobs, runDir, setFrozen } from '../io/jobs.js'
import { watchPidFile } from '../io/watch-pid.js'
import { psiTriggerLine } from '../lib/config.js'
import type { Config, PsiTrigger } from '../lib/config.js'
import type { JobRecord } from '../lib/jobs.js'
import { initialState, step } from '../lib/policy.js'
import type { Action, PolicyConfig, PolicyState, Signal } from '../lib/policy.js'
import { finish } from './common.js'

export interface WatchContext {
  configPath?: string
  psi: boolean
  killAfterCriticalSeconds?: number
}

type LogLine = Record<string, unknown> & { event: string }

export function logLine(line: LogLine): void {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...line }) + '\n')
}

const POLL_MS = 1000

interface PsiSource {
  fd: number
  trigger: PsiTrigger
}

export class Watcher {
  private state: PolicyState = initialState()
  private running = true
  private device: Device | null = null
  private psi: PsiSource[] = []
  private tick: NodeJS.Timeout | undefined
  private readonly policy: PolicyConfig
  private stopped!: () => void
  readonly done = new Promise<void>((resolve) => { this.stopped = resolve })

  constructor(private readonly config: Config, private readonly usePsi: boolean) {
    const w = config.watch
    this.policy = { freezeAtCritical: w.freezeAtCritical, killAfterCriticalMs: w.killAfterCriticalMs, psiHoldMs: w.psiHoldMs }
  }

  start(): void {
    fs.mkdirSync(jobsDir(), { recursive: true })
    this.openDevice()
    if (this.usePsi) for (const trigger of this.config.watch.psiTriggers) this.openPsi(trigger)
    // Written once the sources are open: `up` and the tests take the pid file as "ready".
    fs.writeFileSync(watchPidFile(), `${process.pid}\n`)
    // Jobs left frozen by a daemon that died are adopted, so they thaw when the level is ok.
    const adopted = listJobs().filter((job) => isFrozen(job.cgroup)).map((job) => job.id)
    this.state = { ...this.state, frozen: adopted }
    logLine({ event: 'start', pid: process.pid, module: this.device !== null, psi: this.psi.map((p) => `${p.trigger.resource} ${psiTriggerLine(p.trigger, this.config.watch.psiWindowMs)}`), adoptedFrozen: adopted, jobsDir: jobsDir() })
    if (this.device) void this.deviceLoop(this.device)
    for (const source of this.psi) void this.psiLoop(source)
    this.tick = setInterval(() => this.apply(undefined), POLL_MS)
    this.apply(undefined)
  }

  private openDevice(): void {
    try {
      this.device = Device.open({ writable: false })
      const info = this.device.info()
      // Start from the module's current level: events only report changes.
      this.state = { ...this.state, moduleLevel: (['ok', 'warn', 'critical'] as const)[info.level] ?? 'ok' }
      this.device.readEvents(256) // drop the backlog: it describes the past
    } catch (error) {
      this.device = null
      const why = error instanceof CliError ? `${error.message} (${error.hint})` : String(error)
      logLine({ event: 'source-missing', source: 'module', why })
    }
  }

  private openPsi(trigger: PsiTrigger): void {
    const file = `/proc/pressure/${trigger.resource}`
    const line = psiTriggerLine(trigger, this.config.watch.psiWindowMs)
    let fd: number | undefined
    try {
      fd = fs.openSync(file, 'r+')
      fs.writeSync(fd, `${line}\0`)
      this.psi.push({ fd, trigger })
    } catch (error) {
      if (fd !== undefined) fs.closeSync(fd)
      logLine({ event: 'source-missing', source: 'psi', file, trigger: line, why: (error as Error).message })
    }
  }

  private async deviceLoop(device: Device): Promise<void> {
    while (this.running) {
      let readable: boolean
      try {
        readable = await device.waitForEvents(POLL_MS)
      } catch (error) {
        logLine({ event: 'error', source: 'module', why: (error as Error).message })
        return
      }
      if (!this.running || !readable) continue
      for (const e of device.readEvents()) {
        logLine({ event: 'module', ...e })
        if (e.type === 'level' && (e.level === 'ok' || e.level === 'warn' || e.level === 'critical')) {
          this.apply({ source: 'module', level: e.level })
        }
      }
    }
  }

  private async psiLoop(source: PsiSource): Promise<void> {
    const native = binding()
    const POLLPRI = Number(native.constants.POLLPRI)
    const POLLERR = Number(native.constants.POLLERR)
    while (this.running) {
      const revents = await native.poll(source.fd, POLLPRI, POLL_MS)
      if (!this.running) return
      if (revents & POLLERR) {
        logLine({ event: 'error', source: 'psi', resource: source.trigger.resource, why: 'the trigger was destroyed' })
        return
      }
      if (revents & POLLPRI) {
        const t = source.trigger
        logLine({ event: 'psi', resource: t.resource, kind: t.kind, stallMs: t.stallMs, windowMs: this.config.watch.psiWindowMs, level: t.level })
        this.apply({ source: 'psi', trigger: `${t.resource} ${t.kind}`, level: t.level })
      }
    }
  }

  private apply(signal: Signal | undefined): void {
    const jobs = listJobs((file, problem) => logLine({ event: 'bad-job-file', file, problem }))
    const result = step(this.state, { now: Date.now(), signal, jobs: jobs.map((j) => j.id) }, this.policy)
    this.state = result.state
    for (const action of result.actions) this.perform(action, jobs)
  }

  private perform(action: Action, jobs: JobRecord[]): void {
    const job = 'jobId' in action ? jobs.find((j) => j.id === action.jobId) : undefined
    try {
      switch (action.kind) {
        case 'level':
          logLine({ event: 'level', level: action.level, prev: action.prev })
          return
        case 'hooks':
          for (const command of this.config.watch.hooks[action.level]) this.runHook(command, action.level, action.prev)
          return
        case 'freeze':
          if (job) setFrozen(job.cgroup, true)
          logLine({ event: 'freeze', job: action.jobId, pid: job?.pid })
          return
        case 'thaw':
          if (job) setFrozen(job.cgroup, false)
          logLine({ event: 'thaw', job: action.jobId, pid: job?.pid })
          return
        case 'kill':
          if (job) killCgroup(job.cgroup)
          logLine({ event: 'kill', job: action.jobId, pid: job?.pid })
          return
      }
    } catch (error) {
      logLine({ event: 'error', action: action.kind, job: 'jobId' in action ? action.jobId : undefined, why: (error as Error).message })
    }
  }

  private runHook(command: string, level: string, prev: string): void {
    const child = spawn('/bin/sh', ['-c', command], { stdio: 'ignore', env: { ...process.env, SPILLWAY_LEVEL: level, SPILLWAY_PREV_LEVEL: prev } })
    child.once('error', (error) => logLine({ event: 'hook', level, command, error: error.message }))
    child.once('exit', (code, signal) => logLine({ event: 'hook', level, command, exitCode: code, signal }))
  }

  /** Stops the loops and thaws every job this daemon froze: a stopped daemon must not strand jobs. */
  stop(reason: string): void {
    if (!this.running) return
    this.running = false
    clearInterval(this.tick)
    const jobs = listJobs()
    for (const id of this.state.frozen) this.perform({ kind: 'thaw', jobId: id }, jobs)
    this.state = { ...this.state, frozen: [] }
    // The loops notice `running` within one poll period; the fds close after that.
    setTimeout(() => {
      this.device?.close()
      for (const source of this.psi) fs.closeSync(source.fd)
      fs.rmSync(watchPidFile(), { force: true })
      logLine({ event: 'stop', reason })
      this.stopped()
    }, POLL_MS + 100)
  }
}

export async function watchAction(ctx: WatchContext): Promise<number> {
  const config = readConfig(ctx.configPath)
  if (ctx.killAfterCriticalSeconds !== undefined) config.watch.killAfterCriticalMs = ctx.killAfterCriticalSeconds * 1000
  try {
    fs.mkdirSync(jobsDir(), { recursive: true })
    fs.accessSync(runDir(), fs.constants.W_OK)
  } catch (error) {
    throw new CliError(`watch can not write its run directory ${runDir()}: ${(error as Error).message}`,
      'run it as root (the systemd unit does), or point SPILLWAY_RUN_DIR at a writable directory', EXIT.permission, { cause: error })
  }
  const watcher = new Watcher(config, ctx.psi)
  const onSignal = (signal: NodeJS.Signals) => watcher.stop(signal)
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  watcher.start()
  await watcher.done
  process.off('SIGTERM', onSignal)
  process.off('SIGINT', onSignal)
  return 0
}

export function watchCommand(action = watchAction): Command {
  return new Command('watch')
    .description('the daemon: log pressure events as JSON lines, run hooks, freeze --oom-safe jobs at critical and thaw them at ok')
    .option('--config <file>', 'settings (default /etc/spillway/config.json; see docs/admin-guide.md)')
    .option('--no-psi', 'do not create PSI triggers; use only the module\'s events')
    .option('--kill-after-critical <seconds>', 'kill frozen jobs once critical has lasted this long (default: never kill)', (v) => {
      const n = Number(v)
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number of seconds')
      return n
    })
    .addHelpText('after', `
Each line on stdout is one JSON object: start, module (an event record of /dev/spillway), psi
(a PSI trigger fired), level (the effective level changed), hook, freeze, thaw, kill, error, stop.
SIGTERM or SIGINT thaws every job it froze, then exits.

Examples:
  sudo spillway watch
  sudo spillway watch --config /etc/spillway/config.json | tee -a /var/log/spillway.jsonl
  sudo systemctl start spillway-watch      # the same, as the installed service

Exit codes: 0 stopped by a signal, 2 bad config, 4 not allowed to create the run directory.`)
    .action(async (o: { config?: string; psi: boolean; killAfterCritical?: number }) =>
      finish(await action({ configPath: o.config, psi: o.psi, killAfterCriticalSeconds: o.killAfterCritical })))
}
