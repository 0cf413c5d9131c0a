// RAM and VRAM for the sizing formula.
import type { SizingFacts } from '../lib/sizing.js'
import { readGpus, readMemory } from './system.js'

export async function readSizingFacts(): Promise<SizingFacts> {
  const [memory, gpus] = await Promise.all([readMemory(), readGpus()])
  return { ramBytes: memory.ramBytes, vramBytes: gpus.reduce((sum, g) => sum + g.vramBytes, 0) }
}
