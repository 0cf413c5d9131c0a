// spillway watch: options, config and signals for the daemon (daemon/watcher.ts), which logs one
// line per event and acts by policy: hooks at each level, freeze --oom-safe jobs at critical, thaw at
// ok; its metrics module (daemon/metrics.ts) exports Prometheus metrics when asked to.
import { Command, InvalidArgumentError, Option } from 'commander'
import fs from 'node:fs'
import { MetricsModule } from '../daemon/metrics.js'
import { OomAdjustModule } from '../daemon/oom-adjust.js'
import { Watcher } from '../daemon/watcher.js'
import { CliError, EXIT } from '../errors.js'
import { readConfig } from '../io/config-file.js'
import { handleStdoutClosed } from '../io/console.js'
import { jobsDir, runDir } from '../io/jobs.js'
import type { Config, LogFormat } from '../lib/config.js'
import { parseListen } from '../lib/metrics.js'
import { formatLogLine } from '../lib/watch-log.js'
import type { LogLine } from '../lib/watch-log.js'
import { finish } from './common.js'

export interface WatchContext {
  configPath?: string
  psi: boolean
  killAfterCriticalSeconds?: number
  logFormat?: LogFormat
  metricsFile?: string
  metricsListen?: string
}

/** The config file with the command line's settings on top (they win over the file's, also on SIGHUP). */
export function watchConfig(ctx: WatchContext): Config {
  const file = readConfig(ctx.configPath)
  const w = file.watch
  return {
    watch: {
      ...w,
      killAfterCriticalMs:
        ctx.killAfterCriticalSeconds !== undefined ? ctx.killAfterCriticalSeconds * 1000 : w.killAfterCriticalMs,
      logFormat: ctx.logFormat ?? w.logFormat,
      metrics: { ...w.metrics, textfile: ctx.metricsFile ?? w.metrics.textfile, listen: ctx.metricsListen ?? w.metrics.listen },
    },
  }
}

export async function watchAction(ctx: WatchContext): Promise<number> {
  let config = watchConfig(ctx)
  try {
    fs.mkdirSync(jobsDir(), { recursive: true })
    fs.accessSync(runDir(), fs.constants.W_OK)
  } catch (error) {
    throw new CliError(
      `watch can not write its run directory ${runDir()}: ${(error as Error).message}`,
      'run it as root (the systemd unit does), or point SPILLWAY_RUN_DIR at a writable directory',
      EXIT.permission,
      { cause: error },
    )
  }
  const log = (line: LogLine) => process.stdout.write(formatLogLine(line, config.watch.logFormat, new Date()) + '\n')
  const watcher = new Watcher(config, { psi: ctx.psi, log, modules: [new MetricsModule(), new OomAdjustModule()] })
  const onSignal = (signal: NodeJS.Signals) => watcher.stop(signal)
  // SIGHUP (systemctl reload): read the config again; a bad file is logged and the old one kept.
  const onHangup = () => {
    try {
      config = watchConfig(ctx)
    } catch (error) {
      const why = error instanceof CliError ? `${error.message} (${error.hint})` : (error as Error).message
      watcher.log({ event: 'reload-failed', why })
      return
    }
    watcher.reload(config)
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  process.on('SIGHUP', onHangup)
  handleStdoutClosed(() => watcher.stop('stdout closed'))
  watcher.start()
  await watcher.done
  process.off('SIGTERM', onSignal)
  process.off('SIGINT', onSignal)
  process.off('SIGHUP', onHangup)
  return 0
}

function metricsListenOption(text: string): string {
  try {
    parseListen(text)
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message)
  }
  return text
}

export function watchCommand(action = watchAction): Command {
  return new Command('watch')
    .description(
      'the daemon: log pressure events, run hooks, freeze --oom-safe jobs at critical and thaw them at ok, export metrics',
    )
    .option('--config <file>', 'settings (default /etc/spillway/config.json; see docs/admin-guide.md)')
    .option('--no-psi', "do not create PSI triggers; use only the module's events")
    .option(
      '--kill-after-critical <seconds>',
      'kill frozen jobs once critical has lasted this long (default: never kill)',
      (v) => {
        const n = Number(v)
        if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number of seconds')
        return n
      },
    )
    .addOption(
      new Option('--log-format <format>', 'text: one readable line per event (default); json: one JSON object per line').choices([
        'text',
        'json',
      ]),
    )
    .option('--metrics-file <file.prom>', "write Prometheus metrics to this file for node_exporter's textfile collector")
    .option(
      '--metrics-listen <[host:]port>',
      'serve Prometheus metrics at http://HOST:PORT/metrics (host 127.0.0.1 unless given)',
      metricsListenOption,
    )
    .addHelpText(
      'after',
      `
Each line on stdout is one event: start, module (an event record of /dev/spillway), psi (a PSI
trigger fired), level (the effective level changed), hook, freeze, thaw, kill, reload, error, stop;
as "event key=value ..." or, with --log-format json, as a JSON object with its time.
SIGHUP reads the config again (systemctl reload spillway-watch); SIGTERM or SIGINT thaws every job
it froze, then exits.

Examples:
  sudo spillway watch
  sudo spillway watch --log-format json | tee -a /var/log/spillway.jsonl
  sudo spillway watch --metrics-file /var/lib/prometheus/node-exporter/spillway.prom
  sudo spillway watch --metrics-listen 9464 && curl -s localhost:9464/metrics
  sudo systemctl start spillway-watch      # the installed service

Exit codes: 0 stopped by a signal, 2 bad config, 4 not allowed to create the run directory.`,
    )
    .action(
      async (o: {
        config?: string
        psi: boolean
        killAfterCritical?: number
        logFormat?: LogFormat
        metricsFile?: string
        metricsListen?: string
      }) =>
        finish(
          await action({
            configPath: o.config,
            psi: o.psi,
            killAfterCriticalSeconds: o.killAfterCritical,
            logFormat: o.logFormat,
            metricsFile: o.metricsFile,
            metricsListen: o.metricsListen,
          }),
        ),
    )
}
