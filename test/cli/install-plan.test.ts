import t from 'tap'
import fs from 'node:fs'
import { dkmsVersion } from '../../cli/src/io/install.js'
import { VERSION } from '../../cli/src/program.js'
import { repoRoot } from '../vm/harness.js'
import {
  PATHS,
  describeStep,
  installPlan,
  modprobeOptions,
  planBlockers,
  renderUnit,
  uninstallPlan,
  withModuleLine,
} from '../../cli/src/lib/install-plan.js'
import type { InstallFacts, Step } from '../../cli/src/lib/install-plan.js'

const UNIT = '[Unit]\nDocumentation=file://@REPO@/docs/admin-guide.md\n[Service]\nExecStart=@SPILLWAY@ watch\n'
const RULE = 'KERNEL=="spillway", GROUP="spillway", MODE="0660"\n'

function fresh(over: Partial<InstallFacts> = {}): InstallFacts {
  return {
    repoDir: '/opt/spillway',
    version: '0.1.0',
    kernelRelease: '6.1.0-56-amd64',
    watchCommand: '/usr/bin/node /opt/spillway/cli/bin/spillway.js',
    poolMb: 8192,
    packaged: false,
    groupExists: false,
    dkmsState: 'absent',
    dkmsSourceCurrent: false,
    initramfs: 'initramfs-tools',
    initramfsImage: 'without-module',
    existing: {},
    udevRule: RULE,
    unitTemplate: UNIT,
    systemd: true,
    unitEnabled: false,
    headers: { release: '6.1.0-56-amd64', present: true, packageKnown: undefined },
    missingPrograms: [],
    ...over,
  }
}

const commands = (steps: Step[]) =>
  steps.filter((s) => s.kind === 'command' && !s.done).map((s) => (s as { argv: string[] }).argv.join(' '))
const files = (steps: Step[]) => steps.filter((s) => s.kind === 'file' && !s.done).map((s) => (s as { path: string }).path)

t.test('a fresh host gets every step, in order', async (t) => {
  const steps = installPlan(fresh())
  t.same(commands(steps), [
    'groupadd --system spillway',
    'mkdir -p /usr/src/spillway-0.1.0',
    'cp -a /opt/spillway/dkms.conf /opt/spillway/kmod /usr/src/spillway-0.1.0/',
    'dkms add -m spillway -v 0.1.0',
    'dkms build -m spillway -v 0.1.0 -k 6.1.0-56-amd64',
    'dkms install -m spillway -v 0.1.0 -k 6.1.0-56-amd64',
    'udevadm control --reload',
    'update-initramfs -u -k 6.1.0-56-amd64',
    'systemctl daemon-reload',
    'systemctl enable spillway-watch.service',
  ])
  t.same(files(steps), [PATHS.udevRule, PATHS.modprobe, PATHS.initramfsModules, PATHS.unit])
  const unit = steps.find((s) => s.kind === 'file' && s.path === PATHS.unit)
  t.match(unit, {
    content:
      '[Unit]\nDocumentation=file:///opt/spillway/docs/admin-guide.md\n[Service]\nExecStart=/usr/bin/node /opt/spillway/cli/bin/spillway.js watch\n',
  })
  const modprobe = steps.find((s) => s.kind === 'file' && s.path === PATHS.modprobe)
  t.match(modprobe, { content: /options spillway pool_mb=8192\n$/ })
})

t.test('an installed host: nothing left to do (idempotent)', async (t) => {
  const done = fresh({
    groupExists: true,
    dkmsState: 'installed',
    dkmsSourceCurrent: true,
    unitEnabled: true,
    initramfsImage: 'with-module',
    existing: {
      [PATHS.udevRule]: RULE,
      [PATHS.modprobe]: modprobeOptions(8192),
      [PATHS.initramfsModules]: 'loop\nspillway\n',
      [PATHS.unit]: renderUnit(UNIT, '/usr/bin/node /opt/spillway/cli/bin/spillway.js', '/opt/spillway'),
    },
  })
  const steps = installPlan(done)
  t.same(
    steps.filter((s) => !s.done).map((s) => describeStep(s)),
    [],
  )
  // An image that lacks the module (its rebuild failed or was skipped) is rebuilt on the next run.
  for (const image of ['without-module', 'missing', 'unknown'] as const) {
    t.same(commands(installPlan({ ...done, initramfsImage: image })), ['update-initramfs -u -k 6.1.0-56-amd64'], `image ${image}`)
  }
})

