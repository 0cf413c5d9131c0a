// Colour for terminals. Off unless the output is a terminal; NO_COLOR (https://no-color.org: set and
// not empty) and TERM=dumb turn it off; FORCE_COLOR turns it on (for `watch -c` and pagers with -R).

export type Paint = 'ok' | 'warn' | 'bad' | 'dim' | 'bold'

const SGR: Record<Paint, string> = { ok: '32', warn: '33', bad: '31', dim: '2', bold: '1' }

export function colorWanted(isTTY: boolean, env: Record<string, string | undefined>): boolean {
  if (env.NO_COLOR) return false
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true
  if (env.TERM === 'dumb') return false
  return isTTY
}

export interface Style {
  color: boolean
  paint(text: string, how: Paint): string
}

export function style(color: boolean): Style {
  return { color, paint: (text, how) => (color && text ? `\u001b[${SGR[how]}m${text}\u001b[0m` : text) }
}

export const PLAIN: Style = style(false)

/** How a pressure level or a doctor verdict is painted. */
export function paintFor(word: string): Paint {
  if (word === 'ok' || word === 'pass') return 'ok'
  if (word === 'warn') return 'warn'
  if (word === 'critical' || word === 'fail') return 'bad'
  return 'bold'
}
