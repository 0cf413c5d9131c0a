// spillway up: build the module if needed, load it with an auto-sized pool, start watch, show status.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Command } from 'commander'
import { CliError, EXIT } from '../errors.js'
import { print, progress } from '../io/console.js'
import { exec } from '../io/exec.js'
import { runDir } from '../io/jobs.js'
import { findModule, moduleLoaded, requireRoot } from '../io/kmod.js'
import { packagedSources } from '../io/install.js'
import { readHeadersFacts } from '../io/kernel-headers.js'
import { kernelRelease, systemdRunning } from '../io/system.js'
import { watchPid } from '../io/watch-pid.js'
import { PATHS } from '../lib/install-plan.js'
import { headersDir, missingHeaders } from '../lib/kernel-headers.js'
import { renderStatus } from '../lib/status.js'
import { finish, repoDir, selfCommand } from './common.js'
import { loadAction } from './load.js'
import { gatherStatus } from './status.js'

export interface UpContext {
  dryRun: boolean
}

/**
 * Builds kmod/ against the running kernel's headers; returns the .ko. A dry run prints the command and,
 * when the build could not run, why and what to do, and goes on so that the whole plan is shown.
 */
function buildModule(dryRun: boolean, problems: string[]): string {
  const release = kernelRelease()
  const src = moduleSourceDir(dryRun)
  const ko = path.join(src, 'spillway.ko')
  const headers = readHeadersFacts(release)
  const argv = ['make', `-j${os.availableParallelism()}`, '-C', headersDir(release), `M=${src}`, 'modules']
  const missing = headers.present ? null : missingHeaders(headers)
  if (dryRun) {
    print(`would run: ${argv.join(' ')}`)
    if (missing) {
      print(`  would fail: ${missing.problem}\n  what to do: ${missing.fix}`)
      problems.push(missing.problem)
    }
    return ko
  }
  if (missing) throw new CliError(missing.problem, `${missing.fix}; then run \`sudo spillway up\` again`, EXIT.failed)
  progress(`building spillway.ko for ${release} (about a minute)`)
  const result = exec(argv, { timeoutMs: 900_000 })
  if (result.status !== 0) {
    throw new CliError(
      `building the module failed: ${result.stderr.trim().split('\n').slice(-3).join(' / ')}`,
      'check that gcc and make are installed and the headers match the running kernel',
      EXIT.failed,
    )
  }
  return ko
}

/**
 * The checkout's kmod/, or, from the Debian package, a copy of its sources under the run dir: the
 * copy in /usr/src belongs to DKMS, and a build there would leave objects that dpkg does not know.
 */
export function moduleSourceDir(dryRun: boolean): string {
  const packaged = packagedSources(repoDir())
  if (packaged === undefined) return path.join(repoDir(), 'kmod')
  const copy = path.join(runDir(), 'kmod')
  if (dryRun) print(`would copy ${packaged}/kmod to ${copy} to build it there`)
  else fs.cpSync(path.join(packaged, 'kmod'), copy, { recursive: true })
  return copy
}

/** Polls until watch has written its pid file (it has then opened its sources), or gives up. */
export async function waitForWatch(child: ChildProcess | null, logWhere: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  while (watchPid() === null) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new CliError(
        `watch stopped at once (${child.exitCode !== null ? `exit ${child.exitCode}` : child.signalCode})`,
        `see ${logWhere}, or run \`sudo spillway watch\` to see the error`,
        EXIT.failed,
      )
    }
    if (Date.now() > end) throw new CliError(`watch did not start within ${timeoutMs / 1000} s`, `see ${logWhere}`, EXIT.failed)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function startWatch(dryRun: boolean): Promise<string> {
  if (watchPid() !== null) return 'already running'
  // The unit is used only where systemd runs it; elsewhere (a container, a chroot) watch is started here.
  if (fs.existsSync(PATHS.unit) && systemdRunning()) {
    if (dryRun) return 'would run: systemctl start spillway-watch.service'
    const result = exec(['systemctl', 'start', 'spillway-watch.service'])
    if (result.status !== 0)
      throw new CliError(
        `\`systemctl start spillway-watch\` failed: ${result.stderr.trim()}`,
        'see `journalctl -u spillway-watch`',
        EXIT.failed,
      )
    await waitForWatch(null, '`journalctl -u spillway-watch`', 30_000)
    return 'started spillway-watch.service'
  }
  const log = path.join(runDir(), 'watch.log')
  const [node = process.execPath, script = ''] = selfCommand()
  if (dryRun) return `would start: ${node} ${script} watch >> ${log}`
  fs.mkdirSync(runDir(), { recursive: true })
  const out = fs.openSync(log, 'a')
  const child = spawn(node, [script, 'watch'], { detached: true, stdio: ['ignore', out, out] })
  fs.closeSync(out)
  try {
    await waitForWatch(child, log, 30_000)
  } finally {
    child.unref()
  }
  return `started in the background (pid ${child.pid}, log ${log}); \`sudo spillway install\` makes it a systemd service`
}

export async function upAction(ctx: UpContext): Promise<number> {
  if (!ctx.dryRun) requireRoot('up')
  const problems: string[] = []
  if (moduleLoaded()) {
    progress('the module is already loaded')
  } else {
    let modulePath: string | undefined
    try {
      findModule(undefined, repoDir())
    } catch (error) {
      if (!(error instanceof CliError) || error.exitCode !== EXIT.noModule) throw error
      modulePath = buildModule(ctx.dryRun, problems)
    }
    await loadAction({ pool: 'auto', testIoctls: false, modulePath, force: false, dryRun: ctx.dryRun })
  }
  const watch = await startWatch(ctx.dryRun)
  progress(`watch: ${watch}`)
  if (ctx.dryRun) {
    if (problems.length)
      print(`\nthe dry run found ${problems.length} step${problems.length === 1 ? '' : 's'} that would fail (see above)`)
    return problems.length ? EXIT.failed : EXIT.ok
  }
  print(renderStatus(await gatherStatus()))
  return 0
}

export function upCommand(action = upAction): Command {
  return new Command('up')
    .description(
      'one command on a real host: build the module if needed, load it with an auto-sized pool, start watch, print status (needs root)',
    )
    .option('--dry-run', 'print what would be done')
    .addHelpText(
      'after',
      `
Examples:
  sudo spillway up
  spillway up --dry-run

Exit codes: 0 up, 1 a step failed (build, load, watch), or with --dry-run would fail, 4 not root.`,
    )
    .action(async (o: { dryRun?: boolean }) => finish(await action({ dryRun: o.dryRun === true })))
}
