// The real command as a subprocess on a host without the module (this CI machine).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ABI_MAJOR, ABI_MINOR } from '../../cli/src/lib/uapi.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const bin = path.join(repo, 'cli/bin/spillway.js')
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-run-'))
t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }))

function spillway(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, SPILLWAY_RUN_DIR: runDir },
    timeout: 60_000,
  })
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

const moduleHere = fs.existsSync('/sys/module/spillway')

t.test('status --json without the module', { skip: moduleHere && 'the module is loaded on this host' }, async (t) => {
  const r = spillway('status', '--json')
  t.equal(r.status, 3, 'exit 3: the module is not loaded')
  const report = JSON.parse(r.stdout)
  t.equal(report.version, JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version)
  t.equal(report.kernel, os.release())
  t.same(report.module, { loaded: false, device: '/dev/spillway', access: 'missing', abi: null, source: null })
  t.equal(report.pool, null)
  t.equal(report.buffers, null)
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8')
  const total = Number(/MemTotal:\s+(\d+) kB/.exec(meminfo)?.[1]) * 1024
  t.equal(report.memory.ramBytes, total, 'RAM is MemTotal')
  t.match(report.missing[0], /module is not loaded: `sudo spillway load`/)
  t.same(report.watch, { running: false, pid: null })
})

