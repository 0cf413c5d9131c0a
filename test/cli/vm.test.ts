// The spillway command against the real module in a 6.1 VM (one boot for every case, see
// vm-guest.sh), and a real DKMS build of the module against the cached 6.1 headers.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { ABI_MAJOR, ABI_MINOR } from '../../cli/src/lib/uapi.js'
import { prepareKernel, repoRoot, runInVm } from '../vm/harness.js'
import { caseGetter, json, parseCases } from './vm-cases.js'

const SERIES = '6.1'
/** The asserts the shared checks use (a subtest has them too). */
type Assert = Pick<typeof t, 'ok' | 'notOk' | 'equal' | 'not' | 'same' | 'match'>
const MiB = 2 ** 20

const kernel = await prepareKernel(SERIES)
const work = fs.mkdtempSync('/var/tmp/spillway-cli-vm-') // the guest's /tmp is its own; /var/tmp is the host's
fs.chmodSync(work, 0o755) // the guest's unprivileged users read the module from here too
t.teardown(() => fs.rmSync(work, { recursive: true, force: true }))

// DKMS, in private trees so the host's /var/lib/dkms and /usr/src stay untouched.
const version = /^PACKAGE_VERSION="?([^"\s]+)/m.exec(fs.readFileSync(path.join(repoRoot, 'dkms.conf'), 'utf8'))?.[1] ?? ''
const dkmsArgs = ['--sourcetree', `${work}/src`, '--dkmstree', `${work}/dkms`, '--installtree', `${work}/install`]
// DKMS looks for sign-file in the system's linux-kbuild package; a fresh machine has only the cached one.
const kbuild = path.join(kernel.dir, 'root/usr/lib')
const signFile =
  fs
    .readdirSync(kbuild)
    .filter((d) => d.startsWith('linux-kbuild-'))
    .map((d) => path.join(kbuild, d, 'scripts/sign-file'))[0] ?? ''
const dkmsEnv = { ...process.env, sign_file: signFile, mok_signing_key: `${work}/mok.key`, mok_certificate: `${work}/mok.pub` }
const dkms = (...args: string[]) => spawnSync('dkms', [...dkmsArgs, ...args], { env: dkmsEnv, encoding: 'utf8' })
let ko = ''
t.test('dkms add and build against the 6.1 headers', async (t) => {
  t.ok(version, 'dkms.conf has a PACKAGE_VERSION')
  const src = `${work}/src/spillway-${version}`
  for (const dir of [src, `${work}/dkms`, `${work}/install`]) fs.mkdirSync(dir, { recursive: true })
  spawnSync('cp', ['-a', path.join(repoRoot, 'dkms.conf'), path.join(repoRoot, 'kmod'), `${src}/`])
  fs.rmSync(path.join(src, 'kmod/spillway.ko'), { force: true })
  const add = dkms('add', '-m', 'spillway', '-v', version)
  t.equal(add.status, 0, 'dkms add', { output: add.stdout + add.stderr })
  const headers = fs.realpathSync(path.join(kernel.dir, 'headers'))
  const build = dkms('build', '-m', 'spillway', '-v', version, '-k', kernel.release, '--kernelsourcedir', headers)
  t.equal(build.status, 0, 'dkms build', { output: (build.stdout + build.stderr).slice(-3000) })
  const status = dkms('status', '-m', 'spillway')
  t.match(status.stdout, `spillway/${version}, ${kernel.release}, x86_64: built`)
  ko = path.join(work, 'dkms/spillway', version, kernel.release, 'x86_64/module/spillway.ko')
  t.ok(fs.existsSync(ko), 'the built module is where DKMS keeps it')
  const vermagic = spawnSync('modinfo', ['-F', 'vermagic', ko], { encoding: 'utf8' }).stdout
  t.match(vermagic, new RegExp(`^${kernel.release.replace(/[.+]/g, '\\$&')} `), 'built for the 6.1 kernel')
  t.equal(
    spawnSync('modinfo', ['-F', 'signer', ko], { encoding: 'utf8' }).stdout.trim(),
    'DKMS module signing key',
    'DKMS signed it with its MOK key',
  )
})

