// /etc/spillway/config.json: parsed and checked here (pure), read by io/config-file.ts.
import { parseListen } from './metrics.js'
import { LEVEL_NAMES } from './uapi.js'
import type { LevelName } from './uapi.js'

export interface PsiTrigger {
  /** /proc/pressure/<resource> */
  resource: 'memory' | 'io'
  kind: 'some' | 'full'
  /** Stall time within the window that fires the trigger, ms. */
  stallMs: number
  level: Exclude<LevelName, 'ok'>
}

export interface WatchConfig {
  freezeAtCritical: boolean
  /** null: never kill; else kill frozen jobs after critical has lasted this long. */
  killAfterCriticalMs: number | null
  psiWindowMs: number
  psiHoldMs: number
  psiTriggers: PsiTrigger[]
  hooks: Record<LevelName, string[]>
  /** text: one human-readable line per event (journald); json: one JSON object per line. */
  logFormat: LogFormat
  metrics: MetricsConfig
  oomAdjust: OomAdjustConfig
}

/** The OOM adjustment of pool holders (daemon/oom-adjust.ts). */
export interface OomAdjustConfig {
  enabled: boolean
  /** How often /proc is scanned for holders, ms (and at once when the level rises). */
  intervalMs: number
}

export type LogFormat = 'text' | 'json'

export interface MetricsConfig {
  /** File for node_exporter's textfile collector (written atomically); null: none. */
  textfile: string | null
  /** [HOST:]PORT of an HTTP endpoint serving /metrics; null: none. */
  listen: string | null
  /** How often the textfile is rewritten, seconds. */
  intervalSeconds: number
}

export interface Config {
  watch: WatchConfig
}

// Windows of 2 s let unprivileged users create triggers too (the kernel wants multiples of 2 s
// from them). Stall shares: lmkd uses 7 % some / 70 % full; systemd-oomd acts at 60 % over 30 s.
const PSI_DEFAULTS = { windowMs: 2000, holdMs: 10_000, memorySomeWarnMs: 200, memoryFullCriticalMs: 400, ioFullWarnMs: 800 }

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkKeys(obj: Record<string, Json>, where: string, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw new ConfigError(`${where}${key} is not a setting (known: ${allowed.join(', ')})`)
  }
}

