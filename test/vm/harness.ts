// Typed helpers for tap tests that need a Debian kernel: fetch it, build the module against it and
// run a command in a QEMU guest (see README.md). Import as '../vm/harness.js'.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, '..', '..')

/** Every kernel series the harness can fetch, boot and build for. */
export const KNOWN_KERNELS = ['6.1', '6.12', '7.2'] as const
/** The kernels tested when SPILLWAY_KERNELS is not set. */
export const DEFAULT_KERNELS = ['6.1', '6.12', '7.2']

export interface KernelDir {
  /** cache dir: vmlinuz, lib/modules/RELEASE, headers/, release */
  dir: string
  /** uname -r of the kernel */
  release: string
}

export interface VmOptions {
  kernel: string
  command: string[]
  memMb?: number
  smp?: number
  nvme?: boolean
  swapMb?: number
  timeoutS?: number
  /** extra SPILLWAY_* variables to set inside the guest */
  env?: Record<string, string>
  /** copy the console to this file as well */
  logFile?: string
}

export interface VmResult {
  /** the command's exit status; 124 = VM timeout, 125 = the VM failed (see failure) */
  code: number
  /** the guest console (cleaned of escape sequences), then run-vm's own messages */
  output: string
  /** run-vm's explanation when the VM itself failed (timeout, panic, no exit status), else null */
  failure: string | null
  /** seconds from start until the command began in the guest, null if it never did */
  bootSeconds: number | null
  /** seconds for the whole run */
  totalSeconds: number
}

export interface TapResult {
  name: string
  ok: boolean
  /** the `# ` lines printed after the result line, without the `# ` */
  diag: string
}

/** SPILLWAY_KERNELS (a comma list) or DEFAULT_KERNELS; unknown names are an error. */
export function kernelsUnderTest(): string[] {
  const env = process.env.SPILLWAY_KERNELS?.trim()
  if (!env) return [...DEFAULT_KERNELS]
  const list = env
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean)
  for (const k of list) {
    if (!(KNOWN_KERNELS as readonly string[]).includes(k)) {
      throw new Error(`SPILLWAY_KERNELS names unknown kernel '${k}'; known: ${KNOWN_KERNELS.join(', ')}`)
    }
  }
  return list
}

interface Spawned {
  code: number
  stdout: string
  stderr: string
}

/**
 * A line on stderr, which tap passes through as it comes (stdout is the test's TAP, buffered per
 * file): so that npm test is never silent for long.
 */
export function progress(message: string): void {
  process.stderr.write(`[${path.relative(repoRoot, process.argv[1] ?? '') || 'test'}] ${message}\n`)
}

/** Runs fn, saying what it does when it starts, every 60 s while it runs, and when it ends. */
export async function withProgress<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const start = Date.now()
  const elapsed = (): string => `${Math.round((Date.now() - start) / 1000)} s`
  progress(`${what}...`)
  const beat = setInterval(() => progress(`${what}: still running, ${elapsed()}`), 60_000)
  try {
    const result = await fn()
    progress(`${what}: done in ${elapsed()}`)
    return result
  } finally {
    clearInterval(beat)
  }
}

function spawnCollect(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
      if (process.env.SPILLWAY_VM_VERBOSE) process.stderr.write(d)
    })
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }))
  })
}

/** Fetches (or finds cached) the newest Debian kernel of a series. */
export async function prepareKernel(series: string): Promise<KernelDir> {
  const r = await withProgress(`kernel ${series}: fetching or finding it in the cache`, () =>
    spawnCollect('sh', [path.join(here, 'kernels.sh'), 'fetch', series]),
  )
  if (r.code !== 0) throw new Error(`kernels.sh fetch ${series} failed (exit ${r.code}):\n${r.stderr}`)
  const dir = r.stdout.trim().split('\n').pop() ?? ''
  const release = fs.readFileSync(path.join(dir, 'release'), 'utf8').trim()
  return { dir, release }
}

/**
 * Where buildModule builds for a series: under the repo, because the guest sees the host's tree but
 * has its own /tmp; one dir per process, so test files running at once do not clobber each other.
 */
export function moduleBuildDir(series: string): string {
  return path.join(here, 'build', `kmod-${series}-${process.pid}`)
}

const builds = new Map<string, Promise<string>>()
let cleanupRegistered = false

/** Builds kmod/ against a series' headers (warnings fail) and returns the .ko's path; once per process. */
export function buildModule(series: string): Promise<string> {
  let build = builds.get(series)
  if (!build) {
    build = buildModuleOnce(series)
    builds.set(series, build)
  }
  return build
}

async function buildModuleOnce(series: string): Promise<string> {
  const outdir = moduleBuildDir(series)
  if (!cleanupRegistered) {
    cleanupRegistered = true
    process.on('exit', () => {
      for (const s of builds.keys()) fs.rmSync(moduleBuildDir(s), { recursive: true, force: true })
    })
  }
  const r = await withProgress(`building spillway.ko for ${series}`, () =>
    spawnCollect('sh', [path.join(here, 'build-kmod.sh'), series, outdir]),
  )
  if (r.code !== 0) {
    throw new Error(`building the module for ${series} failed (exit ${r.code}):\n${r.stderr.split('\n').slice(-40).join('\n')}`)
  }
  const ko = path.join(outdir, 'spillway.ko')
  if (fs.existsSync(ko)) return ko
  const others = fs.readdirSync(outdir).filter((f) => f.endsWith('.ko'))
  if (others.length === 1 && others[0]) return path.join(outdir, others[0])
  throw new Error(`build-kmod.sh ${series} left no spillway.ko in ${outdir}`)
}

