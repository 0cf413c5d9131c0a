// spillway run [--oom-safe] [--vram-limit SIZE] -- CMD...: runs CMD with the shim preloaded.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import { Command, InvalidArgumentError } from 'commander'
import { CliError, EXIT } from '../errors.js'
import { progress, warn } from '../io/console.js'
import { which } from '../io/exec.js'
import { cgroupBase, cgroupRoot, createCgroup, removeCgroup, removeJob, writeJob } from '../io/jobs.js'
import { watchPid } from '../io/watch-pid.js'
import { newJobId } from '../lib/jobs.js'
import { preloadValue, REPORT_MODES, type ReportMode, shimBanner, shimCandidates } from '../lib/shim-path.js'
import { finish, repoDir, sizeParser } from './common.js'

export interface RunContext {
  command: string[]
  oomSafe: boolean
  vramLimitBytes?: number
  /** SPILLWAY_REPORT for the job; unset: the shim's default (physical) or the caller's variable. */
  report?: ReportMode
  /** No line about the shim on stderr. */
  quiet?: boolean
}

export function findShim(env: NodeJS.ProcessEnv = process.env, root = repoDir()): string {
  if (env.SPILLWAY_SHIM && !fs.existsSync(env.SPILLWAY_SHIM)) {
    throw new CliError(
      `SPILLWAY_SHIM=${env.SPILLWAY_SHIM} does not exist`,
      'point SPILLWAY_SHIM at libspillway-cuda.so (`make -C shim` builds it), or unset it to use the installed one',
      EXIT.failed,
    )
  }
  const candidates = shimCandidates(env, root)
  const found = candidates.find((file) => fs.existsSync(file))
  if (!found) {
    throw new CliError(
      `libspillway-cuda.so was not found (looked at ${candidates.join(', ')})`,
      'build it with `make -C shim`, or point SPILLWAY_SHIM at it',
      EXIT.failed,
    )
  }
  return found
}

/** The job's environment: the shim first in LD_PRELOAD, its settings as SPILLWAY_* variables. */
export function jobEnv(base: NodeJS.ProcessEnv, shim: string, ctx: RunContext): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, LD_PRELOAD: preloadValue(shim, base.LD_PRELOAD) }
  if (ctx.vramLimitBytes !== undefined) env.SPILLWAY_VRAM_LIMIT = String(ctx.vramLimitBytes)
  if (ctx.report !== undefined) env.SPILLWAY_REPORT = ctx.report
  return env
}

/**
 * How the --oom-safe job starts: a shell puts itself into the job's cgroup, then execs the command
 * (as the sudo user when run through sudo), so no instruction of the job runs outside the cgroup.
 * LD_PRELOAD is set only for the exec, so the shell and setpriv do not load the shim.
 */
export function oomSafeArgv(procsFile: string, command: string[], env: NodeJS.ProcessEnv): string[] {
  const dropTo =
    env.SUDO_UID && env.SUDO_GID && process.getuid?.() === 0
      ? ['setpriv', `--reuid=${env.SUDO_UID}`, `--regid=${env.SUDO_GID}`, '--init-groups', '--']
      : []
  const script =
    'echo $$ > "$1" || exit 125; shift; LD_PRELOAD=$SPILLWAY_JOB_PRELOAD; export LD_PRELOAD; unset SPILLWAY_JOB_PRELOAD; exec "$@"'
  return ['/bin/sh', '-c', script, 'spillway-run', procsFile, ...dropTo, ...command]
}

/** A shell's convention: the exit code, or 128 + the number of the signal that killed it. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code
  return 128 + (signal ? os.constants.signals[signal] : 0)
}

function waitChild(argv: string[], env: NodeJS.ProcessEnv, onSpawn: (pid: number) => void): Promise<number> {
  const [file, ...args] = argv
  return new Promise((resolve, reject) => {
    const child = spawn(file ?? '', args, { stdio: 'inherit', env })
    const forward = (signal: NodeJS.Signals) => child.kill(signal)
    process.on('SIGTERM', forward)
    process.on('SIGHUP', forward)
    // SIGINT from a terminal reaches the job directly (same process group); only keep ourselves alive.
    const ignoreInt = () => {}
    process.on('SIGINT', ignoreInt)
    const cleanup = () => {
      process.off('SIGTERM', forward)
      process.off('SIGHUP', forward)
      process.off('SIGINT', ignoreInt)
    }
    child.once('spawn', () => onSpawn(child.pid ?? 0))
    child.once('error', (error: NodeJS.ErrnoException) => {
      cleanup()
      if (error.code === 'ENOENT')
        reject(new CliError(`${file}: command not found`, 'check the command after `--` (a full path works too)', 127))
      else reject(new CliError(`could not start ${file}: ${error.message}`, 'check that it is executable', 126))
    })
    child.once('exit', (code, signal) => {
      cleanup()
      // A shell reports 128 + N silently; say it, so a crash of the job is not mistaken for ours.
      if (signal) warn(`the job was ended by ${signal}`)
      resolve(exitCodeOf(code, signal))
    })
  })
}

/**
 * oom_score_adj -1000 for this process and, inherited, the job: watch freezes the job instead, and a
 * frozen job can not grow. Without it, 6.12's OOM killer was seen to make a second, stale kill right
 * after killing the real hog, taking the frozen job or this process (which alone reports the job's
 * exit status and removes its cgroup): docs/reliability.md.
 */
