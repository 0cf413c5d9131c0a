// Gathers what `spillway doctor` judges, from /proc, /sys and a few programs. Every read tolerates
// absence: a missing file is a fact, not an error.
import fs from 'node:fs'
import path from 'node:path'
import type { DoctorFacts, PcieLink, SwapArea } from '../lib/doctor.js'
import { DEVICE_PATH } from '../lib/uapi.js'
import { exec, which } from './exec.js'
import { readHeadersFacts } from './kernel-headers.js'
import { kernelRelease, nvidiaPciAddresses, readText } from './system.js'

const SECURE_BOOT_VAR = '/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e98c4c3d6a3b'
export const DKMS_MOK_PUB = '/var/lib/dkms/mok.pub'

export function readSecureBoot(): DoctorFacts['secureBoot'] {
  if (!fs.existsSync('/sys/firmware/efi')) return 'no-efi'
  try {
    // 4 bytes of attributes, then the value byte.
    const data = fs.readFileSync(SECURE_BOOT_VAR)
    return data[4] === 1 ? 'enabled' : 'disabled'
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'disabled' : 'unknown'
  }
}

function mokEnrolled(): boolean | undefined {
  if (!fs.existsSync(DKMS_MOK_PUB) || !which('mokutil')) return undefined
  const result = exec(['mokutil', '--test-key', DKMS_MOK_PUB], { timeoutMs: 10_000 })
  const text = result.stdout + result.stderr
  if (/already enrolled/i.test(text)) return true
  if (/not enrolled/i.test(text)) return false
  return undefined
}

function readLinks(): PcieLink[] {
  return nvidiaPciAddresses().map((address) => {
    const attr = (name: string) => readText(`/sys/bus/pci/devices/${address}/${name}`)?.trim() ?? ''
    return {
      address,
      currentSpeed: attr('current_link_speed'),
      currentWidth: Number(attr('current_link_width')) || 0,
      maxSpeed: attr('max_link_speed'),
      maxWidth: Number(attr('max_link_width')) || 0,
    }
  })
}

/** The block device a swap area lives on: its own name, or the one holding a swap file. */
function swapDevice(name: string): string | undefined {
  if (name.startsWith('/dev/')) return path.basename(fs.realpathSync(name))
  try {
    const dev = fs.statSync(name).dev
    const major = Math.floor(dev / 256) & 0xfff
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00)
    return path.basename(fs.realpathSync(`/sys/dev/block/${major}:${minor}`))
  } catch {
    return undefined
  }
}

export function readSwaps(): SwapArea[] {
  const lines = (readText('/proc/swaps') ?? '').split('\n').slice(1)
  return lines
    .map((line) => line.split(/\s+/)[0] ?? '')
    .filter((name) => name !== '')
    .map((name) => ({ name, device: swapDevice(name.replace(/\\040/g, ' ')) }))
}

function deviceAccess(): DoctorFacts['deviceAccess'] {
  try {
    fs.accessSync(DEVICE_PATH, fs.constants.R_OK | fs.constants.W_OK)
    return 'read-write'
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'denied'
  }
}

export function gatherDoctorFacts(): DoctorFacts {
  const release = kernelRelease()
  const dkmsPath = which('dkms')
  const dkmsStatus = dkmsPath ? exec(['dkms', 'status', 'spillway'], { timeoutMs: 30_000 }).stdout : undefined
  let iommuGroups = 0
  try {
    iommuGroups = fs.readdirSync('/sys/kernel/iommu_groups').length
  } catch {
    // no IOMMU
  }
  const sigEnforce = readText('/sys/module/module/parameters/sig_enforce')?.trim()
  return {
    kernelRelease: release,
    headers: readHeadersFacts(release),
    dkmsPath,
    dkmsStatus,
    secureBoot: readSecureBoot(),
    sigEnforce: sigEnforce === undefined ? undefined : sigEnforce === 'Y',
    lockdown: readText('/sys/kernel/security/lockdown')?.trim(),
    mokKeyPresent: fs.existsSync(DKMS_MOK_PUB),
    mokKeyEnrolled: mokEnrolled(),
    moduleLoaded: fs.existsSync('/sys/module/spillway'),
    deviceAccess: deviceAccess(),
    nvidiaDriver: readText('/proc/driver/nvidia/version')?.split('\n')[0]?.trim() || undefined,
    nvidiaLinks: readLinks(),
    iommuGroups,
    cmdline: readText('/proc/cmdline')?.trim() ?? '',
    swaps: readSwaps(),
    cgroup2: fs.existsSync('/sys/fs/cgroup/cgroup.controllers'),
    psi: fs.existsSync('/proc/pressure/memory') && fs.existsSync('/proc/pressure/io'),
  }
}
