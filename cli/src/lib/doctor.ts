// `spillway doctor`: each check is a pure function of facts gathered by io/doctor-facts.ts.
import { headersDir, missingHeaders } from './kernel-headers.js'
import type { HeadersFacts } from './kernel-headers.js'

export type Verdict = 'pass' | 'warn' | 'fail'

export interface CheckResult {
  id: string
  title: string
  verdict: Verdict
  detail: string
  /** What to do; set for warn and fail. */
  fix?: string
}

export interface PcieLink {
  address: string
  currentSpeed: string
  currentWidth: number
  maxSpeed: string
  maxWidth: number
}

export interface SwapArea {
  name: string
  /** Block device that holds it (nvme0n1p3, vda, zram0...), if found. */
  device: string | undefined
}

export interface DoctorFacts {
  kernelRelease: string
  headers: HeadersFacts
  dkmsPath: string | undefined
  /** `dkms status spillway` output, if dkms exists. */
  dkmsStatus: string | undefined
  secureBoot: 'enabled' | 'disabled' | 'no-efi' | 'unknown'
  /** /sys/module/module/parameters/sig_enforce */
  sigEnforce: boolean | undefined
  /** /sys/kernel/security/lockdown, e.g. "[none] integrity confidentiality" */
  lockdown: string | undefined
  mokKeyPresent: boolean
  /** `mokutil --test-key` said the DKMS key is enrolled; undefined when it could not tell. */
  mokKeyEnrolled: boolean | undefined
  moduleLoaded: boolean
  deviceAccess: 'read-write' | 'denied' | 'missing'
  /** First line of /proc/driver/nvidia/version. */
  nvidiaDriver: string | undefined
  nvidiaLinks: PcieLink[]
  iommuGroups: number
  cmdline: string
  swaps: SwapArea[]
  cgroup2: boolean
  psi: boolean
}

function check(id: string, title: string, verdict: Verdict, detail: string, fix?: string): CheckResult {
  return fix === undefined || verdict === 'pass' ? { id, title, verdict, detail } : { id, title, verdict, detail, fix }
}

export function kernelVersion(release: string): [number, number] | undefined {
  const match = /^(\d+)\.(\d+)/.exec(release)
  return match ? [Number(match[1]), Number(match[2])] : undefined
}

/** PCIe generation from a sysfs link speed ("16.0 GT/s PCIe" is gen 4). */
export function pcieGen(speed: string): number | undefined {
  const gts = Number.parseFloat(speed)
  const table: [number, number][] = [
    [2.5, 1],
    [5, 2],
    [8, 3],
    [16, 4],
    [32, 5],
    [64, 6],
  ]
  return table.find(([rate]) => Math.abs(rate - gts) < 0.01)?.[1]
}

export function checkKernel(f: DoctorFacts): CheckResult {
  const v = kernelVersion(f.kernelRelease)
  if (!v)
    return check('kernel', 'Kernel', 'warn', `cannot read a version from "${f.kernelRelease}"`, 'use a Debian kernel from 6.1 on')
  const ok = v[0] > 6 || (v[0] === 6 && v[1] >= 1)
  return ok
    ? check('kernel', 'Kernel', 'pass', `${f.kernelRelease} (tested: 6.1, 6.12, 7.2)`)
    : check(
        'kernel',
        'Kernel',
        'fail',
        `${f.kernelRelease} is older than 6.1, the oldest kernel spillway supports`,
        'upgrade to a 6.1 or newer kernel (Debian bookworm has 6.1)',
      )
}

export function checkHeaders(f: DoctorFacts): CheckResult {
  if (f.headers.present) return check('headers', 'Kernel headers', 'pass', `${headersDir(f.kernelRelease)} exists`)
  const { problem, fix } = missingHeaders(f.headers)
  return check('headers', 'Kernel headers', 'fail', problem, fix)
}

export function checkDkms(f: DoctorFacts): CheckResult {
  if (!f.dkmsPath)
    return check(
      'dkms',
      'DKMS',
      'warn',
      'dkms is not installed: the module would not be rebuilt for new kernels',
      'apt-get install dkms',
    )
  const status = f.dkmsStatus?.trim()
  return check(
    'dkms',
    'DKMS',
    'pass',
    status
      ? `spillway in DKMS: ${status.split('\n').join('; ')}`
      : 'dkms is installed; spillway is not added yet (`sudo spillway install` adds it)',
  )
}

