// Sizes as people write them: "8G", "512MiB", "1.5 GB", "4096". Binary units throughout: the
// kernel, nvidia-smi and free(1) all count memory in powers of two, so "G" means GiB here.

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
}

export class SizeError extends Error {
  override name = 'SizeError'
}

/** What a particular option accepts; every size the CLI reads goes through parseSize with one of these. */
export interface SizeRule {
  /** Smallest size accepted, bytes (default 0), and why smaller is refused. */
  min?: { bytes: number; why: string }
  /** Largest size accepted, bytes. */
  max?: number
  /** What a number without a unit counts: bytes (default), or e.g. MiB where the tool's habit is MiB (qemu -m). */
  bareUnit?: number
}

/** Parses a size into bytes; throws SizeError with a message meant for the user. */
export function parseSize(text: string, rule: SizeRule = {}): number {
  if (/^\s*-\s*\d/.test(text)) throw new SizeError(`"${text.trim()}": a size can not be negative`)
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text)
  if (!match) {
    throw new SizeError(`"${text}" is not a size; write a number with an optional unit, e.g. 8G, 512MiB or 1.5GiB`)
  }
  const [, number = '', unit = '', suffix] = match
  if (suffix && suffix.toLowerCase() === 'ib' && unit === '') {
    throw new SizeError(`"${text}" is not a size; "iB" needs a unit before it, e.g. 512MiB`)
  }
  const scale = unit === '' && !suffix ? (rule.bareUnit ?? 1) : (UNITS[unit.toLowerCase()] ?? 1)
  const bytes = Math.round(Number(number) * scale)
  if (!Number.isSafeInteger(bytes)) throw new SizeError(`"${text}" is too large`)
  if (rule.min && bytes < rule.min.bytes) throw new SizeError(`"${text.trim()}" is too small: ${rule.min.why}`)
  if (rule.max !== undefined && bytes > rule.max)
    throw new SizeError(`"${text.trim()}" is too large: at most ${formatSize(rule.max)}`)
  return bytes
}

/** Formats bytes with a binary unit and at most one decimal: 1536 MiB -> "1.5 GiB". */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  const text = unit === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1).replace(/\.0$/, '')
  return `${text} ${units[unit]}`
}

export const MiB = 2 ** 20
export const GiB = 2 ** 30