/** Boots a kernel and runs a command in it (see run-vm.mjs); the console is returned, not printed. */
export async function runInVm(opts: VmOptions): Promise<VmResult> {
  const args = [path.join(here, 'run-vm.mjs'), '--kernel', opts.kernel]
  if (opts.memMb !== undefined) args.push('--mem', String(opts.memMb))
  if (opts.smp !== undefined) args.push('--smp', String(opts.smp))
  if (opts.nvme) args.push('--nvme')
  if (opts.swapMb !== undefined) args.push('--swap', String(opts.swapMb))
  if (opts.timeoutS !== undefined) args.push('--timeout', String(opts.timeoutS))
  if (opts.logFile !== undefined) args.push('--log', opts.logFile)
  args.push('--', ...opts.command)
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (!k.startsWith('SPILLWAY_')) throw new Error(`runInVm env: only SPILLWAY_* names reach the guest, not '${k}'`)
    env[k] = v
  }
  const what = `VM with kernel ${opts.kernel}: ${opts.command.join(' ').slice(0, 80)}`
  let r = await withProgress(what, () => spawnCollect(process.execPath, args, env))
  if (panickedBeforeCommand(r.stderr)) {
    // Nothing of the test has run yet (no module loaded, no command started): the guest's boot
    // under TCG failed (seen once: 6.12, "Fatal exception in interrupt" in the idle loop at
    // 1.8 s, 2026-12-06). Boot it once more, and say so.
    progress(`${what}: the guest kernel panicked while booting, before the command started: booting it again`)
    r = await withProgress(`${what} (second boot)`, () => spawnCollect(process.execPath, args, env))
  }
  const failure =
    /^run-vm: [^:]+: (.*?)\. Last \d+ console lines:$/m.exec(r.stderr)?.[1] ??
    (r.code === 124 || r.code === 125 ? r.stderr.trim() || `run-vm exited ${r.code}` : null)
  const timing = /command started at ([0-9.?]+) s, total ([0-9.]+) s/.exec(r.stderr)
  const boot = timing?.[1] && timing[1] !== '?' ? Number(timing[1]) : null
  return {
    code: r.code,
    output: r.stdout + (r.stderr ? `\n${r.stderr}` : ''),
    failure,
    bootSeconds: boot,
    totalSeconds: timing?.[2] ? Number(timing[2]) : Number.NaN,
  }
}

/** Whether run-vm's report says the guest panicked before the command started. */
export function panickedBeforeCommand(stderr: string): boolean {
  return /^run-vm: [^:]+: the guest kernel panicked: /m.test(stderr) && /command started at \? s/.test(stderr)
}

/**
 * Reads TAP result lines (`ok N - name`, `not ok N - name`, an optional `# SKIP/TODO ...` directive
 * kept in diag) and the `# ` lines that follow each one.
 */
export function parseTap(output: string): TapResult[] {
  const results: TapResult[] = []
  let last: TapResult | null = null
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\r$/, '')
    const m = /^(not )?ok\b\s*(\d+)?\s*(?:-\s*)?(.*)$/.exec(line)
    if (m) {
      const [, not, , rest = ''] = m
      const directive = /\s+#\s*((?:SKIP|TODO)\b.*)$/i.exec(rest)
      const name = (directive ? rest.slice(0, directive.index) : rest).trim()
      last = { name, ok: !not, diag: directive?.[1] ?? '' }
      results.push(last)
    } else if (last && /^#( |$)/.test(line)) {
      last.diag += (last.diag ? '\n' : '') + line.replace(/^# ?/, '')
    } else if (line.trim() !== '' && !/^\[\s*\d+\.\d+\]/.test(line)) {
      // Kernel messages may come between a result and its diagnostics; anything else ends them.
      last = null
    }
  }
  return results
}

/** The `1..N` plan a guest test printed, or null. */
export function tapPlan(output: string): number | null {
  const m = /^1\.\.(\d+)\b/m.exec(output)
  return m?.[1] ? Number(m[1]) : null
}

/**
 * Console lines that show a kernel bug: BUG:, WARNING:, Oops, kmemleak, general protection. TAP
 * lines (whose test names may say "no WARNING") count only when a kernel message was printed into
 * them, as a [ seconds] stamp before the match shows.
 */
export function kernelProblemLines(output: string): string[] {
  const problem = /BUG:|WARNING:|Oops|kmemleak|general protection/
  return output.split('\n').filter((line) => {
    const m = problem.exec(line)
    if (!m) return false
    if (!/^(not )?ok\b|^#/.test(line)) return true
    return /\[\s*\d+\.\d+\]/.test(line.slice(0, m.index))
  })
}

/** A limiter: `limit(() => job())` starts the job once fewer than `max` limited jobs run. */
export function concurrencyLimit(max: number): <T>(job: () => Promise<T>) => Promise<T> {
  let active = 0
  const waiting: Array<() => void> = []
  return async <T>(job: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve))
    active++
    try {
      return await job()
    } finally {
      active--
      waiting.shift()?.()
    }
  }
}
