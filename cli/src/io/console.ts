// Where commands write. Data goes to stdout, progress and warnings to stderr, so `--json` output
// stays parseable. Tests replace the sinks.

export interface Sinks {
  out(text: string): void
  err(text: string): void
}

let sinks: Sinks = {
  out: (text) => process.stdout.write(text + '\n'),
  err: (text) => process.stderr.write(text + '\n'),
}

export function setSinks(next: Sinks): Sinks {
  const previous = sinks
  sinks = next
  return previous
}

export function print(text: string): void {
  sinks.out(text)
}

export function printJson(value: unknown): void {
  sinks.out(JSON.stringify(value, null, 2))
}

/** One line of progress for long work, on stderr. */
export function progress(text: string): void {
  sinks.err(`spillway: ${text}`)
}

export function warn(text: string): void {
  sinks.err(`spillway: warning: ${text}`)
}
