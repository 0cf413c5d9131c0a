// Metrics of the watch daemon (a WatchModule): rewrites a .prom file for node_exporter's textfile
// collector every intervalSeconds, and serves GET /metrics over HTTP when asked to. Both are off
// unless configured (watch.metrics in the config, or --metrics-file / --metrics-listen).
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { listJobs } from '../io/jobs.js'
import { readText, userName } from '../io/system.js'
import { VERSION } from '../io/version.js'
import type { NativeBuffer } from '../io/native.js'
import { holders } from '../lib/holders.js'
import { emptyCounters, parseListen, renderMetrics } from '../lib/metrics.js'
import type { DaemonCounters, MetricsSnapshot } from '../lib/metrics.js'
import type { LogLine } from '../lib/watch-log.js'
import type { DaemonView, WatchModule } from './watcher.js'

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** Writes the file so that a reader never sees half of it (node_exporter's own advice). */
export function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`)
  fs.writeFileSync(tmp, text, { mode: 0o644 })
  fs.renameSync(tmp, file)
}

export class MetricsModule implements WatchModule {
  readonly name = 'metrics'
  private daemon: DaemonView | null = null
  private readonly counters: DaemonCounters = emptyCounters()
  private server: http.Server | null = null
  private serving: string | null = null
  private lastWrite = 0

  start(daemon: DaemonView): void {
    this.daemon = daemon
    this.configure()
  }

  onReload(): void {
    this.configure()
  }

  onLog(line: LogLine): void {
    const c = this.counters
    if (line.event === 'freeze') c.freezes++
    else if (line.event === 'thaw') c.thaws++
    else if (line.event === 'kill') c.kills++
    else if (line.event === 'hook' && (line.exitCode !== 0 || line.error !== undefined)) c.hookFailures++
    else if (line.event === 'psi') {
      const key = `${String(line.resource)} ${String(line.kind)}`
      c.psiFired[key] = (c.psiFired[key] ?? 0) + 1
    }
  }

  onStep(now: number): void {
    const settings = this.daemon?.config().watch.metrics
    if (!settings?.textfile || now - this.lastWrite < settings.intervalSeconds * 1000) return
    this.lastWrite = now
    try {
      writeAtomically(settings.textfile, this.render())
    } catch (error) {
      this.daemon?.log({ event: 'error', source: 'metrics', file: settings.textfile, why: (error as Error).message })
    }
  }

  stop(): void {
    this.server?.close()
    this.server = null
    this.serving = null
  }

  /** The exposition text now: the module read at this moment, the daemon's counters so far. */
  render(): string {
    return renderMetrics(this.snapshot())
  }

  private snapshot(): MetricsSnapshot {
    const daemon = this.daemon
    const device = daemon?.device() ?? null
    let module: MetricsSnapshot['module'] = null
    let held: MetricsSnapshot['holders'] = null
    if (device) {
      try {
        const info = device.info()
        module = { ...info }
        const withCommand = (b: NativeBuffer) => ({ ...b, command: readText(`/proc/${b.pid}/comm`)?.trim() ?? null })
        held = holders(device.listBuffers().map(withCommand), info.poolBytes, userName, device.listLoans().map(withCommand))
      } catch {
        module = null // unloaded under us: reported as not loaded
      }
    }
    return {
      version: VERSION,
      module,
      level: daemon?.state().level ?? 'ok',
      jobs: listJobs().length,
      frozenJobs: daemon?.state().frozen.length ?? 0,
      counters: this.counters,
      holders: held,
    }
  }

  /** Starts, moves or stops the HTTP endpoint to match the config. */
  private configure(): void {
    const listen = this.daemon?.config().watch.metrics.listen ?? null
    if (listen === this.serving) return
    this.stop()
    if (listen === null) return
    const { host, port } = parseListen(listen)
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('spillway serves only GET /metrics\n')
        return
      }
      res.writeHead(200, { 'content-type': CONTENT_TYPE }).end(this.render())
    })
    server.on('error', (error) => this.daemon?.log({ event: 'error', source: 'metrics', listen, why: error.message }))
    server.listen(port, host, () => {
      const address = server.address()
      const bound = typeof address === 'object' && address ? address.port : port
      this.daemon?.log({ event: 'metrics', listen: `${host}:${bound}`, path: '/metrics' })
    })
    this.server = server
    this.serving = listen
  }
}
