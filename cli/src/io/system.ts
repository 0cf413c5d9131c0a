// Facts about the machine: RAM and swap, GPUs, kernel. systeminformation where it is right; see
// docs/cli.md ("systeminformation") for what it is used for and where /proc or sysfs is read instead.
import fs from 'node:fs'
import os from 'node:os'
import si from 'systeminformation'
import { mergeGpus, parseNvidiaSmi } from '../lib/gpus.js'
import type { GpuFacts } from '../lib/gpus.js'
import { exec, which } from './exec.js'

export interface MemoryFacts {
  ramBytes: number
  availableBytes: number
  swapTotalBytes: number
  swapFreeBytes: number
}

export async function readMemory(): Promise<MemoryFacts> {
  // si.mem() reads /proc/meminfo (about 3 ms): MemTotal, MemAvailable, SwapTotal, SwapFree.
  const mem = await si.mem()
  return {
    ramBytes: mem.total,
    availableBytes: mem.available,
    swapTotalBytes: mem.swaptotal,
    swapFreeBytes: mem.swapfree,
  }
}

/** PCI addresses of NVIDIA display/3D controllers (class 0x03xxxx). */
export function nvidiaPciAddresses(): string[] {
  const root = '/sys/bus/pci/devices'
  let entries: string[]
  try {
    entries = fs.readdirSync(root)
  } catch {
    return []
  }
  return entries.filter((address) => {
    const attr = (name: string) => readText(`${root}/${address}/${name}`)?.trim()
    return attr('vendor') === '0x10de' && (attr('class') ?? '').startsWith('0x03')
  })
}

/**
 * NVIDIA GPUs and their VRAM: sysfs for presence, nvidia-smi for name and memory.total.
 * Not si.graphics(): on Linux it reports NVIDIA data only for controllers that `lspci -vvv` also
 * lists, so a host without pciutils (our H100 machine) gets no GPU at all; see docs/cli.md.
 */
export async function readGpus(): Promise<GpuFacts[]> {
  if (process.env.SPILLWAY_NO_GPU_PROBE === '1') return []
  let smi: GpuFacts[] = []
  if (which('nvidia-smi')) {
    const result = exec(['nvidia-smi', '--query-gpu=pci.bus_id,name,memory.total', '--format=csv,noheader,nounits'], {
      timeoutMs: 15_000,
    })
    if (result.status === 0) smi = parseNvidiaSmi(result.stdout)
  }
  return mergeGpus(nvidiaPciAddresses(), smi)
}

export function kernelRelease(): string {
  return os.release()
}

export function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

/** Booted with systemd (its documented test, sd_booted(3)), with systemctl at hand. */
export function systemdRunning(): boolean {
  return fs.existsSync('/run/systemd/system') && which('systemctl') !== undefined
}

/** The name of a uid from /etc/passwd, or null (LDAP users and the like show as numbers). */
export function userName(uid: number): string | null {
  for (const line of (readText('/etc/passwd') ?? '').split('\n')) {
    const [name, , id] = line.split(':')
    if (name && Number(id) === uid && id !== '') return name
  }
  return null
}
