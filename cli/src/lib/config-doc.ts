// The settings of /etc/spillway/config.json as documented in spillway-config(5). config.ts checks
// them; test/cli/docs-gen.test.ts fails when this table and config.ts disagree on a key or a default.

export const CONFIG_PATH = '/etc/spillway/config.json'

export interface SettingDoc {
  key: string
  type: string
  default: unknown
  description: string
}

export const CONFIG_SETTINGS: SettingDoc[] = [
  {
    key: 'watch.freezeAtCritical',
    type: 'boolean',
    default: true,
    description:
      'freeze every job started with `spillway run --oom-safe` (cgroup.freeze) when the level becomes critical; thaw them when it is ok again',
  },
  {
    key: 'watch.killAfterCriticalSeconds',
    type: 'integer 0 to 86400, or null',
    default: null,
    description: 'kill the frozen jobs when critical has lasted this many seconds; null never kills',
  },
  {
    key: 'watch.psi.windowMs',
    type: 'integer 500 to 10000',
    default: 2000,
    description: 'the PSI trigger window, ms (the kernel wants multiples of 2000 from a process without CAP_SYS_RESOURCE)',
  },
  {
    key: 'watch.psi.holdMs',
    type: 'integer 0 to 600000',
    default: 10000,
    description: 'how long a fired PSI trigger keeps its level, ms (PSI has no "recovered" signal)',
  },
  {
    key: 'watch.psi.memorySomeWarnMs',
    type: 'integer below windowMs',
    default: 200,
    description: 'memory "some" stall time within the window that means warn, ms; 0 turns the trigger off',
  },
  {
    key: 'watch.psi.memoryFullCriticalMs',
    type: 'integer below windowMs',
    default: 400,
    description: 'memory "full" stall time within the window that means critical, ms; 0 turns the trigger off',
  },
  {
    key: 'watch.psi.ioFullWarnMs',
    type: 'integer below windowMs',
    default: 800,
    description: 'io "full" stall time within the window that means warn, ms; 0 turns the trigger off',
  },
  {
    key: 'watch.hooks.ok',
    type: 'list of shell commands',
    default: [],
    description:
      'run when the level becomes ok, with SPILLWAY_LEVEL and SPILLWAY_PREV_LEVEL set; not awaited, their exit status is logged',
  },
  { key: 'watch.hooks.warn', type: 'list of shell commands', default: [], description: 'run when the level becomes warn' },
  {
    key: 'watch.hooks.critical',
    type: 'list of shell commands',
    default: [],
    description: 'run when the level becomes critical',
  },
  {
    key: 'watch.logFormat',
    type: '"text" or "json"',
    default: 'text',
    description: 'text: one readable `event key=value` line per event (for journald); json: one JSON object per line',
  },
  {
    key: 'watch.metrics.textfile',
    type: 'absolute path ending in .prom, or null',
    default: null,
    description: "Prometheus metrics written atomically to this file, for node_exporter's textfile collector",
  },
  {
    key: 'watch.metrics.listen',
    type: '"[HOST:]PORT" or null',
    default: null,
    description: 'serve the metrics over HTTP at /metrics (127.0.0.1 unless a host is given)',
  },
  {
    key: 'watch.metrics.intervalSeconds',
    type: 'integer, 1 to 3600',
    default: 15,
    description: 'how often the metrics file is rewritten',
  },
  {
    key: 'watch.oomAdjust.enabled',
    type: 'boolean',
    default: true,
    description:
      'lower the oom_score_adj of each process that maps pool buffers by what cancels its mapped pool pages, so the OOM killer judges it by its own memory (they count in its RSS, but killing it frees nothing); put it back when the mapping goes. Needs root',
  },
  {
    key: 'watch.oomAdjust.intervalMs',
    type: 'integer, 500 to 60000',
    default: 2000,
    description: 'how often /proc is scanned for processes that map pool buffers, ms; also at once when the level rises',
  },
]

/** The settings as a config file object ({"watch": {"psi": {...}}}), each at its default. */
export function defaultsAsFile(settings: SettingDoc[] = CONFIG_SETTINGS): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  for (const { key, default: value } of settings) {
    const parts = key.split('.')
    let node = root
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>
    node[parts.at(-1) as string] = value
  }
  return root
}
