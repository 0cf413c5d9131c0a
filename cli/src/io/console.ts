// Where commands write. Data goes to stdout, progress and warnings to stderr, so `--json` output
// stays parseable. Tests replace the sinks.
import { colorWanted, style } from '../lib/style.js'
import type { Style } from '../lib/style.js'

export interface Sinks {
  out(text: string): void
  err(text: string): void
}

let sinks: Sinks = {
  out: (text) => process.stdout.write(text + '\n'),
  err: (text) => process.stderr.write(text + '\n'),
}

let quiet = false

/** -q: print nothing but errors (main.ts prints those); scripts read the exit status. */
export function setQuiet(on: boolean): void {
  quiet = on
}

/** Colour for stdout (or stderr), decided once per call: see lib/style.ts for the rules. */
export function outStyle(stream: 'out' | 'err' = 'out'): Style {
  const tty = (stream === 'out' ? process.stdout : process.stderr).isTTY === true
  return style(colorWanted(tty, process.env))
}

export function setSinks(next: Sinks): Sinks {
  const previous = sinks
  sinks = next
  return previous
}

export function print(text: string): void {
  if (!quiet) sinks.out(text)
}

export function printJson(value: unknown): void {
  if (!quiet) sinks.out(JSON.stringify(value, null, 2))
}

/** One line of progress for long work, on stderr. */
export function progress(text: string): void {
  if (!quiet) sinks.err(`spillway: ${text}`)
}

export function warn(text: string): void {
  if (!quiet) sinks.err(`spillway: ${outStyle('err').paint('warning:', 'warn')} ${text}`)
}

/** The status of a command killed by SIGPIPE (128 + 13), as `yes | head` gives. */
export const EXIT_PIPE_CLOSED = 141

let onStdoutClosed = (): void => process.exit(EXIT_PIPE_CLOSED)
let listening = false

/**
 * What to do when the reader of stdout goes away (`spillway install --dry-run | head`): by default exit
 * quietly with the status of a command killed by SIGPIPE, not an EPIPE stack trace. watch stops instead.
 */
export function handleStdoutClosed(handler?: () => void): void {
  if (handler) onStdoutClosed = handler
  if (listening) return
  listening = true
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') onStdoutClosed()
    else throw error
  })
}
