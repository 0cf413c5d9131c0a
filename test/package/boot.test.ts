// The Debian package, proven by booting: `npm run package`'s .deb (lintian), installed with apt into
// a Debian 13 image (trixie-image.sh) natively in a chroot, `spillway install --pool 512M` run there
// for the image's kernel; then the image boots under QEMU with its own kernel and initramfs: the pool
// is reserved from the initramfs, /dev/spillway is root:spillway 0660, spillway-watch is active;
// `spillway uninstall --purge`, reboot: nothing left. Progress goes to stderr (tap shows it live).
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { which } from '../../cli/src/io/exec.js'
import { repoRoot } from '../vm/harness.js'
import { caseGetter, json, parseCases } from '../cli/vm-cases.js'
import type { Case } from '../cli/vm-cases.js'

const POOL_MB = 512
const MiB = 2 ** 20
const here = path.join(repoRoot, 'test/package')
const t0 = Date.now()
const progress = (message: string): void => {
  process.stderr.write(`package boot test [${Math.round((Date.now() - t0) / 1000)} s]: ${message}\n`)
}

/** Runs a command; its stderr lines stream as progress, a heartbeat every 60 s while it is quiet. */
function run(
  what: string,
  argv: string[],
  opts: { quietStderr?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  progress(`${what}...`)
  const start = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let last = Date.now()
    const beat = setInterval(() => {
      if (Date.now() - last < 55_000) return
      progress(`${what}: still running (${Math.round((Date.now() - start) / 1000)} s)`)
      last = Date.now()
    }, 5_000)
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
      if (!opts.quietStderr) {
        for (const line of d.split('\n').filter(Boolean)) progress(line)
        last = Date.now()
      }
    })
    child.on('error', reject)
    child.on('close', (code) => {
      clearInterval(beat)
      progress(`${what}: done in ${Math.round((Date.now() - start) / 1000)} s`)
      resolve({ code: code ?? 1, stdout, stderr })
    })
  })
}

interface Boot {
  code: number
  console: string
  cases: Map<string, Case>
  results: string
  seconds: number
}

/** Boots the disk image with the image's kernel and an initramfs; the check unit reports on ttyS1. */
/** The console from the first kernel splat on (its head names the fault), else its end. */
function consoleExcerpt(console: string): string {
  const at = console.search(/BUG:|general protection|Oops|WARNING:|Kernel panic/)
  return at >= 0 ? console.slice(Math.max(0, at - 500), at + 8000) : console.slice(-3000)
}