function exemptFromOomKiller(): void {
  try {
    fs.writeFileSync('/proc/self/oom_score_adj', '-1000')
  } catch {
    warn(
      'could not exempt the job from the OOM killer (lowering oom_score_adj needs CAP_SYS_RESOURCE, ' +
        'which root in some containers lacks): it relies on watch alone',
    )
  }
}

export async function runAction(ctx: RunContext): Promise<number> {
  if (ctx.command.length === 0)
    throw new CliError('no command given', 'put the command after --: `spillway run -- python train.py`', EXIT.usage)
  const shim = findShim()
  const env = jobEnv(process.env, shim, ctx)
  if (!ctx.quiet) progress(shimBanner(shim, env))
  if (!ctx.oomSafe) return waitChild(ctx.command, env, () => {})

  if (!fs.existsSync(`${cgroupRoot()}/cgroup.controllers`)) {
    throw new CliError(
      '--oom-safe needs cgroup v2 (the freezer), which is not mounted',
      'boot with systemd.unified_cgroup_hierarchy=1, or run without --oom-safe',
      EXIT.failed,
    )
  }
  if (env.SUDO_UID && !which('setpriv'))
    throw new CliError('setpriv is missing, so the job can not run as you under sudo', 'apt-get install util-linux', EXIT.failed)
  if (watchPid() === null)
    warn(
      'the watch daemon is not running, so nothing will freeze this job under pressure (`sudo systemctl start spillway-watch`)',
    )
  const id = newJobId(process.pid, new Date())
  let cgroup: string
  try {
    cgroup = createCgroup(id)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new CliError(
        `--oom-safe could not create the job's cgroup under ${cgroupBase()}`,
        'run it with sudo (the job itself then runs as you)',
        EXIT.permission,
        { cause: error },
      )
    }
    throw error
  }
  exemptFromOomKiller()
  const jobEnvWithPreload: NodeJS.ProcessEnv = {
    ...env,
    SPILLWAY_JOB_PRELOAD: env.LD_PRELOAD,
    LD_PRELOAD: process.env.LD_PRELOAD ?? '',
  }
  if (!jobEnvWithPreload.LD_PRELOAD) delete jobEnvWithPreload.LD_PRELOAD
  try {
    return await waitChild(oomSafeArgv(`${cgroup}/cgroup.procs`, ctx.command, env), jobEnvWithPreload, (pid) => {
      writeJob({
        id,
        pid,
        cgroup,
        command: ctx.command,
        uid: Number(env.SUDO_UID ?? process.getuid?.() ?? 0),
        startedAt: new Date().toISOString(),
      })
      progress(`job ${id} runs in ${cgroup}; watch freezes it at critical pressure`)
    })
  } finally {
    removeJob(id)
    removeCgroup(cgroup)
  }
}

export function runCommand(action = runAction): Command {
  return new Command('run')
    .description('run a command with the spillway CUDA shim preloaded')
    .argument('<command...>', 'the command and its arguments, after --')
    .option(
      '--oom-safe',
      'give the job its own cgroup, registered with `watch`, which freezes it at critical pressure and resumes it at ok',
    )
    .option(
      '--vram-limit <size>',
      'treat the GPU as having this much VRAM (SPILLWAY_VRAM_LIMIT)',
      sizeParser({ min: { bytes: 1, why: 'a VRAM limit of 0 leaves the job no VRAM at all; give what it may use, e.g. 20G' } }),
    )
    .option(
      '--report <mode>',
      `what the job is told about free memory: ${REPORT_MODES.join(' or ')} (SPILLWAY_REPORT; default physical)`,
      reportOption,
    )
    .option('-q, --quiet', 'do not print the line about the shim')
    .passThroughOptions()
    .addHelpText(
      'after',
      `
The shim is found through SPILLWAY_SHIM, then <repo>/shim/build/libspillway-cuda.so, then
/usr/local/lib/spillway/ and /usr/lib/spillway/. Other shim settings (SPILLWAY_LOG, ...) pass through.
A SPILLWAY_SHIM that does not exist is an error. --report virtual adds what can be spilled to the
free memory frameworks see (they then place more on the GPU: good for prefill-heavy batch jobs,
slow for llama.cpp's decode); physical, the default, reports VRAM only.

Examples:
  spillway run -- python train.py --epochs 3
  spillway run --vram-limit 8G -- ./bench
  sudo spillway run --oom-safe -- python train.py      # the job runs as you, in its own cgroup

Exit codes: the command's own exit code (128+N when killed by signal N); 127 command not found;
1 shim not found or no cgroup v2; 2 bad usage; 4 --oom-safe without permission for a cgroup.`,
    )
    .action(async (command: string[], o: { oomSafe?: boolean; vramLimit?: number; report?: ReportMode; quiet?: boolean }) =>
      finish(
        await action({
          command,
          oomSafe: o.oomSafe === true,
          vramLimitBytes: o.vramLimit,
          ...(o.report !== undefined ? { report: o.report } : {}),
          ...(o.quiet ? { quiet: true } : {}),
        }),
      ),
    )
}

function reportOption(value: string): ReportMode {
  const mode = REPORT_MODES.find((m) => m === value)
  if (!mode) throw new InvalidArgumentError(`--report ${value}: expected ${REPORT_MODES.join(' or ')}`)
  return mode
}