t.test(
  'the command in the VM',
  { skip: !fs.existsSync(path.join(repoRoot, 'cli/native/build/Release/spillway.node')) && 'the native binding is not built' },
  async (t) => {
    if (!ko || !fs.existsSync(ko)) {
      t.fail('no module: the DKMS build failed')
      return
    }
    const guestKo = path.join(work, 'spillway.ko')
    fs.copyFileSync(ko, guestKo)
    const vm = await runInVm({
      kernel: SERIES,
      command: ['sh', 'test/cli/vm-guest.sh'],
      memMb: 1024,
      timeoutS: 400,
      env: { SPILLWAY_KO: guestKo },
    })
    t.equal(vm.failure, null, 'the VM ran the script', { output: vm.output.slice(-4000) })
    const cases = parseCases(vm.output)
    const get = caseGetter(t, cases, vm.output)

    t.test('load: refused for a user, works for root', async (t) => {
      const user = get('load-as-user')
      t.equal(user.status, 4)
      t.match(user.output, /loading the module needs root\n {2}what to do: run it again with sudo/)
      const root = get('load')
      t.equal(root.status, 0, root.output)
      t.match(root.output, /spillway loaded: pool 128 MiB of 128 MiB requested/)
    })

    t.test('the udev rule gives /dev/spillway to the spillway group', async (t) => {
      // bookworm's udevadm (252) has no `verify` (added in 253): `udevadm test` applies the rule instead.
      t.equal(get('udev-test').status, 0, get('udev-test').output)
      t.equal(get('dev-node').output.trim(), 'crw-rw---- root spillway')
    })

    t.test('status as root, as a group member and as an outsider', async (t) => {
      const root = json(get('status-root'))
      t.same(root.module, {
        loaded: true,
        device: '/dev/spillway',
        access: 'read-only',
        abi: { major: ABI_MAJOR, minor: ABI_MINOR },
        source: 'ioctl',
      })
      t.match(root.pool, { poolBytes: 128 * MiB, requestedBytes: 128 * MiB, usedBytes: 0, freeBytes: 128 * MiB, buffers: 0 })
      t.match(root.pressure, { level: 'ok', watermarkWarnBytes: 550 * MiB, watermarkCriticalBytes: 400 * MiB })
      t.same(root.buffers, [])
      const member = json(get('status-tester'))
      t.equal(get('status-tester').status, 0)
      t.match(member.module, { access: 'read-only', source: 'ioctl' })
      t.match(member.pool, { poolBytes: 128 * MiB })
      const outsider = json(get('status-outsider'))
      t.match(
        outsider.module,
        { loaded: true, access: 'denied', source: 'sysfs' },
        'an outsider can not open the device but reads sysfs',
      )
      t.match(outsider.pool, { poolBytes: 128 * MiB, buffers: 0 })
      t.match(outsider.missing[0], /may not open \/dev\/spillway: add yourself to the spillway group/)
    })

    t.test('pool set', async (t) => {
      const set = get('pool-set')
      t.equal(set.status, 0, set.output)
      t.match(set.output, /pool is now 192 MiB/)
      const unsafe = get('pool-set-unsafe')
      t.equal(unsafe.status, 5)
      t.match(unsafe.output, /refusing: a 900 MiB pool leaves .* below the safe floor/)
      const user = get('pool-set-tester')
      t.equal(user.status, 4)
      t.match(user.output, /RESIZE needs root \(CAP_SYS_ADMIN\)\n {2}what to do: run it again with sudo/)
      t.match(json(get('pool-show-tester')), { loaded: true, pool: { poolBytes: 192 * MiB } })
    })

    t.test('unload refuses while a buffer is in use', async (t) => {
      const status = json(get('status-buffers'))
      t.equal(status.buffers?.length, 1, 'status lists the buffer')
      t.match(status.buffers?.[0], { size: 8 * MiB, command: 'node' })
      t.match(
        status.holders,
        [{ user: 'tester', command: 'node', buffers: 1, bytes: 8 * MiB }],
        'status: one holder, per process',
      )
      const ps = json(get('ps-buffers'))
      t.match(ps, { processes: [{ user: 'tester', command: 'node', buffers: 1, bytes: 8 * MiB }] }, 'ps --json: the holder')
      t.equal(ps.processes?.length, 1)
      t.equal(ps.processes?.[0]?.share, (8 * MiB) / ps.poolBytes, 'its share of the pool')
      t.match(get('ps-text').output, /pool .*: 8(\.0)? MiB held by 1 process\n.*tester.*node/s, 'ps: the table')
      const busy = get('unload-busy')
      t.equal(busy.status, 6)
      t.match(busy.output, /refusing to unload: 1 buffer is still in use by pid \d+ \(node\)/)
      const user = get('unload-tester')
      t.equal(user.status, 4, 'a user may not unload')
    })

    /** The watch log of one case, its freeze and thaw checked; returns them for the job's checks. */
    function checkFreezeThaw(t: Assert, logCase: string): { log: Record<string, any>[]; freezeAt: number; thawAt: number } {
      const log = get(logCase)
        .output.split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l))
      const kinds = log.map((l) => l.event)
      t.ok(kinds.includes('start'), 'watch started')
      const freeze = log.find((l) => l.event === 'freeze')
      const thaw = log.find((l) => l.event === 'thaw')
      t.ok(freeze, 'the job was frozen')
      t.ok(thaw, 'and thawed')
      t.equal(thaw?.job, freeze?.job)
      const freezeAt = Date.parse(freeze?.time) / 1000
      const thawAt = Date.parse(thaw?.time) / 1000
      t.ok(thawAt > freezeAt, 'thaw after freeze')
      const levelOk = log.findIndex((l) => l.event === 'level' && l.level === 'ok')
      t.ok(levelOk > kinds.indexOf('freeze') && levelOk < kinds.indexOf('thaw'), 'thawed when the level came back to ok')
      t.equal(kinds.at(-1), 'stop')
      return { log, freezeAt, thawAt }
    }

    /** The job's output: it ran as the sudo user, printed every step in order, nothing while frozen. */
    function checkJob(t: Assert, jobCase: string, freezeAt: number, thawAt: number): void {
      const job = get(jobCase)
      t.equal(job.status, 0, 'the job finished with status 0')
      const lines = job.output.trim().split('\n')
      t.not(lines[0], '0', 'the job ran as the sudo user, not root')
      const steps = lines.slice(1, -1).map((l) => l.split(' '))
      t.ok(steps.length >= 2, `${steps.length} steps`)
      t.same(
        steps.map((s) => s[1]),
        steps.map((_, i) => String(i + 1)),
        'every step, in order: nothing lost',
      )
      t.equal(lines.at(-1), 'done')
      const during = steps.map((s) => Number(s[2])).filter((at) => at > freezeAt + 0.2 && at < thawAt - 0.05)
      t.same(during, [], 'the frozen job printed nothing between freeze and thaw')
      t.ok(thawAt - freezeAt > 0.5, `frozen for ${(thawAt - freezeAt).toFixed(1)} s`)
    }

    t.test('watch freezes the --oom-safe job at critical and thaws it at ok', async (t) => {
      const { log, freezeAt, thawAt } = checkFreezeThaw(t, 'watch-log')
      t.equal(log[0]?.event, 'start')
      t.ok(
        log.some((l) => l.event === 'module' && l.type === 'level' && l.level === 'critical'),
        'the module reported critical',
      )
      checkJob(t, 'job-output', freezeAt, thawAt)
      t.match(get('job-stderr').output, /job job-\S+ runs in \/sys\/fs\/cgroup\/spillway\/job-/)
      t.equal(get('jobs-left').output.trim(), '', 'the job file and its cgroup are gone')
    })

    t.test('unload, then status and install --dry-run', async (t) => {
      t.equal(get('unload').status, 0, get('unload').output)
      const status = json(get('status-unloaded'))
      t.equal(status.module?.loaded, false)
      t.equal(status.pool, null)
      const dry = get('install-dry-run')
      // The guest has no headers for its kernel: the plan is shown, and says that dkms build would fail.
      t.equal(dry.status, 1, dry.output)
      t.match(
        dry.output,
        /\nwould fail: no kernel headers for \S+ \(\/lib\/modules\/\S+\/build\), so spillway\.ko can not be built\n {2}what to do: \S/,
      )
      for (const expected of [
        `spillway ${version} for kernel ${kernel.release}`,
        `run dkms add -m spillway -v ${version}`,
        `run dkms build -m spillway -v ${version} -k ${kernel.release}`,
        'write /etc/udev/rules.d/60-spillway.rules (mode 644)',
        'write /etc/modprobe.d/spillway.conf (mode 644)',
        '    | options spillway pool_mb=256',
      ])
        t.ok(dry.output.includes(expected), `dry run shows: ${expected}`)
      t.match(dry.output, /run groupadd --system spillway: .*\(already done\)/, 'the group made above is seen')
    })

    t.test('watch on PSI alone: a memory stall freezes the job, its end thaws it', async (t) => {
      const { log, freezeAt, thawAt } = checkFreezeThaw(t, 'psi-watch-log')
      t.match(
        log.find((l) => l.event === 'start'),
        { module: false, psi: ['memory some 200000 2000000', 'memory full 400000 2000000', 'io full 800000 2000000'] },
      )
      t.notOk(
        log.some((l) => l.event === 'module'),
        'no module events: the module is unloaded',
      )
      const critical = log.find((l) => l.event === 'psi' && l.level === 'critical')
      t.match(critical, { resource: 'memory', kind: 'full', stallMs: 400, windowMs: 2000 }, 'the memory full trigger fired')
      t.ok(Date.parse(critical?.time) / 1000 <= freezeAt, 'the freeze followed the PSI event')
      checkJob(t, 'psi-job-output', freezeAt, thawAt)
    })
  },
)