async function boot(work: string, phase: string, kernel: string, initrd: string, release: string): Promise<Boot> {
  const results = path.join(work, `results-${phase}.txt`)
  const args = [
    '-accel',
    process.env.SPILLWAY_VM_ACCEL || 'tcg',
    '-m',
    '2048',
    '-smp',
    '2',
    '-display',
    'none',
    '-monitor',
    'none',
    '-no-reboot',
    '-nic',
    'none',
    '-kernel',
    kernel,
    '-initrd',
    initrd,
    '-append',
    // panic=-1 with -no-reboot: a kernel panic ends the VM at once instead of at the 900 s limit.
    // SPILLWAY_BOOT_APPEND adds kernel parameters, e.g. slub_debug=FZPU to hunt memory corruption.
    `root=/dev/vda rw console=ttyS0 loglevel=3 panic=-1 systemd.show_status=1 spillway_test.phase=${phase} ${process.env.SPILLWAY_BOOT_APPEND ?? ''}`.trim(),
    '-drive',
    `file=${path.join(work, 'disk.img')},format=raw,if=virtio`,
    '-serial',
    'stdio',
    '-serial',
    `file:${results}`,
  ]
  const slots = Number(process.env.SPILLWAY_VM_SLOTS) || os.availableParallelism()
  const slotDir = path.join(os.tmpdir(), 'spillway-vm-slots')
  fs.mkdirSync(slotDir, { recursive: true })
  progress(`booting the trixie image (kernel ${release}), phase ${phase}`)
  const start = Date.now()
  return new Promise((resolve, reject) => {
    const qemu = spawn(
      'sh',
      [path.join(repoRoot, 'test/vm/vm-slot.sh'), String(slots), slotDir, 'timeout', '900', 'qemu-system-x86_64', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let console = ''
    const beat = setInterval(() => {
      const text = fs.existsSync(results) ? fs.readFileSync(results, 'utf8') : ''
      const begun = [...text.matchAll(/^@@BEGIN (\S+)$/gm)].map((m) => m[1]).at(-1)
      const consoleLine = console
        .replace(/\r/g, '')
        .split('\n')
        .filter((l) => l.trim())
        .at(-1)
        ?.slice(0, 100)
      const where = begun
        ? `checking: ${begun}`
        : !/^run-vm-slot \d+$/m.test(console)
          ? 'waiting for a VM slot (SPILLWAY_VM_SLOTS)'
          : `booting, console: ${consoleLine ?? '(nothing yet)'}`
      progress(`phase ${phase}, ${Math.round((Date.now() - start) / 1000)} s: ${where}`)
    }, 30_000)
    qemu.stdout.setEncoding('utf8').on('data', (d: string) => {
      console += d
    })
    qemu.stderr.setEncoding('utf8').on('data', (d: string) => {
      console += d
    })
    qemu.on('error', reject)
    qemu.on('close', (code) => {
      clearInterval(beat)
      const seconds = Math.round((Date.now() - start) / 1000)
      // The guest's tty turns each \n into \r\n.
      const text = fs.existsSync(results) ? fs.readFileSync(results, 'utf8').replace(/\r/g, '') : ''
      progress(`phase ${phase}: the VM stopped after ${seconds} s (exit ${code})`)
      resolve({ code: code ?? 1, console, cases: parseCases(text), results: text, seconds })
    })
  })
}

const kb = (meminfo: string, key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(meminfo)?.[1])

const needed = [
  'mmdebstrap',
  'qemu-system-x86_64',
  'mkfs.ext4',
  'debugfs',
  'dpkg-deb',
  'dpkg-shlibdeps',
  'lsinitramfs',
  'unshare',
  'lintian',
]
const missing = needed.filter((tool) => !which(tool))
const skip =
  process.getuid?.() !== 0
    ? 'needs root (chroot, apt in the image)'
    : !fs.existsSync(path.join(repoRoot, 'cli/native/build/Release/spillway.node'))
      ? 'the native binding is not built'
      : missing.length
        ? `missing on this host: ${missing.join(', ')} (scripts/setup-test-deps.sh installs them)`
        : false

t.test('the Debian package installs on trixie and reserves the pool at boot', { skip }, async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-boot-'))
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }))

  const pkg = await run('building the package (scripts/package.sh)', ['sh', 'scripts/package.sh', path.join(work, 'deb')])
  t.equal(pkg.code, 0, 'scripts/package.sh', { stderr: pkg.stderr.slice(-3000) })
  const deb = pkg.stdout.trim().split('\n').at(-1) ?? ''
  if (pkg.code !== 0 || !fs.existsSync(deb)) return
  // lintian takes a minute: it runs while the image is prepared.
  const lintian = run('lintian', ['lintian', '--pedantic', '--display-info', deb], { quietStderr: true })

  const image = await run('the trixie image (test/package/trixie-image.sh)', ['sh', path.join(here, 'trixie-image.sh')])
  t.equal(image.code, 0, 'trixie-image.sh', { stderr: image.stderr.slice(-3000) })
  if (image.code !== 0) return
  const root = path.join(work, 'root')
  fs.mkdirSync(root)
  const untar = await run('unpacking the image', ['tar', '-C', root, '-xf', image.stdout.trim().split('\n').at(-1) ?? ''])
  t.equal(untar.code, 0, 'tar', { stderr: untar.stderr })

  const setup = await run(`apt install ./${path.basename(deb)} and spillway install --pool ${POOL_MB}M in a chroot`, [
    'sh',
    path.join(here, 'image-install.sh'),
    'install',
    root,
    deb,
    `${POOL_MB}M`,
  ])
  const chroot = caseGetter(t, parseCases(setup.stdout), setup.stdout)
  const release = /^@@KERNEL (\S+)$/m.exec(setup.stdout)?.[1] ?? ''

  t.test('lintian: no errors or warnings but the overridden ones', async (t) => {
    const r = await lintian
    const tags = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l))
    t.same(tags, [], 'lintian --pedantic', { output: r.stdout })
  })

  t.test("apt resolves every dependency from Debian's archive and installs the package", async (t) => {
    const resolve = chroot('resolve')
    t.equal(resolve.status, 0, 'apt-get install --simulate from an empty status', { output: resolve.output })
    t.notMatch(resolve.output, /^E:/m, 'no unmet dependency')
    for (const dep of ['nodejs', 'dkms', 'kmod', 'udev', 'initramfs-tools', 'spillway'])
      t.match(resolve.output, new RegExp(`^Inst ${dep} `, 'm'), `apt would install ${dep}`)
    t.equal(chroot('apt-install').status, 0, 'apt-get install ./spillway.deb', { output: chroot('apt-install').output })
    const version = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version
    t.same(chroot('which'), { status: 0, output: `/usr/bin/spillway\n${version}` }, "spillway on PATH, the package's version")
  })

  t.test(`spillway install --pool ${POOL_MB}M --kernel ${release} from the package`, async (t) => {
    const install = chroot('install')
    t.equal(install.status, 0, 'spillway install', { output: install.output })
    const ran = install.output
      .split('\n')
      .filter((l) => l.startsWith('spillway: running '))
      .map((l) => l.slice('spillway: running '.length))
    t.same(
      ran.map((c) => c.replace(/ -v \S+/, ' -v V')),
      [
        'dkms add -m spillway -v V',
        `dkms build -m spillway -v V -k ${release}`,
        `dkms install -m spillway -v V -k ${release}`,
        `update-initramfs -u -k ${release}`,
        'systemctl enable spillway-watch.service',
      ],
      "the sources, rule, unit and group are the package's: install registers them",
    )
    t.match(chroot('install-again'), { status: 0, output: 'spillway is already installed; nothing changed' })
    t.match(
      chroot('initramfs').output,
      new RegExp(`updates/dkms/spillway\\.ko(\\.xz)?\\n(.|\\n)*etc/modprobe.d/spillway.conf`),
      'the initramfs holds the module and its options',
    )
  })
  if (!release || chroot('install').status !== 0) return

  const mkfs = await run('mkfs.ext4 -d (the disk image)', [
    'mkfs.ext4',
    '-q',
    '-F',
    '-d',
    root,
    path.join(work, 'disk.img'),
    '4G',
  ])
  t.equal(mkfs.code, 0, 'mkfs.ext4', { stderr: mkfs.stderr })
  const kernel = path.join(work, 'vmlinuz')
  const initrd1 = path.join(work, 'initrd-installed.img')
  fs.copyFileSync(path.join(root, 'boot', `vmlinuz-${release}`), kernel)
  fs.copyFileSync(path.join(root, 'boot', `initrd.img-${release}`), initrd1)
  // The tree is on the disk image now: apt purge runs in it, natively, while the image boots.
  const purge = run('apt purge spillway in the chroot (prerm runs spillway uninstall)', [
    'sh',
    path.join(here, 'image-install.sh'),
    'purge',
    root,
  ])
  const first = await boot(work, 'installed', kernel, initrd1, release)
  const get1 = caseGetter(t, first.cases, first.results + consoleExcerpt(first.console))

  t.test('after boot: the pool, reserved from the initramfs; the device node; the service', async (t) => {
    t.match(first.results, /^@@DONE /m, 'the check unit ran to the end', { console: consoleExcerpt(first.console) })
    t.equal(get1('kernel').output.trim(), release, "the image's own kernel")
    const order = get1('boot-order').output.split('\n')
    const at = (re: RegExp): number => order.findIndex((l) => re.test(l))
    const reserved = at(new RegExp(`spillway: pool: ${POOL_MB} MiB reserved`))
    t.ok(reserved > at(/Run \/init as init process/), 'reserved after the initramfs started', { order })
    t.ok(reserved >= 0 && reserved < at(/EXT4-fs \(vda\): mounted/), 'and before it mounted the root file system', { order })
    t.ok(reserved < at(/systemd\[1\]: systemd \d/), 'so before systemd (userland) started')
    t.match(get1('sysfs').output, `pool_bytes ${POOL_MB * MiB}\nrequested_bytes ${POOL_MB * MiB}\nused_bytes 0`)
    t.equal(get1('dev-node').output.trim(), 'crw-rw---- root spillway', '/dev/spillway root:spillway 0660')
    t.equal(get1('unit-active').output.trim(), 'active', 'spillway-watch is active')
    t.equal(get1('unit-enabled').output.trim(), 'enabled')
    t.match(json(get1('status')), { module: { loaded: true }, pool: { poolBytes: POOL_MB * MiB }, watch: { running: true } })
    t.match(get1('dkms').output, new RegExp(`updates/dkms/spillway\\.ko`), 'the DKMS build is installed')
    t.match(get1('journal').output, /Started spillway-watch\.service/, 'systemd started watch')
    t.notMatch(get1('journal').output, /Failed|error/i, 'and it logged no error')
  })

  t.test('spillway uninstall --purge under systemd', async (t) => {
    const uninstall = get1('uninstall')
    t.equal(uninstall.status, 0, 'spillway uninstall --purge', { output: uninstall.output })
    const ran = uninstall.output
      .split('\n')
      .filter((l) => l.startsWith('spillway: running '))
      .map((l) => l.slice('spillway: running '.length))
    t.same(
      ran.map((c) => c.replace(/ -v \S+/, ' -v V')),
      [
        'systemctl stop spillway-watch.service',
        'systemctl disable spillway-watch.service',
        'modprobe -r spillway',
        'dkms remove -m spillway -v V --all',
        `update-initramfs -u -k ${release}`,
      ],
    )
    t.match(get1('uninstall-again'), { status: 0, output: 'spillway is not installed; nothing changed' })
  })
  if (!/^@@DONE /m.test(first.results)) return

  // The initramfs that uninstall rebuilt, read from the image's disk.
  const initrd2 = path.join(work, 'initrd-after-uninstall.img')
  const dump = spawnSync('debugfs', ['-R', `dump /boot/initrd.img-${release} ${initrd2}`, path.join(work, 'disk.img')], {
    encoding: 'utf8',
  })
  t.ok(fs.existsSync(initrd2) && fs.statSync(initrd2).size > 0, 'debugfs read the new initramfs from the disk', {
    stderr: dump.stderr,
  })
  const listing = spawnSync('lsinitramfs', [initrd2], { encoding: 'utf8' })
  t.equal(listing.status, 0, 'lsinitramfs')
  t.same(
    listing.stdout.split('\n').filter((l) => /spillway/.test(l)),
    [],
    'the rebuilt initramfs holds no spillway',
  )
  const second = await boot(work, 'removed', kernel, initrd2, release)
  const get2 = caseGetter(t, second.cases, second.results + consoleExcerpt(second.console))

  t.test('after a reboot: nothing left', async (t) => {
    t.match(second.results, /^@@DONE /m, 'the check unit ran to the end', { console: consoleExcerpt(second.console) })
    t.same(
      get2('boot-order')
        .output.split('\n')
        .filter((l) => /spillway:/.test(l)),
      [],
      'no spillway in the kernel log',
    )
    t.equal(
      get2('module')
        .output.split('\n')
        .filter((l) => l.startsWith('spillway ')).length,
      0,
      'the module is not loaded',
    )
    t.match(get2('dev-node').output, /No such file/, 'no /dev/spillway')
    t.match(get2('unit-active').output.trim(), 'inactive')
    t.equal(get2('unit-enabled').output.trim(), 'disabled')
    t.equal(get2('dkms').output.trim(), '', 'DKMS has no spillway build')
    t.equal(get2('etc-files').output.trim(), '', 'no file of install in /etc, no initramfs line')
    t.equal(
      get2('group').output.trim(),
      'spillway:x:' + /spillway:x:(\d+):/.exec(get1('group').output)?.[1] + ':',
      "the package's group stays until apt purge",
    )
    const before = kb(get1('meminfo').output, 'MemAvailable')
    const after = kb(get2('meminfo').output, 'MemAvailable')
    const freedMb = (after - before) / 1024
    progress(
      `MemAvailable with the pool ${Math.round(before / 1024)} MiB, without ${Math.round(after / 1024)} MiB: ${freedMb.toFixed(0)} MiB apart`,
    )
    t.ok(
      Math.abs(freedMb - POOL_MB) < 64,
      `MemAvailable is ${freedMb.toFixed(0)} MiB higher without the pool (pool ${POOL_MB} MiB)`,
    )
  })
  progress(`boots: ${first.seconds} s and ${second.seconds} s`)

  t.test('apt purge: prerm runs spillway uninstall, postrm removes the group', async (t) => {
    const r = await purge
    const get = caseGetter(t, parseCases(r.stdout), r.stdout)
    t.equal(get('purge').status, 0, 'apt-get purge -y spillway', { output: get('purge').output })
    t.match(get('purge').output, /spillway: running dkms remove -m spillway -v \S+ --all/, 'prerm ran spillway uninstall')
    t.match(get('purge').output, /spillway uninstalled \(\d+ steps\)/)
    t.equal(
      get('after-purge').output.trim(),
      'dpkg-query: no packages found matching spillway',
      'no file, build, link, line or group is left',
    )
  })
})
