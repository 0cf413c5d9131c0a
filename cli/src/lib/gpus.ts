// NVIDIA GPUs: nvidia-smi's CSV (VRAM) merged with the PCI devices sysfs lists.
import { MiB } from './sizes.js'

export interface GpuFacts {
  model: string
  /** memory.total from nvidia-smi; 0 when unknown (no driver, no nvidia-smi). */
  vramBytes: number
  /** PCI address as sysfs names it: 0000:01:00.0 */
  busAddress: string
}

/** The lines of `nvidia-smi --query-gpu=pci.bus_id,name,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(text: string): GpuFacts[] {
  const gpus: GpuFacts[] = []
  for (const line of text.split('\n')) {
    const parts = line.split(',').map((p) => p.trim())
    if (parts.length !== 3) continue
    const [bus = '', name = '', total = ''] = parts
    const mib = Number(total)
    gpus.push({ model: name, vramBytes: Number.isFinite(mib) ? mib * MiB : 0, busAddress: normalizeBus(bus) })
  }
  return gpus
}

/** nvidia-smi says 00000000:01:00.0, sysfs 0000:01:00.0: keep a 4-digit domain, lower case. */
export function normalizeBus(bus: string): string {
  const match = /^(?:([0-9a-f]+):)?([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])$/i.exec(bus.trim())
  if (!match) return bus.trim().toLowerCase()
  const domain = (match[1] ?? '0').slice(-4).padStart(4, '0')
  return `${domain}:${match[2]}`.toLowerCase()
}

/** Every NVIDIA display device sysfs lists, with nvidia-smi's name and VRAM where it knows them. */
export function mergeGpus(pciAddresses: string[], smi: GpuFacts[]): GpuFacts[] {
  const merged = pciAddresses.map(
    (address) =>
      smi.find((g) => g.busAddress === address.toLowerCase()) ?? {
        model: 'NVIDIA GPU (no driver)',
        vramBytes: 0,
        busAddress: address,
      },
  )
  for (const g of smi) if (!merged.includes(g)) merged.push(g)
  return merged
}
