// The watch daemon: reads the module's events and PSI triggers, feeds them to the policy (a pure state
// machine, lib/policy.ts) and performs the actions it returns: hooks at each level, freeze --oom-safe
// jobs at critical, thaw at ok. Every source is watched on node's event loop (uv_poll): no threads,
// no polling, and stop() is immediate. commands/watch.ts only parses options and starts this class.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { CliError } from '../errors.js'
import { Device } from '../io/device.js'
import { isFrozen, jobsDir, killCgroup, listJobs, setFrozen } from '../io/jobs.js'
import type { FdWatch } from '../io/native.js'
import { PsiTriggerFile, pressureFile } from '../io/psi.js'
import { watchPidFile } from '../io/watch-pid.js'
import { psiTriggerLine } from '../lib/config.js'
import type { Config } from '../lib/config.js'
import type { LogLine } from '../lib/watch-log.js'
import type { JobRecord } from '../lib/jobs.js'
import { afterFailures, initialState, step } from '../lib/policy.js'
import type { Action, PolicyConfig, PolicyState, Signal } from '../lib/policy.js'
import { knownLevel, parseLevelName } from '../lib/uapi.js'
import type { LevelName } from '../lib/uapi.js'

export type { LogLine } from '../lib/watch-log.js'
export type Log = (line: LogLine) => void

/** What a module plugged into the daemon sees of it. */
export interface DaemonView {
  log: Log
  config(): Config
  state(): Readonly<PolicyState>
  /** /dev/spillway, open read-only, or null when the module is not loaded. */
  device(): Device | null
}

/**
 * A part of the daemon that reacts to it (metrics, extra policies). Each hook is optional and runs on
 * the event loop; an exception in one is logged and does not stop the daemon.
 */
export interface WatchModule {
  name: string
  /** Once the sources are open, before the first policy step. */
  start?(daemon: DaemonView): void
  /** The effective level changed. */
  onLevel?(level: LevelName, prev: LevelName): void
  /** After every policy step (at least once a second). */
  onStep?(now: number): void
  /** Every line the daemon logs (the module's events, PSI, freeze, thaw, kill, hook, ...). */
  onLog?(line: LogLine): void
  /** The config was read again (SIGHUP); config() returns the new one. */
  onReload?(): void
  stop?(): void
}

/** The policy is re-stepped this often without a signal: PSI holds expire, new jobs get frozen. */
const TICK_MS = 1000

function policyOf(config: Config): PolicyConfig {
  const w = config.watch
  return { freezeAtCritical: w.freezeAtCritical, killAfterCriticalMs: w.killAfterCriticalMs, psiHoldMs: w.psiHoldMs }
}

export class Watcher implements DaemonView {
  private policyState: PolicyState = initialState()
  private running = false
  private dev: Device | null = null
  private deviceWatch: FdWatch | null = null
  private psi: PsiTriggerFile[] = []
  private tick: NodeJS.Timeout | undefined
  private policy: PolicyConfig
  private stopped!: () => void
  readonly done = new Promise<void>((resolve) => {
    this.stopped = resolve
  })

  constructor(
    private settings: Config,
    private readonly options: { psi: boolean; log: Log; modules?: WatchModule[] },
  ) {
    this.policy = policyOf(settings)
  }

  readonly log: Log = (line) => {
    this.options.log(line)
    for (const module of this.options.modules ?? []) {
      try {
        module.onLog?.(line)
      } catch {
        // a module's log hook must not make logging recurse
      }
    }
  }

  config(): Config {
    return this.settings
  }

  state(): Readonly<PolicyState> {
    return this.policyState
  }

  device(): Device | null {
    return this.dev
  }

  start(): void {
    this.running = true
    fs.mkdirSync(jobsDir(), { recursive: true })
    this.openDevice()
    if (this.options.psi) this.openPsi()
    // Written once the sources are open: `up` and the tests take the pid file as "ready".
    fs.writeFileSync(watchPidFile(), `${process.pid}\n`)
    // Jobs left frozen by a daemon that died are adopted, so they thaw when the level is ok.
    const adopted = listJobs()
      .filter((job) => isFrozen(job.cgroup))
      .map((job) => job.id)
    this.policyState = { ...this.policyState, frozen: adopted }
    this.log({
      event: 'start',
      pid: process.pid,
      module: this.dev !== null,
      psi: this.psi.map((p) => p.describe()),
      adoptedFrozen: adopted,
      jobsDir: jobsDir(),
    })
    this.forEachModule('start', (m) => m.start?.(this))
    this.tick = setInterval(() => this.apply(undefined), TICK_MS)
    this.apply(undefined)
  }

  private openDevice(): void {
    try {
      this.dev = Device.open({ writable: false })
      // Start from the module's current level: events only report changes.
      this.policyState = { ...this.policyState, moduleLevel: knownLevel(this.dev.info().level) }
      this.dev.readEvents(256) // drop the backlog: it describes the past
    } catch (error) {
      this.dev?.close()
      this.dev = null
      const why = error instanceof CliError ? `${error.message} (${error.hint})` : String(error)
      this.log({ event: 'source-missing', source: 'module', why })
      return
    }
    this.deviceWatch = this.dev.watchEvents(
      (events) => {
        for (const e of events) {
          this.log({ event: 'module', ...e })
          const level = parseLevelName(e.level)
          if (e.type === 'level' && level) this.apply({ source: 'module', level })
        }
      },
      (error) => this.log({ event: 'error', source: 'module', why: error.message }),
    )
  }

