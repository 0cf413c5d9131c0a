// Pool sizing: how much RAM to reserve for spilling, and which sizes are unsafe.
// The formula is documented in docs/admin-guide.md ("Sizing the pool"); change both together.
import { GiB, MiB, formatSize } from './sizes.js'

export interface SizingFacts {
  /** MemTotal, bytes. */
  ramBytes: number
  /** Sum of the VRAM of every NVIDIA GPU, bytes; 0 when none was found. */
  vramBytes: number
}

/** The pool is handed out in 2 MiB blocks (order-9 pages), so sizes are multiples of this. */
export const POOL_ALIGN = 2 * MiB
/** Auto sizes are rounded down further, to a size people can read. */
export const AUTO_ALIGN = 256 * MiB

/**
 * What the OS and the job's own host memory keep when the pool is sized automatically:
 * a quarter of RAM, at least 4 GiB, but never more than half of a small machine's RAM.
 */
export function osReserve(ramBytes: number): number {
  return Math.max(Math.min(4 * GiB, ramBytes / 2), ramBytes / 4)
}

/**
 * The least RAM that must stay outside the pool whatever the admin asks for (without --force):
 * a tenth of RAM, at least 2 GiB, but never more than a quarter of a small machine's RAM.
 */
export function safeFloor(ramBytes: number): number {
  return Math.max(Math.min(2 * GiB, ramBytes / 4), ramBytes / 10)
}

function alignDown(bytes: number, align: number): number {
  return Math.max(0, Math.floor(bytes / align) * align)
}

export interface AutoSize {
  poolBytes: number
  reserveBytes: number
  /** One sentence saying which term of the formula decided the size. */
  why: string
}

/**
 * Auto size = min(RAM - reserve, 2 x VRAM) with GPUs, min(RAM - reserve, RAM / 4) without;
 * rounded down to 256 MiB.
 * Twice the VRAM lets a job hold about three times what the card has; more than that is rarely
 * useful, because spilled data crosses PCIe on every access.
 */
export function autoPoolSize(facts: SizingFacts): AutoSize {
  const reserveBytes = osReserve(facts.ramBytes)
  const room = facts.ramBytes - reserveBytes
  const want = facts.vramBytes > 0 ? 2 * facts.vramBytes : facts.ramBytes / 4
  const wantWhy =
    facts.vramBytes > 0 ? `twice the VRAM (${formatSize(facts.vramBytes)})` : 'a quarter of RAM, as no GPU was found'
  const poolBytes = alignDown(Math.min(room, want), AUTO_ALIGN) || alignDown(Math.min(room, want), POOL_ALIGN)
  const why =
    want <= room
      ? `${wantWhy}, within RAM minus the OS reserve of ${formatSize(reserveBytes)}`
      : `RAM (${formatSize(facts.ramBytes)}) minus the OS reserve of ${formatSize(reserveBytes)}, below ${wantWhy}`
  return { poolBytes, reserveBytes, why }
}

export interface SizeVerdict {
  ok: boolean
  /** Set when !ok: the reason, as one sentence for the user. */
  problem?: string
  alignedBytes: number
}

/** Checks a size asked for by `pool set` or `load --pool`: aligned up to 2 MiB, above the floor. */
export function checkPoolSize(requestedBytes: number, ramBytes: number): SizeVerdict {
  const alignedBytes = Math.ceil(requestedBytes / POOL_ALIGN) * POOL_ALIGN
  const floor = safeFloor(ramBytes)
  if (ramBytes - alignedBytes < floor) {
    return {
      ok: false,
      alignedBytes,
      problem:
        `a ${formatSize(alignedBytes)} pool leaves ${formatSize(Math.max(0, ramBytes - alignedBytes))} of ` +
        `${formatSize(ramBytes)} RAM to everything else, below the safe floor of ${formatSize(floor)}`,
    }
  }
  return { ok: true, alignedBytes }
}
