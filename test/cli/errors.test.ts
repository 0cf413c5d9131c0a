// Every error path ends in one clear sentence, what to do, and a documented exit code.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { CliError, EXIT, formatError } from '../../cli/src/errors.js'
import { deviceError } from '../../cli/src/io/device.js'
import { readConfig } from '../../cli/src/io/config-file.js'
import { decidePoolSize, poolWatermarks } from '../../cli/src/commands/pool.js'
import { exitCodeOf, findShim, jobEnv, oomSafeArgv, runAction } from '../../cli/src/commands/run.js'
import { parseJobRecord, newJobId } from '../../cli/src/lib/jobs.js'
import { preloadValue, shimBanner, shimCandidates } from '../../cli/src/lib/shim-path.js'
import { GiB, MiB } from '../../cli/src/lib/sizes.js'

t.test('formatError', async (t) => {
  const e = new CliError('the pool is too large', 'choose a smaller size', EXIT.unsafe)
  t.same(formatError(e, false), { text: 'spillway: the pool is too large\n  what to do: choose a smaller size', exitCode: 5 })
  t.match(formatError(e, true).text, /\n {4}at /, '--debug adds the stack')
  const unexpected = formatError(new TypeError('x is undefined'), false)
  t.equal(unexpected.exitCode, EXIT.failed)
  t.equal(
    unexpected.text,
    'spillway: unexpected error: x is undefined\n  what to do: run again with --debug for the stack trace and report it as a bug',
  )
  t.equal(formatError('a string', false).exitCode, 1)
})

t.test('device errors say what to do', async (t) => {
  const sys = (code: string) => Object.assign(new Error(`open: ${code}`), { code })
  const cases: [string, number, RegExp, RegExp][] = [
    ['ENOENT', EXIT.noModule, /not loaded/, /spillway load/],
    ['ENODEV', EXIT.noModule, /not loaded/, /spillway load/],
    ['EACCES', EXIT.permission, /permission denied/, /usermod -aG spillway/],
    ['EPERM', EXIT.permission, /needs root/, /sudo/],
    ['ENOTTY', EXIT.failed, /does not understand/, /different versions/],
    ['EIO', EXIT.failed, /failed: open: EIO/, /dmesg/],
  ]
  for (const [code, exit, message, hint] of cases) {
    const error = deviceError(sys(code), 'open')
    t.equal(error.exitCode, exit, code)
    t.match(error.message, message, code)
    t.match(error.hint, hint, code)
  }
})

t.test('unsafe pool sizes are refused unless forced', async (t) => {
  const facts = { ramBytes: 16 * GiB, vramBytes: 8 * GiB }
  t.throws(() => decidePoolSize(15 * GiB, false, facts), {
    exitCode: EXIT.unsafe,
    message: /refusing: a 15 GiB pool leaves 1 GiB/,
    hint: /--force/,
  })
  t.match(decidePoolSize(15 * GiB, true, facts), { bytes: 15 * GiB, note: /^FORCED/ })
  t.same(decidePoolSize(3 * MiB, false, facts), { bytes: 4 * MiB, note: 'the size asked for, rounded up to 2 MiB' })
  t.match(
    decidePoolSize('auto', false, facts),
    { bytes: 12 * GiB, note: /minus the OS reserve of 4 GiB/ },
    '16 GiB RAM, 8 GiB VRAM: 16 GiB wanted, 12 GiB room',
  )
  await t.rejects(poolWatermarks({ warnBytes: GiB, criticalBytes: 2 * GiB }), {
    exitCode: EXIT.usage,
    message: /critical watermark \(2 GiB\) is above the warn watermark \(1 GiB\)/,
  })
})

t.test('config file errors', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-config-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'config.json')
  t.throws(() => readConfig(path.join(dir, 'missing.json')), { exitCode: EXIT.usage, message: /can not read the config file/ })
  fs.writeFileSync(file, '{ "watch": ')
  t.throws(() => readConfig(file), { exitCode: EXIT.usage, message: /is not valid JSON/ })
  fs.writeFileSync(file, '{ "watch": { "psi": { "windowMs": 5 } } }')
  t.throws(() => readConfig(file), {
    exitCode: EXIT.usage,
    message: /config\.json: watch\.psi\.windowMs must be an integer from 500 to 10000, not 5/,
  })
  fs.writeFileSync(file, '{ "watch": { "hooks": { "warn": ["logger hi"] } } }')
  t.same(readConfig(file).watch.hooks.warn, ['logger hi'])
})