t.test('a new pool size rewrites modprobe.d and rebuilds the initramfs only', async (t) => {
  const existing = {
    [PATHS.udevRule]: RULE,
    [PATHS.modprobe]: modprobeOptions(4096),
    [PATHS.initramfsModules]: 'spillway\n',
    [PATHS.unit]: renderUnit(UNIT, '/usr/bin/node /opt/spillway/cli/bin/spillway.js', '/opt/spillway'),
  }
  const steps = installPlan(
    fresh({
      groupExists: true,
      dkmsState: 'installed',
      dkmsSourceCurrent: true,
      unitEnabled: true,
      initramfsImage: 'with-module',
      existing,
    }),
  )
  t.same(files(steps), [PATHS.modprobe])
  t.same(commands(steps), ['update-initramfs -u -k 6.1.0-56-amd64'])
})

t.test('changed sources are removed from DKMS and re-added', async (t) => {
  const steps = installPlan(
    fresh({
      groupExists: true,
      dkmsState: 'installed',
      dkmsSourceCurrent: false,
      existing: { '/usr/src/spillway-0.1.0/dkms.conf': 'old' },
    }),
  )
  t.same(commands(steps).slice(0, 6), [
    'dkms remove -m spillway -v 0.1.0 --all',
    'rm -rf /usr/src/spillway-0.1.0',
    'mkdir -p /usr/src/spillway-0.1.0',
    'cp -a /opt/spillway/dkms.conf /opt/spillway/kmod /usr/src/spillway-0.1.0/',
    'dkms add -m spillway -v 0.1.0',
    'dkms build -m spillway -v 0.1.0 -k 6.1.0-56-amd64',
  ])
})

t.test('dracut hosts and hosts without systemd', async (t) => {
  const steps = installPlan(fresh({ initramfs: 'dracut', systemd: false }))
  t.ok(files(steps).includes(PATHS.dracutConf))
  t.ok(commands(steps).includes('dracut -f --kver 6.1.0-56-amd64'))
  t.notOk(commands(steps).some((c) => c.startsWith('systemctl')))
  t.same(
    installPlan(fresh({ initramfs: 'none' })).filter((s) => s.kind === 'file' && s.path.includes('initramfs')),
    [],
  )
})

t.test('the initramfs modules file keeps other lines', async (t) => {
  t.equal(withModuleLine(undefined, true), 'spillway\n')
  t.equal(withModuleLine('# comment\nloop\n', true), '# comment\nloop\nspillway\n')
  t.equal(withModuleLine('loop\nspillway\n', true), 'loop\nspillway\n')
  t.equal(withModuleLine('loop\nspillway\n', false), 'loop\n')
  t.equal(withModuleLine('spillway\n', false), '')
  t.match(modprobeOptions(null), /left at the module default/)
})

t.test('uninstall reverses install', async (t) => {
  const installed = fresh({
    groupExists: true,
    dkmsState: 'installed',
    dkmsSourceCurrent: true,
    unitEnabled: true,
    initramfsImage: 'with-module',
    existing: {
      [PATHS.udevRule]: RULE,
      [PATHS.modprobe]: 'x',
      [PATHS.initramfsModules]: 'loop\nspillway\n',
      [PATHS.unit]: 'u',
      '/usr/src/spillway-0.1.0/dkms.conf': 'c',
    },
  })
  const steps = uninstallPlan({ ...installed, moduleLoaded: true, purge: false })
  t.same(commands(steps), [
    'systemctl stop spillway-watch.service',
    'systemctl disable spillway-watch.service',
    'systemctl daemon-reload',
    'modprobe -r spillway',
    'dkms remove -m spillway -v 0.1.0 --all',
    'rm -rf /usr/src/spillway-0.1.0',
    'update-initramfs -u -k 6.1.0-56-amd64',
  ])
  t.match(
    steps.find((s) => s.kind === 'file'),
    { path: PATHS.initramfsModules, content: 'loop\n' },
  )
  t.same(
    steps.filter((s) => s.kind === 'remove' && !s.done).map((s) => (s as { path: string }).path),
    [PATHS.unit, PATHS.udevRule, PATHS.modprobe],
  )
  const purge = uninstallPlan({ ...installed, moduleLoaded: false, purge: true })
  t.ok(commands(purge).includes('groupdel spillway'))
  t.notOk(commands(purge).includes('modprobe -r spillway'))
})

t.test('uninstall on a host where nothing is installed does nothing', async (t) => {
  for (const image of ['without-module', 'missing'] as const) {
    const steps = uninstallPlan({ ...fresh({ initramfsImage: image, unitEnabled: false }), moduleLoaded: false, purge: true })
    t.same(
      steps.filter((s) => !s.done).map((s) => describeStep(s)),
      [],
      `image ${image}`,
    )
  }
  // An image that still holds the module is rebuilt even when everything else is gone.
  const stale = uninstallPlan({ ...fresh({ initramfsImage: 'with-module' }), moduleLoaded: false, purge: false })
  t.same(commands(stale), ['update-initramfs -u -k 6.1.0-56-amd64'])
})

