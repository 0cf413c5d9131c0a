// How the watch daemon writes one event: a human-readable line (the default: journald stamps and
// indexes it) or a JSON object with its time (--log-format json, for log shippers and the tests).
import type { LogFormat } from './config.js'

export type LogLine = Record<string, unknown> & { event: string }

function textValue(value: unknown): string {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return JSON.stringify(value)
  const text = Array.isArray(value) ? value.join(', ') : String(value)
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)
}

/** "freeze job=job-1a2b pid=4242": the event, then key=value (logfmt); undefined and null keys left out. */
export function formatLogLine(line: LogLine, format: LogFormat, now: Date): string {
  if (format === 'json') return JSON.stringify({ time: now.toISOString(), ...line })
  const { event, ...rest } = line
  const pairs = Object.entries(rest)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${textValue(v)}`)
  return [event, ...pairs].join(' ')
}
