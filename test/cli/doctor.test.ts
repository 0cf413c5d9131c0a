import t from 'tap'
import { pcieGen, runChecks } from '../../cli/src/lib/doctor.js'
import type { DoctorFacts } from '../../cli/src/lib/doctor.js'

const healthy: DoctorFacts = {
  kernelRelease: '6.1.0-56-amd64',
  headers: { release: '6.1.0-56-amd64', present: true, packageKnown: undefined },
  dkmsPath: '/usr/sbin/dkms',
  dkmsStatus: 'spillway/0.1.0, 6.1.0-56-amd64, x86_64: installed\n',
  secureBoot: 'disabled',
  sigEnforce: false,
  lockdown: '[none] integrity confidentiality',
  mokKeyPresent: false,
  mokKeyEnrolled: undefined,
  moduleLoaded: true,
  deviceAccess: 'read-write',
  nvidiaDriver: 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05',
  nvidiaLinks: [
    { address: '0000:01:00.0', currentSpeed: '16.0 GT/s PCIe', currentWidth: 16, maxSpeed: '16.0 GT/s PCIe', maxWidth: 16 },
  ],
  iommuGroups: 0,
  cmdline: 'root=/dev/nvme0n1p2 ro',
  swaps: [{ name: '/swapfile', device: 'nvme0n1p2' }],
  cgroup2: true,
  psi: true,
}

const verdicts = (f: DoctorFacts) => Object.fromEntries(runChecks(f).map((r) => [r.id, r.verdict]))
const result = (f: DoctorFacts, id: string) => runChecks(f).find((r) => r.id === id)

t.test('a healthy host passes everything', async (t) => {
  const results = runChecks(healthy)
  t.equal(results.length, 12)
  t.same(
    results.filter((r) => r.verdict !== 'pass'),
    [],
  )
  t.ok(
    results.every((r) => r.fix === undefined),
    'passing checks carry no fix',
  )
  t.match(result(healthy, 'pcie-link')?.detail, '0000:01:00.0: gen 4 x16 (max gen 4 x16)')
})

t.test('each problem gets its verdict and a fix', async (t) => {
  const cases: [Partial<DoctorFacts>, string, 'warn' | 'fail', RegExp][] = [
    [{ kernelRelease: '5.10.0-30-amd64' }, 'kernel', 'fail', /upgrade/],
    [{ kernelRelease: 'weird' }, 'kernel', 'warn', /6\.1/],
    [
      { headers: { release: '6.1.0-56-amd64', present: false, packageKnown: true } },
      'headers',
      'fail',
      /^sudo apt-get install linux-headers-6\.1\.0-56-amd64$/,
    ],
    // A kernel not from the archive (the founders' build host runs 6.18.44-fc-v1272): no package to name.
    [
      { headers: { release: '6.18.44-fc-v1272', present: false, packageKnown: false } },
      'headers',
      'fail',
      /^apt knows no package linux-headers-6\.18\.44-fc-v1272 .*so that \/lib\/modules\/6\.18\.44-fc-v1272\/build exists$/,
    ],
    [
      { headers: { release: '6.1.0-56-amd64', present: false, packageKnown: undefined } },
      'headers',
      'fail',
      /^install the headers of kernel 6\.1\.0-56-amd64 with the distribution's package manager/,
    ],
    [{ dkmsPath: undefined }, 'dkms', 'warn', /apt-get install dkms/],
    [
      { secureBoot: 'enabled', mokKeyEnrolled: false, mokKeyPresent: true },
      'secure-boot',
      'warn',
      /mokutil --import \/var\/lib\/dkms\/mok\.pub/,
    ],
    [{ secureBoot: 'unknown' }, 'secure-boot', 'warn', /mokutil --sb-state/],
    [{ sigEnforce: true }, 'module-signing', 'fail', /^`sudo spillway install` first .*mokutil --import/],
    [{ sigEnforce: true, mokKeyPresent: true }, 'module-signing', 'fail', /^enroll DKMS's key: `sudo mokutil --import/],
    // The H100 machine: sig_enforce=Y without EFI, where no MOK can be enrolled.
    [{ sigEnforce: true, secureBoot: 'no-efi' }, 'module-signing', 'fail', /boot without module\.sig_enforce=1/],
    [{ lockdown: 'none [integrity] confidentiality' }, 'module-signing', 'fail', /mokutil/],
    [{ moduleLoaded: false }, 'module', 'warn', /spillway load/],
    [{ deviceAccess: 'denied' }, 'module', 'warn', /usermod -aG spillway/],
    [{ deviceAccess: 'missing' }, 'module', 'fail', /spillway install/],
    [{ nvidiaDriver: undefined }, 'nvidia-driver', 'warn', /nvidia-driver/],
    [{ nvidiaLinks: [] }, 'pcie-link', 'warn', /without an NVIDIA GPU/],
    [
      {
        nvidiaLinks: [
          { address: 'a', currentSpeed: '2.5 GT/s PCIe', currentWidth: 16, maxSpeed: '16.0 GT/s PCIe', maxWidth: 16 },
        ],
      },
      'pcie-link',
      'warn',
      /under load/,
    ],
    [
      {
        nvidiaLinks: [
          { address: 'a', currentSpeed: '16.0 GT/s PCIe', currentWidth: 8, maxSpeed: '16.0 GT/s PCIe', maxWidth: 16 },
        ],
      },
      'pcie-link',
      'warn',
      /full-width slot/,
    ],
    [{ iommuGroups: 12 }, 'iommu', 'warn', /iommu=pt/],
    [{ swaps: [] }, 'swap', 'warn', /swap file on an NVMe/],
    [{ swaps: [{ name: '/dev/sda2', device: 'sda2' }] }, 'swap', 'warn', /NVMe/],
    [{ cgroup2: false }, 'cgroup2', 'fail', /unified_cgroup_hierarchy/],
    [{ psi: false }, 'psi', 'warn', /psi=1/],
  ]
  for (const [change, id, verdict, fix] of cases) {
    const r = result({ ...healthy, ...change }, id)
    t.equal(r?.verdict, verdict, `${id}: ${JSON.stringify(change)}`)
    t.match(r?.fix, fix, `${id}: the fix says what to do`)
  }
})

t.test('passing variants', async (t) => {
  t.equal(verdicts({ ...healthy, iommuGroups: 12, cmdline: 'ro iommu=pt' }).iommu, 'pass')
  t.equal(
    verdicts({ ...healthy, secureBoot: 'enabled', mokKeyEnrolled: true, sigEnforce: true }).signing ??
      verdicts({ ...healthy, secureBoot: 'enabled', mokKeyEnrolled: true, sigEnforce: true })['module-signing'],
    'pass',
  )
  t.equal(verdicts({ ...healthy, secureBoot: 'no-efi' })['secure-boot'], 'pass')
  t.equal(verdicts({ ...healthy, kernelRelease: '7.2.13+deb14-amd64' }).kernel, 'pass')
  t.equal(
    verdicts({
      ...healthy,
      swaps: [
        { name: '/dev/zram0', device: 'zram0' },
        { name: '/swap', device: 'nvme1n1p1' },
      ],
    }).swap,
    'pass',
  )
})

t.test('PCIe generations', async (t) => {
  t.same(
    ['2.5 GT/s PCIe', '5.0 GT/s PCIe', '8.0 GT/s PCIe', '16.0 GT/s PCIe', '32.0 GT/s PCIe', '64.0 GT/s PCIe', 'Unknown'].map(
      pcieGen,
    ),
    [1, 2, 3, 4, 5, 6, undefined],
  )
})
