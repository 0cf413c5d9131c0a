// spillway status: the module, the pool, pressure, buffers, RAM and GPUs; works without the module.
import fs from 'node:fs'
import { Command, InvalidArgumentError } from 'commander'
import { CliError, EXIT } from '../errors.js'
import { finish } from './common.js'
import { outStyle, print, printJson } from '../io/console.js'
import { Device } from '../io/device.js'
import { isFrozen, listJobs } from '../io/jobs.js'
import { readSysfs } from '../io/sysfs.js'
import { kernelRelease, readGpus, readMemory, readText, userName } from '../io/system.js'
import { VERSION } from '../io/version.js'
import { holders } from '../lib/holders.js'
import { watchPid } from '../io/watch-pid.js'
import { renderStatus, statusExitCode, statusFrame } from '../lib/status.js'
import type { StatusReport } from '../lib/status.js'
import { DEVICE_PATH, levelName, reasonNames } from '../lib/uapi.js'

export interface StatusContext {
  json: boolean
  /** Repeat every this many seconds until Ctrl-C. */
  watchSeconds?: number
}

function moduleLoaded(): boolean {
  return fs.existsSync('/sys/module/spillway') || readSysfs() !== undefined
}

/** Opens the device read-only; says why not instead of throwing. */
function openDevice(missing: string[]): { device: Device | null; access: StatusReport['module']['access'] } {
  try {
    return { device: Device.open({ writable: false }), access: 'read-only' }
  } catch (error) {
    if (!(error instanceof CliError)) throw error
    if (error.exitCode === EXIT.noModule) return { device: null, access: 'missing' }
    if (error.exitCode === EXIT.permission) {
      missing.push(`you may not open ${DEVICE_PATH}: ${error.hint}`)
      return { device: null, access: 'denied' }
    }
    missing.push(`${error.message}: ${error.hint}`)
    return { device: null, access: 'no-binding' }
  }
}

export async function gatherStatus(): Promise<StatusReport> {
  const missing: string[] = []
  const [memory, gpus] = await Promise.all([readMemory(), readGpus()])
  const loaded = moduleLoaded()
  const report: StatusReport = {
    version: VERSION,
    kernel: kernelRelease(),
    module: { loaded, device: DEVICE_PATH, access: 'missing', abi: null, source: null },
    pool: null,
    pressure: null,
    buffers: null,
    loans: null,
    holders: null,
    events: [],
    memory,
    gpus: gpus.map((g) => ({ model: g.model, vramBytes: g.vramBytes, busAddress: g.busAddress })),
    jobs: listJobs().map((j) => ({ id: j.id, pid: j.pid, frozen: isFrozen(j.cgroup), command: j.command })),
    watch: { running: false, pid: null },
    missing,
  }
  const pid = watchPid()
  report.watch = { running: pid !== null, pid }

  if (!loaded) {
    missing.push(
      'the spillway module is not loaded: `sudo spillway load` (or `sudo spillway up` to build, load and start the watch daemon)',
    )
  } else {
    const { device, access } = openDevice(missing)
    report.module.access = access
    if (device) {
      try {
        const version = device.version()
        report.module.abi = { major: version.major, minor: version.minor }
        const info = device.info()
        report.module.source = 'ioctl'
        report.pool = {
          poolBytes: info.poolBytes,
          requestedBytes: info.requestedBytes,
          usedBytes: info.usedBytes,
          freeBytes: info.freeBytes,
          floorBytes: info.floorBytes,
          releasedBytes: info.releasedBytes,
          buffers: info.buffers,
          lentBytes: info.lentBytes,
        }
        report.pressure = {
          level: levelName(info.level),
          reasons: reasonNames(info.reason),
          watermarkWarnBytes: info.watermarkWarn,
          watermarkCriticalBytes: info.watermarkCritical,
        }
        report.buffers = device.listBuffers().map((b) => ({
          ...b,
          command: readText(`/proc/${b.pid}/comm`)?.trim() ?? null,
        }))
        report.loans = device.listLoans().map((l) => ({
          ...l,
          command: readText(`/proc/${l.pid}/comm`)?.trim() ?? null,
        }))
        report.holders = holders(report.buffers, info.poolBytes, userName, report.loans)
        report.events = device.readEvents().slice(-10)
      } finally {
        device.close()
      }
    }
    if (!report.pool) {
      const s = readSysfs()
      if (s) {
        report.module.source = 'sysfs'
        report.pool = {
          poolBytes: s.poolBytes,
          requestedBytes: s.requestedBytes,
          usedBytes: s.usedBytes,
          freeBytes: s.freeBytes,
          floorBytes: s.floorBytes,
          releasedBytes: s.releasedBytes,
          buffers: s.buffers,
          lentBytes: s.lentBytes,
        }
        report.pressure = {
          level: s.level ?? 'unknown',
          reasons: [],
          watermarkWarnBytes: s.watermarkWarnBytes,
          watermarkCriticalBytes: s.watermarkCriticalBytes,
        }
      }
    }
  }
  if (gpus.length === 0) missing.push('no NVIDIA GPU was found: jobs run, but there is no VRAM to extend (see `spillway doctor`)')
  if (!report.watch.running)
    missing.push(
      'the watch daemon is not running: `sudo systemctl start spillway-watch` (after `sudo spillway install`) or `spillway watch`',
    )
  return report
}

