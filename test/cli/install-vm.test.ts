// `spillway up`, `install`, `load` of the installed module and `uninstall`, run for real as root in
// a 6.1 VM (see vm-install.sh): the module is built in the guest by `up` (make) and by DKMS, the
// initramfs is rebuilt by update-initramfs, the unit is enabled by systemctl. Everything the
// commands write lands in the guest's tmpfs overlay. About 8 minutes under TCG.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { which } from '../../cli/src/io/exec.js'
import { dkmsVersion } from '../../cli/src/io/install.js'
import { prepareKernel, repoRoot, runInVm } from '../vm/harness.js'
import { caseGetter, json, parseCases } from './vm-cases.js'

const SERIES = '6.1'
const MiB = 2 ** 20
const version = dkmsVersion(repoRoot)
const kernel = await prepareKernel(SERIES)
const rel = kernel.release

/** The commands a run of install or uninstall reported running, in order. */
const ran = (output: string): string[] =>
  output
    .split('\n')
    .filter((l) => l.startsWith('spillway: running '))
    .map((l) => l.slice('spillway: running '.length))

const missing = ['update-initramfs', 'lsinitramfs', 'dkms', 'systemctl', 'systemd-analyze'].filter((tool) => !which(tool))
const skip = !fs.existsSync(path.join(repoRoot, 'cli/native/build/Release/spillway.node'))
  ? 'the native binding is not built'
  : missing.length
    ? `missing on this host: ${missing.join(', ')} (scripts/setup-test-deps.sh installs them)`
    : false

t.test('up, install, uninstall for real in a 6.1 VM', { skip }, async (t) => {
  const vm = await runInVm({
    kernel: SERIES,
    command: ['sh', 'test/cli/vm-install.sh'],
    memMb: 1024,
    smp: 2,
    timeoutS: 1200,
    env: { SPILLWAY_KERNEL_DIR: kernel.dir },
    logFile: process.env.SPILLWAY_INSTALL_VM_LOG,
  })
  t.equal(vm.failure, null, 'the VM ran the script', { output: vm.output.slice(-4000) })
  const get = caseGetter(t, parseCases(vm.output), vm.output)

  t.test('up --dry-run names the build, the load and the daemon', async (t) => {
    const dry = get('up-dry-run')
    t.equal(dry.status, 0, dry.output)
    t.match(dry.output, new RegExp(`would run: make -j\\d+ -C /lib/modules/${rel}/build M=${repoRoot}/kmod modules`))
    t.match(dry.output, new RegExp(`would run: insmod ${repoRoot}/kmod/spillway.ko pool_mb=\\d+`))
    t.match(dry.output, /would start: \S+ \S+ watch >> \/run\/spillway\/watch.log/)
  })

  t.test('up builds the module, loads it with an auto-sized pool, starts watch', async (t) => {
    const up = get('up')
    t.equal(up.status, 0, up.output)
    t.match(up.output, `building spillway.ko for ${rel}`)
    const poolMb = Number(/loading: insmod \S+\/kmod\/spillway.ko pool_mb=(\d+)/.exec(up.output)?.[1])
    t.ok(poolMb > 0, `auto pool ${poolMb} MiB`)
    t.match(up.output, `spillway loaded: pool ${poolMb} MiB of ${poolMb} MiB requested`)
    const pid = /watch: started in the background \(pid (\d+)/.exec(up.output)?.[1]
    t.ok(pid, 'watch started')
    t.match(up.output, new RegExp(`watch +running \\(pid ${pid}\\)`), 'the status up printed shows watch running')
    const status = json(get('up-status'))
    t.match(status, {
      module: { loaded: true },
      pool: { poolBytes: poolMb * MiB, usedBytes: 0 },
      watch: { running: true, pid: Number(pid) },
    })
    const again = get('up-again')
    t.equal(again.status, 0, again.output)
    t.match(again.output, /the module is already loaded\n.*watch: already running/)
    t.match(get('up-watch-log').output, /^start pid=\d+ module=true /m, 'watch logs readable lines by default')
    t.equal(get('up-unload').status, 0, get('up-unload').output)
  })

  t.test('install runs every step, and a second run changes nothing', async (t) => {
    const install = get('install')
    t.equal(install.status, 0, install.output)
    t.same(ran(install.output), [
      'groupadd --system spillway',
      `mkdir -p /usr/src/spillway-${version}`,
      `cp -a ${repoRoot}/dkms.conf ${repoRoot}/kmod /usr/src/spillway-${version}/`,
      `dkms add -m spillway -v ${version}`,
      `dkms build -m spillway -v ${version} -k ${rel}`,
      `dkms install -m spillway -v ${version} -k ${rel}`,
      'udevadm control --reload',
      `update-initramfs -u -k ${rel}`,
      'systemctl daemon-reload',
      'systemctl enable spillway-watch.service',
    ])
    t.match(install.output, /spillway installed \(14 steps\)/)
    t.match(get('dkms-status').output, `spillway/${version}, ${rel}, x86_64: installed`)
    t.equal(get('dkms-status').status, 0)
    t.match(get('modprobe-conf').output, /^options spillway pool_mb=160$/m)
    t.match(get('initramfs-modules').output, /^spillway$/m)
    const image = get('initramfs-after-install').output.split('\n')
    t.ok(image.includes(`usr/lib/modules/${rel}/updates/dkms/spillway.ko`), 'the initramfs holds the DKMS module', { image })
    t.ok(image.includes('etc/modprobe.d/spillway.conf'), 'and its pool size')
    t.equal(get('unit-link').output.trim(), '/etc/systemd/system/spillway-watch.service', 'the unit is enabled')
    t.same(get('unit-verify'), { status: 0, output: '' }, 'systemd-analyze verify finds nothing wrong with the unit')
    t.match(get('group').output, /^spillway:x:\d+:$/)
    t.match(get('install-again'), { status: 0, output: 'spillway is already installed; nothing changed' })
  })

  t.test('the installed module loads with the installed options and the udev rule', async (t) => {
    const load = get('load-installed')
    t.equal(load.status, 0, load.output)
    t.match(load.output, 'loading: modprobe spillway')
    t.match(load.output, 'spillway loaded: pool 160 MiB of 160 MiB requested')
    t.equal(get('dev-node').output.trim(), 'crw-rw---- root spillway', 'udevd applied the installed rule')
    t.equal(get('modinfo').output.trim(), `/lib/modules/${rel}/updates/dkms/spillway.ko`)
  })

  t.test('uninstall --purge removes everything, and a second run changes nothing', async (t) => {
    const uninstall = get('uninstall')
    t.equal(uninstall.status, 0, uninstall.output)
    t.same(ran(uninstall.output), [
      'systemctl stop spillway-watch.service',
      'systemctl disable spillway-watch.service',
      'systemctl daemon-reload',
      'modprobe -r spillway',
      `dkms remove -m spillway -v ${version} --all`,
      `rm -rf /usr/src/spillway-${version}`,
      `update-initramfs -u -k ${rel}`,
      'groupdel spillway',
    ])
    t.same(get('dkms-status-after'), { status: 0, output: '' }, 'DKMS knows no spillway')
    t.same(get('files-after'), { status: 0, output: '' }, 'no file, link, group or module is left')
    t.same(get('initramfs-after-uninstall'), { status: 0, output: '' }, 'the initramfs no longer holds spillway')
    t.match(get('uninstall-again'), { status: 0, output: 'spillway is not installed; nothing changed' })
  })
})