function integer(value: Json | undefined, where: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${where} must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}`)
  }
  return value
}

function stringList(value: Json | undefined, where: string): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.trim() !== '')) {
    throw new ConfigError(`${where} must be a list of shell commands (strings)`)
  }
  return value as string[]
}

/** Checks a parsed config file and fills in defaults; throws ConfigError naming the bad setting. */
export function parseConfig(raw: unknown): Config {
  if (!isObject(raw)) throw new ConfigError('the file must hold a JSON object')
  checkKeys(raw, '', ['watch'])
  const watch = raw.watch ?? {}
  if (!isObject(watch)) throw new ConfigError('watch must be an object')
  checkKeys(watch, 'watch.', [
    'freezeAtCritical',
    'killAfterCriticalSeconds',
    'psi',
    'hooks',
    'logFormat',
    'metrics',
    'oomAdjust',
  ])

  const freeze = watch.freezeAtCritical ?? true
  if (typeof freeze !== 'boolean') throw new ConfigError('watch.freezeAtCritical must be true or false')

  const killSeconds = watch.killAfterCriticalSeconds
  const killAfterCriticalMs =
    killSeconds === undefined || killSeconds === null
      ? null
      : integer(killSeconds, 'watch.killAfterCriticalSeconds', 0, 86_400, 0) * 1000

  const psi = watch.psi ?? {}
  if (!isObject(psi)) throw new ConfigError('watch.psi must be an object')
  checkKeys(psi, 'watch.psi.', ['windowMs', 'holdMs', 'memorySomeWarnMs', 'memoryFullCriticalMs', 'ioFullWarnMs'])
  // The kernel accepts windows of 500 ms to 10 s, and a stall time below the window.
  const psiWindowMs = integer(psi.windowMs, 'watch.psi.windowMs', 500, 10_000, PSI_DEFAULTS.windowMs)
  const psiHoldMs = integer(psi.holdMs, 'watch.psi.holdMs', 0, 600_000, PSI_DEFAULTS.holdMs)
  const stall = (key: string, fallback: number) =>
    integer(psi[key], `watch.psi.${key}`, 0, psiWindowMs - 1, Math.min(fallback, psiWindowMs - 1))
  const psiTriggers: PsiTrigger[] = [
    {
      resource: 'memory' as const,
      kind: 'some' as const,
      level: 'warn' as const,
      stallMs: stall('memorySomeWarnMs', PSI_DEFAULTS.memorySomeWarnMs),
    },
    {
      resource: 'memory' as const,
      kind: 'full' as const,
      level: 'critical' as const,
      stallMs: stall('memoryFullCriticalMs', PSI_DEFAULTS.memoryFullCriticalMs),
    },
    {
      resource: 'io' as const,
      kind: 'full' as const,
      level: 'warn' as const,
      stallMs: stall('ioFullWarnMs', PSI_DEFAULTS.ioFullWarnMs),
    },
  ].filter((trigger) => trigger.stallMs > 0) // 0 turns a trigger off

  const hooksRaw = watch.hooks ?? {}
  if (!isObject(hooksRaw)) throw new ConfigError('watch.hooks must be an object with ok, warn and critical lists')
  checkKeys(hooksRaw, 'watch.hooks.', LEVEL_NAMES)
  const hooks = {
    ok: stringList(hooksRaw.ok, 'watch.hooks.ok'),
    warn: stringList(hooksRaw.warn, 'watch.hooks.warn'),
    critical: stringList(hooksRaw.critical, 'watch.hooks.critical'),
  }
  const logFormat = watch.logFormat ?? 'text'
  if (logFormat !== 'text' && logFormat !== 'json') throw new ConfigError('watch.logFormat must be "text" or "json"')

  const metricsRaw = watch.metrics ?? {}
  if (!isObject(metricsRaw)) throw new ConfigError('watch.metrics must be an object')
  checkKeys(metricsRaw, 'watch.metrics.', ['textfile', 'listen', 'intervalSeconds'])
  const textfile = metricsRaw.textfile ?? null
  if (textfile !== null && (typeof textfile !== 'string' || !textfile.startsWith('/') || !textfile.endsWith('.prom'))) {
    throw new ConfigError('watch.metrics.textfile must be an absolute path ending in .prom (node_exporter reads only those)')
  }
  const listen = metricsRaw.listen ?? null
  if (listen !== null) {
    if (typeof listen !== 'string') throw new ConfigError('watch.metrics.listen must be "[HOST:]PORT", e.g. "9464"')
    try {
      parseListen(listen)
    } catch (error) {
      throw new ConfigError(`watch.metrics.listen: ${(error as Error).message}`)
    }
  }
  const metrics = {
    textfile,
    listen,
    intervalSeconds: integer(metricsRaw.intervalSeconds, 'watch.metrics.intervalSeconds', 1, 3600, 15),
  }
  const oomRaw = watch.oomAdjust ?? {}
  if (!isObject(oomRaw)) throw new ConfigError('watch.oomAdjust must be an object')
  checkKeys(oomRaw, 'watch.oomAdjust.', ['enabled', 'intervalMs'])
  const oomEnabled = oomRaw.enabled ?? true
  if (typeof oomEnabled !== 'boolean') throw new ConfigError('watch.oomAdjust.enabled must be true or false')
  const oomAdjust = {
    enabled: oomEnabled,
    intervalMs: integer(oomRaw.intervalMs, 'watch.oomAdjust.intervalMs', 500, 60_000, 2000),
  }
  return {
    watch: {
      freezeAtCritical: freeze,
      killAfterCriticalMs,
      psiWindowMs,
      psiHoldMs,
      psiTriggers,
      hooks,
      logFormat,
      metrics,
      oomAdjust,
    },
  }
}

/** The line written to /proc/pressure/<resource> to create a trigger: "some 200000 2000000" (µs). */
export function psiTriggerLine(trigger: PsiTrigger, windowMs: number): string {
  return `${trigger.kind} ${trigger.stallMs * 1000} ${windowMs * 1000}`
}

export const DEFAULT_CONFIG: Config = parseConfig({})