export function checkSecureBoot(f: DoctorFacts): CheckResult {
  switch (f.secureBoot) {
    case 'no-efi':
      return check('secure-boot', 'Secure Boot', 'pass', 'not booted with EFI: no Secure Boot (module signing is checked below)')
    case 'disabled':
      return check('secure-boot', 'Secure Boot', 'pass', 'disabled (module signing is checked below)')
    case 'unknown':
      return check(
        'secure-boot',
        'Secure Boot',
        'warn',
        'EFI is present but the SecureBoot variable could not be read',
        'run as root, or check with `mokutil --sb-state`',
      )
    case 'enabled':
      if (f.mokKeyEnrolled)
        return check(
          'secure-boot',
          'Secure Boot',
          'pass',
          'enabled; the DKMS signing key (/var/lib/dkms/mok.pub) is enrolled, so DKMS-built modules load',
        )
      return check(
        'secure-boot',
        'Secure Boot',
        'warn',
        'enabled: the kernel loads only signed modules, and DKMS signs them with /var/lib/dkms/mok.key, whose certificate is not enrolled' +
          (f.mokKeyPresent ? '' : ' (the key does not exist yet: DKMS creates it on its first build)'),
        '`sudo mokutil --import /var/lib/dkms/mok.pub`, choose a one-time password, reboot and enroll the key in the blue MOK manager screen',
      )
  }
}

export function checkSigning(f: DoctorFacts): CheckResult {
  const lockdown = /\[(\w+)\]/.exec(f.lockdown ?? '')?.[1]
  const enforced = f.sigEnforce === true || (lockdown !== undefined && lockdown !== 'none')
  if (!enforced) return check('module-signing', 'Module signing', 'pass', 'not enforced: an unsigned spillway.ko loads')
  if (f.mokKeyEnrolled)
    return check(
      'module-signing',
      'Module signing',
      'pass',
      `enforced${lockdown ? ` (lockdown ${lockdown})` : ''}; DKMS signs with the enrolled MOK key`,
    )
  const how = `enforced${lockdown ? ` (lockdown ${lockdown})` : ''}`
  // MOK keys are enrolled through shim and the EFI firmware: without EFI only keys built into the
  // kernel are trusted.
  if (f.secureBoot === 'no-efi') {
    return check(
      'module-signing',
      'Module signing',
      'fail',
      `${how} without EFI: only modules signed by a key built into this kernel load, so spillway.ko will fail with "Key was rejected by service"`,
      'boot without module.sig_enforce=1 (and without lockdown), or use a kernel built to trust your signing key',
    )
  }
  return check(
    'module-signing',
    'Module signing',
    'fail',
    `${how} and the DKMS key is not enrolled: loading spillway.ko will fail with "Key was rejected by service"`,
    (f.mokKeyPresent ? '' : '`sudo spillway install` first (DKMS creates its key on the first build), then ') +
      "enroll DKMS's key: `sudo mokutil --import /var/lib/dkms/mok.pub`, reboot, confirm in the MOK manager",
  )
}

export function checkModule(f: DoctorFacts): CheckResult {
  if (!f.moduleLoaded)
    return check(
      'module',
      'spillway module',
      'warn',
      'not loaded: jobs spill into pinned host memory instead of the pool',
      '`sudo spillway load` (or `sudo spillway up`)',
    )
  if (f.deviceAccess === 'denied')
    return check(
      'module',
      'spillway module',
      'warn',
      'loaded, but you can not open /dev/spillway',
      '`sudo usermod -aG spillway $USER` and log in again',
    )
  if (f.deviceAccess === 'missing')
    return check(
      'module',
      'spillway module',
      'fail',
      'loaded, but /dev/spillway is missing',
      'install the udev rule: `sudo spillway install`',
    )
  return check('module', 'spillway module', 'pass', 'loaded; /dev/spillway opens')
}

export function checkNvidia(f: DoctorFacts): CheckResult {
  if (f.nvidiaDriver) return check('nvidia-driver', 'NVIDIA driver', 'pass', f.nvidiaDriver)
  return check(
    'nvidia-driver',
    'NVIDIA driver',
    'warn',
    'no NVIDIA driver is loaded (/proc/driver/nvidia/version is missing): there is no GPU memory to extend',
    'install the NVIDIA driver (Debian: apt-get install nvidia-driver) on a machine with an NVIDIA GPU',
  )
}

