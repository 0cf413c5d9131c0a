// The OOM adjustment of pool holders (a WatchModule; issue 14 B, docs/reliability.md): every few
// seconds, and at once when the level rises, finds the processes that map pool buffers and gives
// each the oom_score_adj that cancels its mapped pool pages (lib/oom-adjust.ts), so that the OOM
// killer judges it by its own memory; puts the adj back when the mapping goes or the daemon stops.
import { commandOf, isRoot, machinePages, readAdj, scanProcesses, writeAdj } from '../io/oom-adjust.js'
import { planAdjustments, restoreAll } from '../lib/oom-adjust.js'
import type { AdjustWrite, Adjusted } from '../lib/oom-adjust.js'
import type { LevelName } from '../lib/uapi.js'
import type { DaemonView, WatchModule } from './watcher.js'

export class OomAdjustModule implements WatchModule {
  readonly name = 'oom-adjust'
  private daemon: DaemonView | null = null
  private tracked = new Map<number, Adjusted>()
  private lastScan = 0
  private enabled = false

  start(daemon: DaemonView): void {
    this.daemon = daemon
    this.configure()
  }

  onReload(): void {
    this.configure()
  }

  private configure(): void {
    const wanted = this.daemon?.config().watch.oomAdjust.enabled ?? false
    if (wanted && !isRoot()) {
      this.daemon?.log({ event: 'source-missing', source: 'oom-adjust', why: 'changing oom_score_adj needs root' })
      this.enabled = false
    } else {
      this.enabled = wanted
    }
    if (!this.enabled) this.restore()
  }

  onStep(now: number): void {
    const interval = this.daemon?.config().watch.oomAdjust.intervalMs ?? 2000
    if (this.enabled && now - this.lastScan >= interval) this.scan(now)
  }

  /** Pressure is when the OOM killer may come: do not wait for the next interval. */
  onLevel(level: LevelName): void {
    if (this.enabled && level !== 'ok') this.scan(Date.now())
  }

  stop(): void {
    this.restore()
  }

  private scan(now: number): void {
    this.lastScan = now
    // Nothing to look for while the pool has no buffer and nobody is adjusted.
    const dev = this.daemon?.device() ?? null
    if (this.tracked.size === 0 && dev !== null && dev.info().buffers === 0) return
    const interesting = new Set(this.tracked.keys())
    const { writes, tracked } = planAdjustments(this.tracked, scanProcesses(interesting, machinePages()))
    this.tracked = tracked
    for (const w of writes) this.write(w)
  }

  private restore(): void {
    for (const w of restoreAll(this.tracked, readAdj)) this.write(w)
    this.tracked.clear()
  }

  private write(w: AdjustWrite): void {
    try {
      writeAdj(w.pid, w.adj)
      this.daemon?.log({
        event: 'oom-adjust',
        pid: w.pid,
        command: commandOf(w.pid),
        poolMiB: Math.round((w.poolPages * 4096) / 2 ** 20),
        adj: w.adj,
        base: w.base,
        why: w.why,
      })
    } catch (error) {
      // the process may have exited between the scan and the write
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && (error as NodeJS.ErrnoException).code !== 'ESRCH') {
        this.daemon?.log({ event: 'error', module: this.name, pid: w.pid, why: (error as Error).message })
      }
    }
  }
}
