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

/** Parses a size into bytes; throws SizeError with a message meant for the user. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text)
  if (!match) {
    throw new SizeError(`"${text}" is not a size; write a number with an optional unit, e.g. 8G, 512MiB or 1.5GiB`)
  }
  const [, number = '', unit = '', suffix] = match
  if (suffix && suffix.toLowerCase() === 'ib' && unit === '') {
    throw new SizeError(`"${text}" is not a size; "iB" needs a unit before it, e.g. 512MiB`)
  }
  const bytes = Math.round(Number(number) * (UNITS[unit.toLowerCase()] ?? 1))
  if (!Number.isSafeInteger(bytes)) throw new SizeError(`"${text}" is too large`)
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