  /**
   * Takes a new config (SIGHUP): the policy, hooks and metrics take effect at once; PSI triggers are
   * created again only when they changed. Jobs frozen now stay frozen until the level is ok.
   */
  reload(next: Config): void {
    if (!this.running) return
    const psiLines = (c: Config) =>
      c.watch.psiTriggers.map((t) => `${t.resource} ${psiTriggerLine(t, c.watch.psiWindowMs)}`).join('; ')
    const psiChanged = psiLines(next) !== psiLines(this.settings)
    this.settings = next
    this.policy = policyOf(next)
    if (this.options.psi && psiChanged) {
      for (const source of this.psi) source.close()
      this.psi = []
      this.openPsi()
    }
    this.log({ event: 'reload', psi: this.psi.map((p) => p.describe()), psiChanged, policy: this.policy })
    this.forEachModule('reload', (m) => m.onReload?.())
    this.apply(undefined)
  }

  private openPsi(): void {
    const windowMs = this.settings.watch.psiWindowMs
    for (const trigger of this.settings.watch.psiTriggers) {
      let source: PsiTriggerFile
      try {
        source = PsiTriggerFile.open(trigger, windowMs)
      } catch (error) {
        const file = pressureFile(trigger.resource)
        this.log({
          event: 'source-missing',
          source: 'psi',
          file,
          trigger: psiTriggerLine(trigger, windowMs),
          why: (error as Error).message,
        })
        continue
      }
      source.onFire(
        () => {
          const t = source.trigger
          this.log({ event: 'psi', resource: t.resource, kind: t.kind, stallMs: t.stallMs, windowMs, level: t.level })
          this.apply({ source: 'psi', trigger: `${t.resource} ${t.kind}`, level: t.level })
        },
        (error) => this.log({ event: 'error', source: 'psi', resource: trigger.resource, why: error.message }),
      )
      this.psi.push(source)
    }
  }

  private apply(signal: Signal | undefined): void {
    if (!this.running) return
    const jobs = listJobs((file, problem) => this.log({ event: 'bad-job-file', file, problem }))
    const now = Date.now()
    const result = step(this.policyState, { now, signal, jobs: jobs.map((j) => j.id) }, this.policy)
    const failed = result.actions.filter((action) => !this.perform(action, jobs))
    this.policyState = afterFailures(result.state, failed)
    this.forEachModule('step', (m) => m.onStep?.(now))
  }

  /** Performs one action; false when it failed (logged as an error event). */
  private perform(action: Action, jobs: JobRecord[]): boolean {
    const job = 'jobId' in action ? jobs.find((j) => j.id === action.jobId) : undefined
    try {
      switch (action.kind) {
        case 'level':
          this.log({ event: 'level', level: action.level, prev: action.prev })
          this.forEachModule('level', (m) => m.onLevel?.(action.level, action.prev))
          return true
        case 'hooks':
          for (const command of this.settings.watch.hooks[action.level]) this.runHook(command, action.level, action.prev)
          return true
        case 'freeze':
          if (job) setFrozen(job.cgroup, true)
          this.log({ event: 'freeze', job: action.jobId, pid: job?.pid })
          return true
        case 'thaw':
          if (job) setFrozen(job.cgroup, false)
          this.log({ event: 'thaw', job: action.jobId, pid: job?.pid })
          return true
        case 'kill':
          if (job) killCgroup(job.cgroup)
          this.log({ event: 'kill', job: action.jobId, pid: job?.pid })
          return true
      }
    } catch (error) {
      this.log({
        event: 'error',
        action: action.kind,
        job: 'jobId' in action ? action.jobId : undefined,
        why: (error as Error).message,
      })
      return false
    }
    return true
  }

  private runHook(command: string, level: string, prev: string): void {
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: 'ignore',
      env: { ...process.env, SPILLWAY_LEVEL: level, SPILLWAY_PREV_LEVEL: prev },
    })
    child.once('error', (error) => this.log({ event: 'hook', level, command, error: error.message }))
    child.once('exit', (code, signal) => this.log({ event: 'hook', level, command, exitCode: code, signal }))
  }

  private forEachModule(hook: string, call: (module: WatchModule) => void): void {
    for (const module of this.options.modules ?? []) {
      try {
        call(module)
      } catch (error) {
        this.log({ event: 'error', module: module.name, hook, why: (error as Error).message })
      }
    }
  }

  /** Stops at once: thaws every job this daemon froze (a stopped daemon must not strand jobs), closes its sources. */
  stop(reason: string): void {
    if (!this.running) return
    this.running = false
    clearInterval(this.tick)
    const jobs = listJobs()
    for (const id of this.policyState.frozen) this.perform({ kind: 'thaw', jobId: id }, jobs)
    this.policyState = { ...this.policyState, frozen: [] }
    this.forEachModule('stop', (m) => m.stop?.())
    this.deviceWatch?.stop()
    this.dev?.close()
    for (const source of this.psi) source.close()
    this.psi = []
    fs.rmSync(watchPidFile(), { force: true })
    this.log({ event: 'stop', reason })
    this.stopped()
  }
}
