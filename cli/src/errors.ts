// Every failure the user sees is a CliError: one sentence saying what went wrong, one saying what to
// do, and the exit code. main.ts is the only place that prints them.
import { PLAIN } from './lib/style.js'
import type { Style } from './lib/style.js'

export const EXIT = {
  ok: 0,
  /** The operation failed (a check failed, a command it ran failed). */
  failed: 1,
  /** Bad command line: unknown option, bad size, missing argument. */
  usage: 2,
  /** The module is not loaded or /dev/spillway is missing. */
  noModule: 3,
  /** Not allowed: needs root or membership of the spillway group. */
  permission: 4,
  /** Refused because it is unsafe (pool too large); --force overrides. */
  unsafe: 5,
  /** Refused because something is in use (buffers live while unloading). */
  busy: 6,
  /** status: the module reports the warn level. */
  pressureWarn: 7,
  /** status: the module reports the critical level. */
  pressureCritical: 8,
} as const
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

export class CliError extends Error {
  constructor(
    message: string,
    readonly hint: string,
    readonly exitCode: number = EXIT.failed,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'CliError'
  }
}

export function usageError(message: string, hint: string): CliError {
  return new CliError(message, hint, EXIT.usage)
}

/** The errno code of a system error (ENOENT, EACCES, ...), if it is one. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code
    if (typeof code === 'string') return code
  }
  return undefined
}

/** The two lines main.ts prints for an error; the stack only with --debug. */
export function formatError(error: unknown, debug: boolean, paint: Style = PLAIN): { text: string; exitCode: number } {
  if (error instanceof CliError) {
    const lines = [`spillway: ${paint.paint(error.message, 'bad')}`, `  what to do: ${error.hint}`]
    if (debug && error.cause instanceof Error && error.cause.stack) lines.push(error.cause.stack)
    if (debug && error.stack) lines.push(error.stack)
    return { text: lines.join('\n'), exitCode: error.exitCode }
  }
  const message = error instanceof Error ? error.message : String(error)
  const lines = [
    `spillway: ${paint.paint(`unexpected error: ${message}`, 'bad')}`,
    '  what to do: run again with --debug for the stack trace and report it as a bug',
  ]
  if (debug && error instanceof Error && error.stack) lines.push(error.stack)
  return { text: lines.join('\n'), exitCode: EXIT.failed }
}