export function checkPcie(f: DoctorFacts): CheckResult {
  if (f.nvidiaLinks.length === 0)
    return check('pcie-link', 'PCIe link', 'warn', 'no NVIDIA PCIe device found', 'nothing to do without an NVIDIA GPU')
  const slow = f.nvidiaLinks.filter(
    (l) => l.currentWidth < l.maxWidth || (pcieGen(l.currentSpeed) ?? 0) < (pcieGen(l.maxSpeed) ?? 0),
  )
  const text = f.nvidiaLinks
    .map(
      (l) =>
        `${l.address}: gen ${pcieGen(l.currentSpeed) ?? '?'} x${l.currentWidth} (max gen ${pcieGen(l.maxSpeed) ?? '?'} x${l.maxWidth})`,
    )
    .join('; ')
  if (slow.length === 0) return check('pcie-link', 'PCIe link', 'pass', text)
  return check(
    'pcie-link',
    'PCIe link',
    'warn',
    `${text}: below the maximum; spilled memory crosses this link`,
    'GPUs lower the link speed when idle: check again under load (e.g. during `spillway run`); ' +
      'if still low, reseat the card or move it to a full-width slot',
  )
}

export function checkIommu(f: DoctorFacts): CheckResult {
  if (f.iommuGroups === 0) return check('iommu', 'IOMMU', 'pass', 'off: GPU DMA to pinned pool pages needs no translation')
  if (/\biommu=pt\b|\biommu\.passthrough=1\b/.test(f.cmdline))
    return check('iommu', 'IOMMU', 'pass', `on in passthrough mode (${f.iommuGroups} groups)`)
  return check(
    'iommu',
    'IOMMU',
    'warn',
    `on with DMA translation (${f.iommuGroups} groups): pinning the pool and every DMA pay for IOMMU mappings`,
    'add iommu=pt to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) unless you need DMA isolation',
  )
}

export function checkSwap(f: DoctorFacts): CheckResult {
  if (f.swaps.length === 0)
    return check(
      'swap',
      'Swap on NVMe',
      'warn',
      'no swap: under pressure the kernel can only kill',
      'add a swap file on an NVMe disk (e.g. fallocate -l 16G /swapfile && mkswap /swapfile && swapon /swapfile, and a line in /etc/fstab)',
    )
  const nvme = f.swaps.filter((s) => s.device?.startsWith('nvme'))
  const list = f.swaps.map((s) => `${s.name} on ${s.device ?? 'an unknown device'}`).join(', ')
  if (nvme.length > 0) return check('swap', 'Swap on NVMe', 'pass', list)
  return check(
    'swap',
    'Swap on NVMe',
    'warn',
    `${list}: none is on NVMe, so swapping under pressure is slow`,
    'put a swap file on an NVMe disk and give it a higher priority (swapon -p 10)',
  )
}

export function checkCgroup(f: DoctorFacts): CheckResult {
  return f.cgroup2
    ? check('cgroup2', 'cgroup v2', 'pass', '/sys/fs/cgroup is cgroup v2: `run --oom-safe` jobs can be frozen')
    : check(
        'cgroup2',
        'cgroup v2',
        'fail',
        'cgroup v2 is not mounted at /sys/fs/cgroup: `watch` can not freeze --oom-safe jobs',
        'boot with systemd.unified_cgroup_hierarchy=1 (the default since Debian 11)',
      )
}

export function checkPsi(f: DoctorFacts): CheckResult {
  return f.psi
    ? check('psi', 'Pressure stall information', 'pass', '/proc/pressure/memory and io exist')
    : check(
        'psi',
        'Pressure stall information',
        'warn',
        "/proc/pressure is missing: `watch` sees only the module's watermarks",
        'boot with psi=1 (CONFIG_PSI_DEFAULT_DISABLED kernels)',
      )
}

export const CHECKS = [
  checkKernel,
  checkHeaders,
  checkDkms,
  checkSecureBoot,
  checkSigning,
  checkModule,
  checkNvidia,
  checkPcie,
  checkIommu,
  checkSwap,
  checkCgroup,
  checkPsi,
]

export function runChecks(facts: DoctorFacts): CheckResult[] {
  return CHECKS.map((c) => c(facts))
}