t.test('the shim is found in the documented order', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-shim-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  t.same(shimCandidates({ SPILLWAY_SHIM: '/x.so' }, '/repo'), ['/x.so'], 'SPILLWAY_SHIM is the only candidate when set')
  t.same(shimCandidates({}, '/repo'), [
    '/repo/shim/build/libspillway-cuda.so',
    '/usr/local/lib/spillway/libspillway-cuda.so',
    '/usr/lib/spillway/libspillway-cuda.so',
  ])
  t.throws(() => findShim({}, dir), {
    message: /libspillway-cuda\.so was not found \(looked at .*shim\/build\/libspillway-cuda\.so, /,
    hint: /make -C shim.*SPILLWAY_SHIM/,
  })
  fs.mkdirSync(path.join(dir, 'shim/build'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'shim/build/libspillway-cuda.so'), '')
  t.equal(findShim({}, dir), path.join(dir, 'shim/build/libspillway-cuda.so'))
  t.throws(
    () => findShim({ SPILLWAY_SHIM: path.join(dir, 'none.so') }, dir),
    {
      exitCode: EXIT.failed,
      message: /^SPILLWAY_SHIM=.*none\.so does not exist$/,
      hint: /point SPILLWAY_SHIM at libspillway-cuda\.so/,
    },
    'a SPILLWAY_SHIM that does not exist is an error, not replaced by the one that does',
  )
  fs.writeFileSync(path.join(dir, 'mine.so'), '')
  t.equal(findShim({ SPILLWAY_SHIM: path.join(dir, 'mine.so') }, dir), path.join(dir, 'mine.so'), 'SPILLWAY_SHIM wins')
  await t.rejects(runAction({ command: [], oomSafe: false }), { exitCode: EXIT.usage, message: 'no command given' })
})

t.test('run exits like a shell', async (t) => {
  t.equal(exitCodeOf(3, null), 3)
  t.equal(exitCodeOf(null, 'SIGKILL'), 137)
  t.equal(exitCodeOf(null, 'SIGTERM'), 143)
})

t.test('the job environment', async (t) => {
  t.equal(preloadValue('/s.so', undefined), '/s.so')
  t.equal(preloadValue('/s.so', '/a.so /b.so:/s.so'), '/s.so:/a.so:/b.so')
  const env = jobEnv({ PATH: '/bin', LD_PRELOAD: '/a.so' }, '/s.so', { command: ['x'], oomSafe: false, vramLimitBytes: 8 * GiB })
  t.same(env, { PATH: '/bin', LD_PRELOAD: '/s.so:/a.so', SPILLWAY_VRAM_LIMIT: String(8 * GiB) })
  t.equal(jobEnv({}, '/s.so', { command: ['x'], oomSafe: false, report: 'virtual' }).SPILLWAY_REPORT, 'virtual')
  t.equal(
    jobEnv({ SPILLWAY_REPORT: 'virtual' }, '/s.so', { command: ['x'], oomSafe: false }).SPILLWAY_REPORT,
    'virtual',
    "the caller's variable stays without --report",
  )
  t.equal(
    shimBanner('/s.so', { SPILLWAY_VRAM_LIMIT: String(8 * GiB) }),
    'shim /s.so active; VRAM budget 8 GiB; report physical (free memory is VRAM only)',
  )
  t.equal(
    shimBanner('/s.so', { SPILLWAY_REPORT: 'virtual' }),
    'shim /s.so active; VRAM budget: the card; report virtual (free memory includes what can spill)',
  )
  t.equal(
    shimBanner('/s.so', { SPILLWAY_VRAM_LIMIT: '8G' }),
    'shim /s.so active; VRAM budget 8G; report physical (free memory is VRAM only)',
  )
  const argv = oomSafeArgv('/sys/fs/cgroup/spillway/j/cgroup.procs', ['python', 'x.py'], {})
  t.same(argv.slice(0, 2), ['/bin/sh', '-c'])
  t.same(argv.slice(3), ['spillway-run', '/sys/fs/cgroup/spillway/j/cgroup.procs', 'python', 'x.py'])
  t.match(argv[2], /echo \$\$ > "\$1" \|\| exit 125; shift; .*exec "\$@"/)
})

t.test('job records are checked before watch trusts them', async (t) => {
  const base = '/sys/fs/cgroup/spillway'
  const good = { id: 'job-1', pid: 10, cgroup: `${base}/job-1`, command: ['x'], uid: 1000, startedAt: 'now' }
  t.same(parseJobRecord(JSON.stringify(good), base), good)
  t.throws(() => parseJobRecord('{', base), { message: 'not JSON' })
  t.throws(
    () => parseJobRecord(JSON.stringify({ ...good, cgroup: '/sys/fs/cgroup/system.slice' }), base),
    { message: /cgroup must be/ },
    'a job can not name another cgroup',
  )
  t.throws(() => parseJobRecord(JSON.stringify({ ...good, id: '../x' }), base), { message: 'bad id' })
  t.throws(() => parseJobRecord(JSON.stringify({ ...good, pid: 0 }), base), { message: 'bad pid' })
  t.match(newJobId(42, new Date('2026-11-23T01:02:03.456Z')), 'job-20261123T010203-42')
})