t.test('one version: package.json, the CLI and dkms.conf agree', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(`${repoRoot}/package.json`, 'utf8')).version
  t.match(pkg, /^\d+\.\d+\.\d+$/)
  t.equal(VERSION, pkg, 'spillway --version')
  t.equal(dkmsVersion(repoRoot), pkg, 'dkms.conf PACKAGE_VERSION')
})

t.test('describeStep shows file contents and done steps', async (t) => {
  const steps = installPlan(fresh({ groupExists: true }))
  t.match(describeStep(steps[0] as Step), /^run groupadd --system spillway: .*\(already done\)$/)
  const rule = steps.find((s) => s.kind === 'file' && s.path === PATHS.udevRule) as Step
  t.equal(
    describeStep(rule),
    `write ${PATHS.udevRule} (mode 644): /dev/spillway owned by group spillway, mode 0660\n    | ${RULE.trim()}`,
  )
})

t.test('blockers: what would make the plan fail, found before any step runs', async (t) => {
  t.same(planBlockers(fresh(), installPlan(fresh())), [], 'a host with headers and every program')
  const noHeaders = fresh({ headers: { release: '6.1.0-56-amd64', present: false, packageKnown: true } })
  t.same(planBlockers(noHeaders, installPlan(noHeaders)), [
    {
      problem: 'no kernel headers for 6.1.0-56-amd64 (/lib/modules/6.1.0-56-amd64/build), so spillway.ko can not be built',
      fix: 'sudo apt-get install linux-headers-6.1.0-56-amd64',
    },
  ])
  const built = fresh({ ...noHeaders, dkmsState: 'installed', dkmsSourceCurrent: true })
  t.same(planBlockers(built, installPlan(built)), [], 'no headers needed once DKMS has built and installed it')
  const noDkms = fresh({ missingPrograms: ['dkms', 'dracut'] })
  t.same(
    planBlockers(noDkms, installPlan(noDkms)),
    [
      {
        problem: 'dkms is not installed, so `dkms add -m spillway -v 0.1.0` can not run',
        fix: 'sudo apt-get install dkms',
      },
    ],
    'a missing program the plan does not run (dracut) is no blocker',
  )
})

t.test("installed from the Debian package: the sources, rule and unit are the package's", async (t) => {
  const packaged = fresh({ packaged: true, dkmsSourceCurrent: true, udevRule: '', unitTemplate: '' })
  const steps = installPlan(packaged)
  t.same(commands(steps), [
    'groupadd --system spillway',
    'dkms add -m spillway -v 0.1.0',
    'dkms build -m spillway -v 0.1.0 -k 6.1.0-56-amd64',
    'dkms install -m spillway -v 0.1.0 -k 6.1.0-56-amd64',
    'update-initramfs -u -k 6.1.0-56-amd64',
    'systemctl enable spillway-watch.service',
  ])
  t.same(files(steps), [PATHS.modprobe, PATHS.initramfsModules], 'no udev rule or unit in /etc')
  const installed = {
    ...packaged,
    groupExists: true,
    dkmsState: 'installed' as const,
    unitEnabled: true,
    initramfsImage: 'with-module' as const,
    existing: {
      [PATHS.modprobe]: modprobeOptions(8192),
      [PATHS.initramfsModules]: 'spillway\n',
      '/usr/src/spillway-0.1.0/dkms.conf': 'c',
    },
  }
  t.same(
    installPlan(installed)
      .filter((s) => !s.done)
      .map((s) => describeStep(s)),
    [],
    'a second run changes nothing',
  )
  const purge = uninstallPlan({ ...installed, moduleLoaded: true, purge: true })
  t.same(
    commands(purge),
    [
      'systemctl stop spillway-watch.service',
      'systemctl disable spillway-watch.service',
      'modprobe -r spillway',
      'dkms remove -m spillway -v 0.1.0 --all',
      'update-initramfs -u -k 6.1.0-56-amd64',
    ],
    'dpkg keeps its sources, unit and group',
  )
  const gone = { ...packaged, groupExists: true, initramfsImage: 'without-module' as const }
  t.same(
    uninstallPlan({ ...gone, moduleLoaded: false, purge: true })
      .filter((s) => !s.done)
      .map((s) => describeStep(s)),
    [],
    'uninstalled: nothing to do',
  )
})
