// The daemon's metrics in Prometheus's text exposition format (version 0.0.4), the same text for the
// node_exporter textfile collector and for watch's HTTP endpoint. Written here rather than with
// prom-client: a dozen gauges and counters that are read from the module at scrape time need no
// registry, and a pure function of one snapshot is tested line by line (docs/design-cli.md).
import type { Holder } from './holders.js'
import { LEVEL } from './uapi.js'
import type { LevelName } from './uapi.js'

export interface MetricsSnapshot {
  version: string
  /** The module's numbers (SPILLWAY_IOC_INFO); null when it is not loaded. */
  module: {
    poolBytes: number
    requestedBytes: number
    usedBytes: number
    freeBytes: number
    floorBytes: number
    releasedBytes: number
    buffers: number
    /** capacity lent to GPU drivers (ABI 1.3) */
    lentBytes: number
    events: number
    level: number
    memAvailable: number
    swapFree: number
  } | null
  /** The level the daemon acts on (module and PSI together). */
  level: LevelName
  jobs: number
  frozenJobs: number
  counters: DaemonCounters
  holders: Holder[] | null
}

/** What the daemon counts from its own log since it started. */
export interface DaemonCounters {
  freezes: number
  thaws: number
  kills: number
  hookFailures: number
  /** PSI triggers fired, by "resource kind" (e.g. "memory full"). */
  psiFired: Record<string, number>
}

export function emptyCounters(): DaemonCounters {
  return { freezes: 0, thaws: 0, kills: 0, hookFailures: 0, psiFired: {} }
}

/** A label value, escaped as the format wants: backslash, double quote and newline. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

type Labels = Record<string, string | number>

class Exposition {
  private lines: string[] = []

  metric(name: string, type: 'gauge' | 'counter', help: string, samples: [Labels, number][]): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, value] of samples) {
      const keys = Object.keys(labels)
      const text = keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(String(labels[k]))}"`).join(',')}}` : ''
      this.lines.push(`${name}${text} ${Number.isFinite(value) ? value : 'NaN'}`)
    }
  }

  one(name: string, type: 'gauge' | 'counter', help: string, value: number): void {
    this.metric(name, type, help, [[{}, value]])
  }

  text(): string {
    return this.lines.join('\n') + '\n'
  }
}

export function renderMetrics(s: MetricsSnapshot): string {
  const out = new Exposition()
  out.metric('spillway_build_info', 'gauge', 'Always 1; the spillway version is the label.', [[{ version: s.version }, 1]])
  out.one('spillway_module_loaded', 'gauge', '1 when the spillway module is loaded and readable.', s.module ? 1 : 0)
  out.one('spillway_level', 'gauge', 'Pressure level watch acts on: 0 ok, 1 warn, 2 critical.', LEVEL[s.level])
  const m = s.module
  if (m) {
    out.one('spillway_module_level', 'gauge', 'Pressure level of the module watchdog: 0 ok, 1 warn, 2 critical.', m.level)
    out.one('spillway_pool_bytes', 'gauge', 'Bytes the pool holds now.', m.poolBytes)
    out.one('spillway_pool_requested_bytes', 'gauge', 'Bytes last asked for (load or resize).', m.requestedBytes)
    out.one('spillway_pool_used_bytes', 'gauge', 'Bytes in live buffers.', m.usedBytes)
    out.one('spillway_pool_free_bytes', 'gauge', 'Bytes in the pool not in any buffer.', m.freeBytes)
    out.one('spillway_pool_floor_bytes', 'gauge', 'Pressure never shrinks the pool below this.', m.floorBytes)
    out.one(
      'spillway_pool_released_bytes_total',
      'counter',
      'Bytes given back to the kernel under pressure since load.',
      m.releasedBytes,
    )
    out.one('spillway_pool_buffers', 'gauge', 'Live buffers.', m.buffers)
    out.one('spillway_pool_lent_bytes', 'gauge', 'Pool capacity lent to GPU drivers and not yet returned.', m.lentBytes)
    out.one('spillway_module_events_total', 'counter', 'Event records the module produced since load.', m.events)
    out.one('spillway_mem_available_bytes', 'gauge', "MemAvailable at the watchdog's last sample.", m.memAvailable)
    out.one('spillway_swap_free_bytes', 'gauge', "Free swap at the watchdog's last sample.", m.swapFree)
  }
  out.one('spillway_jobs', 'gauge', 'Registered --oom-safe jobs.', s.jobs)
  out.one('spillway_jobs_frozen', 'gauge', 'Jobs watch holds frozen now.', s.frozenJobs)
  out.one('spillway_freezes_total', 'counter', 'Jobs frozen since watch started.', s.counters.freezes)
  out.one('spillway_thaws_total', 'counter', 'Jobs thawed since watch started.', s.counters.thaws)
  out.one('spillway_kills_total', 'counter', 'Jobs killed since watch started.', s.counters.kills)
  out.one(
    'spillway_hook_failures_total',
    'counter',
    'Level hooks that exited non-zero or could not start.',
    s.counters.hookFailures,
  )
  const psi = Object.entries(s.counters.psiFired).sort(([a], [b]) => a.localeCompare(b))
  out.metric(
    'spillway_psi_fired_total',
    'counter',
    'PSI trigger events since watch started.',
    psi.map(([trigger, n]) => {
      const [resource = '', kind = ''] = trigger.split(' ')
      return [{ resource, kind }, n]
    }),
  )
  if (s.holders) {
    const labels = (h: Holder): Labels => ({ pid: h.pid, user: h.user ?? String(h.uid), command: h.command ?? '' })
    out.metric(
      'spillway_process_pool_bytes',
      'gauge',
      'Pool bytes each process holds in live buffers.',
      s.holders.map((h) => [labels(h), h.bytes]),
    )
    out.metric(
      'spillway_process_pool_buffers',
      'gauge',
      'Live buffers each process holds.',
      s.holders.map((h) => [labels(h), h.buffers]),
    )
    out.metric(
      'spillway_process_lent_bytes',
      'gauge',
      'Pool capacity each process lent to its GPU driver.',
      s.holders.map((h) => [labels(h), h.lentBytes]),
    )
  }
  return out.text()
}

/** "[HOST:]PORT" of --metrics-listen (port 0: any free one); the host defaults to 127.0.0.1 (the metrics name processes). */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:(\[[0-9a-fA-F:]+\]|[^:]+):)?(\d{1,5})$/.exec(text.trim())
  const port = Number(match?.[2])
  if (!match || !Number.isInteger(port) || port > 65535) {
    throw new Error(`"${text}" is not [HOST:]PORT, e.g. 9464 or 0.0.0.0:9464`)
  }
  return { host: (match[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port }
}