/** Sleeps, or returns early when the signal fires (Ctrl-C ends `status --watch`). */
function sleep(ms: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    stop.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        resolve()
      },
      { once: true },
    )
  })
}

const CLEAR_SCREEN = '\u001b[H\u001b[2J'

export async function statusAction(ctx: StatusContext): Promise<number> {
  if (ctx.watchSeconds === undefined) {
    const report = await gatherStatus()
    if (ctx.json) printJson(report)
    else print(renderStatus(report, outStyle()))
    return statusExitCode(report)
  }
  // Like `nvidia-smi -l`: a fresh report every N seconds until Ctrl-C; JSON as one line per report.
  const stop = new AbortController()
  const onSignal = () => stop.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const paint = outStyle()
  const clear = process.stdout.isTTY === true
  let code: number = EXIT.ok
  try {
    while (!stop.signal.aborted) {
      const report = await gatherStatus()
      code = statusExitCode(report)
      if (ctx.json) print(JSON.stringify(report))
      else print(`${clear ? CLEAR_SCREEN : ''}${statusFrame(report, new Date(), ctx.watchSeconds, paint)}${clear ? '' : '\n'}`)
      await sleep(ctx.watchSeconds * 1000, stop.signal)
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  return code
}

/** --watch [seconds]: how often to refresh; 2 s without a value, as watch(1). */
export function watchSecondsOption(text: string): number {
  const n = Number(text)
  if (!Number.isFinite(n) || n < 0.1 || n > 86_400)
    throw new InvalidArgumentError('must be a number of seconds from 0.1 to 86400')
  return n
}

export function statusCommand(action = statusAction): Command {
  return new Command('status')
    .description('show the module, the pool, memory pressure, who holds the pool, RAM and GPUs')
    .option('--json', 'print the report as JSON (with --watch: one line per report)')
    .option(
      '-w, --watch [seconds]',
      'print it again every SECONDS (default 2) until Ctrl-C, like nvidia-smi -l',
      watchSecondsOption,
    )
    .addHelpText(
      'after',
      `
Works without the module: it then says what is missing and how to fix it.

Examples:
  spillway status
  spillway status --json | jq .pool
  spillway status --watch 5
  spillway -q status; echo $?          # scripts: only the exit status

Exit codes: 0 loaded and pressure ok, 3 module not loaded, 7 pressure warn, 8 pressure critical,
1 failure. With --watch: those of the last report.`,
    )
    .action(async (opts: { json?: boolean; watch?: number | true }) => {
      const watchSeconds = opts.watch === true ? 2 : opts.watch
      finish(await action({ json: opts.json === true, watchSeconds }))
    })
}
