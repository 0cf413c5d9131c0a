// spillway watch: options and signals for the daemon (daemon/watcher.ts), which logs one JSON line
// per event and acts by policy: hooks at each level, freeze --oom-safe jobs at critical, thaw at ok.
import { Command, InvalidArgumentError } from 'commander'
import fs from 'node:fs'
import { Watcher } from '../daemon/watcher.js'
import type { LogLine } from '../daemon/watcher.js'
import { CliError, EXIT } from '../errors.js'
import { readConfig } from '../io/config-file.js'
import { jobsDir, runDir } from '../io/jobs.js'
import { finish } from './common.js'

export interface WatchContext {
  configPath?: string
  psi: boolean
  killAfterCriticalSeconds?: number
}

export function logLine(line: LogLine): void {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...line }) + '\n')
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
  const watcher = new Watcher(config, { psi: ctx.psi, log: logLine })
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