t.test('status as text says what is missing', { skip: moduleHere && 'the module is loaded on this host' }, async (t) => {
  const r = spillway('status')
  t.equal(r.status, 3)
  t.match(r.stdout, /^module {5}not loaded \(\/dev\/spillway is missing\)/, 'no colour when stdout is not a terminal')
  t.match(r.stdout, /\nversion {4}spillway \S+, kernel \S+\n/)
  const quiet = spillway('-q', 'status')
  t.same([quiet.status, quiet.stdout, quiet.stderr], [3, '', ''], '-q: only the exit status')
  t.same(spillway('status', '-q').stdout, '', 'also after the command')
  const forced = spawnSync(process.execPath, [bin, 'status'], {
    encoding: 'utf8',
    env: { ...process.env, SPILLWAY_RUN_DIR: runDir, FORCE_COLOR: '1', NO_COLOR: '' },
  })
  t.match(forced.stdout, /^module {5}\u001b\[31mnot loaded\u001b\[0m/, 'FORCE_COLOR paints')
  const noColor = spawnSync(process.execPath, [bin, 'status'], {
    encoding: 'utf8',
    env: { ...process.env, SPILLWAY_RUN_DIR: runDir, FORCE_COLOR: '1', NO_COLOR: '1' },
  })
  t.notMatch(noColor.stdout, /\u001b\[/, 'NO_COLOR wins')
  t.match(r.stdout, /missing:\n {2}- the spillway module is not loaded/)
})

const headersHere = fs.existsSync(`/lib/modules/${os.release()}/build`)

t.test(
  'dry runs show the whole plan and fail when a step would fail (no headers here)',
  { skip: (headersHere || moduleHere) && 'this host has kernel headers or the module' },
  async (t) => {
    const up = spillway('up', '--dry-run')
    t.equal(up.status, 1, 'up --dry-run: a step would fail')
    t.match(
      up.stdout,
      /^would run: make -j\d+ -C \/lib\/modules\/\S+\/build M=\S+\/kmod modules\n {2}would fail: no kernel headers for /,
    )
    t.match(up.stdout, /\nwould run: insmod \S+spillway\.ko pool_mb=\d+/, 'and goes on to the load')
    t.match(up.stderr, /watch: would start/, 'and to watch')
    t.match(up.stdout, /the dry run found 1 step that would fail/)
    const install = spillway('install', '--dry-run')
    t.equal(install.status, 1, 'install --dry-run: dkms build would fail')
    t.match(install.stdout, /run dkms build -m spillway -v \S+ -k \S+: build spillway\.ko/)
    t.match(
      install.stdout,
      /\nwould fail: no kernel headers for \S+ \(\/lib\/modules\/\S+\/build\), so spillway\.ko can not be built\n {2}what to do: /,
    )
  },
)

t.test('a closed pipe on stdout ends the command quietly (install --dry-run | true)', async (t) => {
  // `true` exits before node has started, so every write meets a closed pipe.
  const r = spawnSync('sh', ['-c', `"${process.execPath}" "${bin}" install --dry-run | true`], {
    encoding: 'utf8',
    env: { ...process.env, SPILLWAY_RUN_DIR: runDir },
  })
  t.equal(r.stderr.replace(/^spillway: .*\n/gm, ''), '', 'no stack trace on stderr')
  t.notMatch(r.stderr, /EPIPE/)
  const bash = spawnSync('bash', ['-c', `"${process.execPath}" "${bin}" install --dry-run | true; echo \${PIPESTATUS[0]}`], {
    encoding: 'utf8',
    env: { ...process.env, SPILLWAY_RUN_DIR: runDir },
  })
  t.equal(bash.stdout.trim(), '141', 'the status of a command killed by SIGPIPE')
})

t.test('doctor --json answers every check', async (t) => {
  const r = spillway('doctor', '--json')
  const report = JSON.parse(r.stdout)
  t.same(
    report.checks.map((c: { id: string }) => c.id),
    [
      'kernel',
      'headers',
      'dkms',
      'secure-boot',
      'module-signing',
      'module',
      'nvidia-driver',
      'pcie-link',
      'iommu',
      'swap',
      'cgroup2',
      'psi',
    ],
  )
  const failed = report.checks.some((c: { verdict: string }) => c.verdict === 'fail')
  t.equal(r.status, failed ? 1 : 0, 'exit 1 exactly when a check fails')
  t.equal(report.ok, !failed)
  for (const c of report.checks) {
    t.ok(['pass', 'warn', 'fail'].includes(c.verdict), `${c.id}: a verdict`)
    if (c.verdict !== 'pass') t.type(c.fix, 'string', `${c.id}: a fix`)
  }
  const byId = Object.fromEntries(report.checks.map((c: { id: string; verdict: string }) => [c.id, c.verdict]))
  t.equal(byId.cgroup2 === 'pass', fs.existsSync('/sys/fs/cgroup/cgroup.controllers'), 'the cgroup v2 verdict matches this host')
  t.equal(byId.module, moduleHere ? byId.module : 'warn', 'module not loaded is a warning')
  t.equal(byId.headers === 'pass', fs.existsSync(`/lib/modules/${os.release()}/build`), 'the headers verdict matches this host')
})

t.test('errors: one sentence, what to do, exit code; --debug adds the stack', async (t) => {
  const bad = spillway('pool', 'set', '8X')
  t.equal(bad.status, 2)
  t.match(bad.stderr, /"8X" is not a size/)
  const ram = Number(/MemTotal:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1]) * 1024
  const huge = spillway('pool', 'set', String(ram))
  t.equal(huge.status, 5)
  t.match(huge.stderr, /^spillway: refusing: a .* pool leaves 0 B of .* below the safe floor of .*\n {2}what to do: .*--force/)
  t.notMatch(huge.stderr, /\n {4}at /, 'no stack trace')
  const debug = spillway('--debug', 'pool', 'set', String(ram))
  t.match(debug.stderr, /\n {4}at /, '--debug shows the stack')
  const unknown = spillway('frobnicate')
  t.equal(unknown.status, 2)
  t.match(unknown.stderr, /unknown command 'frobnicate'/)
  if (!moduleHere) {
    const watermarks = spillway('pool', 'watermarks', '2G', '1G')
    t.equal(watermarks.status, 3)
    t.match(watermarks.stderr, /module is not loaded\n {2}what to do: load it with `sudo spillway load`/)
  }
  const run = spillway('run', '--', 'definitely-not-a-command-xyz')
  t.equal(run.status, 127)
  t.match(run.stderr, /definitely-not-a-command-xyz: command not found/)
})

t.test(
  'run passes the exit code and preloads the shim',
  { skip: !fs.existsSync(path.join(repo, 'shim/build/libspillway-cuda.so')) && 'the shim is not built' },
  async (t) => {
    const r = spillway('run', '--vram-limit', '1G', '--', 'sh', '-c', 'echo "$LD_PRELOAD $SPILLWAY_VRAM_LIMIT"; exit 7')
    t.equal(r.status, 7)
    t.equal(r.stdout.trim(), `${path.join(repo, 'shim/build/libspillway-cuda.so')} ${2 ** 30}`)
  },
)

t.test(
  'run says when the job was ended by a signal',
  { skip: !fs.existsSync(path.join(repo, 'shim/build/libspillway-cuda.so')) && 'the shim is not built' },
  async (t) => {
    const r = spillway('run', '--', 'sh', '-c', 'kill -TERM $$')
    t.equal(r.status, 143, '128 + SIGTERM, as a shell reports it')
    t.match(r.stderr, /the job was ended by SIGTERM/)
  },
)

t.test('help and version', async (t) => {
  const help = spillway('--help')
  t.equal(help.status, 0)
  for (const c of ['status', 'pool', 'up', 'load', 'unload', 'install', 'uninstall', 'watch', 'run', 'doctor', 'vm'])
    t.match(help.stdout, new RegExp(`\\n  ${c}\\b`), c)
  const version = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version
  t.equal(spillway('--version').stdout.trim(), version)
  t.equal(spillway('-v').stdout.trim(), version)
  const full = JSON.parse(spillway('version', '--json').stdout)
  t.match(full, { spillway: version, abi: `${ABI_MAJOR}.${ABI_MINOR}`, kernel: os.release(), node: process.versions.node })
  if (!moduleHere) t.equal(full.moduleAbi, null)
})

/** Starts watch with a config; returns the child and its stdout so far. */
async function startWatch(t: Pick<typeof import('tap').default, 'ok' | 'teardown'>, args: string[], ready: string | RegExp) {
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, [bin, 'watch', ...args], {
    env: { ...process.env, SPILLWAY_RUN_DIR: runDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const output = { text: '' }
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    output.text += d
  })
  await waitFor(() => (typeof ready === 'string' ? output.text.includes(ready) : ready.test(output.text)), 20_000)
  return { child, output }
}

async function waitFor(test: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!test() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
}

t.test(
  'watch without the module: PSI triggers on this kernel, clean stop on SIGTERM',
  {
    skip: !fs.existsSync('/proc/pressure/memory') && 'no PSI on this kernel',
  },
  async (t) => {
    const config = path.join(runDir, 'config.json')
    fs.writeFileSync(config, JSON.stringify({ watch: { psi: { windowMs: 2000, memorySomeWarnMs: 100 } } }))
    const { child, output } = await startWatch(t, ['--config', config, '--log-format', 'json'], '"event":"start"')
    t.ok(fs.existsSync(path.join(runDir, 'watch.pid')), 'watch wrote its pid file')
    child.kill('SIGTERM')
    const code = await new Promise((resolve) => child.once('exit', resolve))
    t.equal(code, 0)
    const lines = output.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    const start = lines.find((l) => l.event === 'start')
    t.same(
      start?.psi,
      ['memory some 100000 2000000', 'memory full 400000 2000000', 'io full 800000 2000000'],
      'the kernel accepted every trigger',
    )
    if (!moduleHere)
      t.match(
        lines.find((l) => l.event === 'source-missing'),
        { source: 'module', why: /not loaded/ },
      )
    t.match(lines.at(-1), { event: 'stop', reason: 'SIGTERM' })
    t.notOk(fs.existsSync(path.join(runDir, 'watch.pid')), 'the pid file is removed')
  },
)

t.test(
  'watch: readable log lines, SIGHUP reload, metrics as a file and over HTTP',
  {
    skip: !fs.existsSync('/proc/pressure/memory') && 'no PSI on this kernel',
  },
  async (t) => {
    const config = path.join(runDir, 'reload.json')
    const prom = path.join(runDir, 'spillway.prom')
    fs.writeFileSync(
      config,
      JSON.stringify({ watch: { psi: { windowMs: 2000 }, metrics: { textfile: prom, intervalSeconds: 1 } } }),
    )
    const { child, output } = await startWatch(t, ['--config', config, '--metrics-listen', '127.0.0.1:0'], /^start /m)
    t.match(
      output.text,
      /^start pid=\d+ module=false psi="memory some 200000 2000000, memory full 400000 2000000, io full 800000 2000000" /m,
      'a readable start line',
    )
    await waitFor(() => fs.existsSync(prom), 5000)
    const text = fs.readFileSync(prom, 'utf8')
    t.match(text, /^# TYPE spillway_module_loaded gauge\nspillway_module_loaded 0$/m, 'the textfile holds the metrics')
    t.match(text, /^spillway_build_info\{version="\d+\.\d+\.\d+"\} 1$/m)
    t.same(
      fs.readdirSync(runDir).filter((f) => f.endsWith('.tmp')),
      [],
      'written atomically: no temporary file left',
    )
    // Port 0: the kernel picks a free one, and the log line names it.
    await waitFor(() => /^metrics listen=/m.test(output.text), 5000)
    const port = Number(/^metrics listen=127\.0\.0\.1:(\d+)/m.exec(output.text)?.[1])
    if (port) {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`)
      t.equal(res.status, 200)
      t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
      t.match(await res.text(), /^spillway_jobs 0$/m)
      t.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404)
    } else t.fail('no metrics listen line', { output: output.text })

    // A bad config on SIGHUP is logged and the old one kept; a good one takes effect.
    fs.writeFileSync(config, '{"watch": {"psi": {"windowMs": 1}}}')
    child.kill('SIGHUP')
    await waitFor(() => output.text.includes('reload-failed'), 5000)
    t.match(output.text, /^reload-failed why=".*windowMs must be an integer from 500 to 10000/m)
    fs.writeFileSync(config, JSON.stringify({ watch: { psi: { windowMs: 2000, ioFullWarnMs: 0 }, freezeAtCritical: false } }))
    child.kill('SIGHUP')
    await waitFor(() => /^reload psi=/m.test(output.text), 5000)
    t.match(
      output.text,
      /^reload psi="memory some 200000 2000000, memory full 400000 2000000" psiChanged=true policy=\{"freezeAtCritical":false,/m,
      'the io trigger is gone, the policy changed',
    )
    child.kill('SIGTERM')
    t.equal(await new Promise((resolve) => child.once('exit', resolve)), 0)
    t.match(output.text.trim().split('\n').at(-1), /^stop reason=SIGTERM$/)
  },
)
