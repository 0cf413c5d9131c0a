// Tests of the VM harness itself: TAP parsing, kernel selection, the module build's checks, and one
// guest run proving exit status, environment, writable overlay, NVMe swap and module loading.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { kernelProblemLines, kernelsUnderTest, panickedBeforeCommand, parseTap, repoRoot, runInVm, tapPlan } from './harness.js'

const here = path.join(repoRoot, 'test', 'vm')

t.test('parseTap reads results and their diagnostics', async (t) => {
  const output = [
    'spillway-init: 3.1s: running the command',
    '1..3',
    'ok 1 - loads',
    'not ok 2 - alloc rejects size 0',
    '# expected EINVAL',
    '[    4.123] some kernel line',
    '# got 0',
    'ok 3 - pin # SKIP no io_uring',
    'something else',
    '# not a diagnostic of test 3',
  ].join('\n')
  t.same(parseTap(output), [
    { name: 'loads', ok: true, diag: '' },
    { name: 'alloc rejects size 0', ok: false, diag: 'expected EINVAL\ngot 0' },
    { name: 'pin', ok: true, diag: 'SKIP no io_uring' },
  ])
  t.equal(tapPlan(output), 3)
  t.equal(tapPlan('no plan'), null)
  t.same(parseTap('okay\nnothing here'), [])
})

t.test('kernelProblemLines finds kernel splats but not test names', async (t) => {
  const lines = kernelProblemLines(
    [
      '[ 5.1] WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:1 foo',
      'ok 4 - no WARNING: in dmesg',
      '[ 6.0] BUG: unable to handle page fault',
      '[ 7.0] Oops: 0000 [#1] SMP',
      '[ 8.0] general protection fault',
      '[ 9.0] spillway: loaded',
      'ok 5 - buffer freed[   10.5] BUG: KASAN: use-after-free',
      '# WARNING: mentioned in a diagnostic',
    ].join('\n'),
  )
  t.same(
    lines.map((l) => l.slice(0, 12)),
    ['[ 5.1] WARNI', '[ 6.0] BUG: ', '[ 7.0] Oops:', '[ 8.0] gener', 'ok 5 - buffe'],
  )
})

t.test('panickedBeforeCommand: only a panic before the command started', async (t) => {
  const panic =
    'run-vm: 6.12: the guest kernel panicked: [    1.827170] Kernel panic - not syncing: Fatal exception in interrupt. Last 40 console lines:'
  t.ok(panickedBeforeCommand(`${panic}\n...\nrun-vm: 6.12: command started at ? s, total 5.5 s, exit 125\n`))
  t.notOk(
    panickedBeforeCommand(`${panic}\nrun-vm: 6.12: command started at 20.4 s, total 60.1 s, exit 125\n`),
    'the test ran: its panic counts',
  )
  t.notOk(panickedBeforeCommand('run-vm: 6.1: command started at ? s, total 900.0 s, exit 124\n'), 'a timeout is not retried')
  t.notOk(
    panickedBeforeCommand(
      "run-vm: 6.1: the guest's init failed: no job. Last 40 console lines:\nrun-vm: 6.1: command started at ? s, total 3.0 s, exit 125\n",
    ),
  )
})

t.test('kernelsUnderTest follows SPILLWAY_KERNELS', async (t) => {
  const saved = process.env.SPILLWAY_KERNELS
  t.teardown(() => {
    if (saved === undefined) delete process.env.SPILLWAY_KERNELS
    else process.env.SPILLWAY_KERNELS = saved
  })
  process.env.SPILLWAY_KERNELS = '6.12, 7.2'
  t.same(kernelsUnderTest(), ['6.12', '7.2'])
  process.env.SPILLWAY_KERNELS = '5.10'
  t.throws(() => kernelsUnderTest(), /unknown kernel '5.10'/)
  delete process.env.SPILLWAY_KERNELS
  t.ok(kernelsUnderTest().includes('6.1'), 'defaults include 6.1')
})

const series = kernelsUnderTest()[0] ?? '6.1'
const buildDir = path.join(here, 'build')

function buildFixture(src: string, outdir: string) {
  return spawnSync('sh', [path.join(here, 'build-kmod.sh'), series, outdir], {
    env: { ...process.env, SPILLWAY_KMOD_SRC: src },
    encoding: 'utf8',
  })
}

t.test(`build-kmod.sh (${series}) builds a clean module and rejects warnings`, async (t) => {
  const ok = buildFixture(path.join(here, 'fixtures', 'hello'), path.join(buildDir, `hello-${series}`))
  t.equal(ok.status, 0, 'the hello module builds', { stderr: ok.stderr.slice(-3000) })
  t.ok(fs.existsSync(path.join(buildDir, `hello-${series}`, 'hello.ko')), 'hello.ko exists')

  const warnSrc = path.join(buildDir, 'hello-warning-src')
  fs.rmSync(warnSrc, { recursive: true, force: true })
  fs.cpSync(path.join(here, 'fixtures', 'hello'), warnSrc, { recursive: true })
  const c = path.join(warnSrc, 'hello.c')
  fs.writeFileSync(c, fs.readFileSync(c, 'utf8').replace('return 0;', 'int unused_variable;\n\n\treturn 0;'))
  const bad = buildFixture(warnSrc, path.join(buildDir, `hello-warning-${series}`))
  t.not(bad.status, 0, 'a module that compiles with a warning fails the build')
  t.match(bad.stderr, /printed warnings/, 'and says why')
})

t.test(`a ${series} guest runs a command and reports its status`, async (t) => {
  const ko = path.join(buildDir, `hello-${series}`, 'hello.ko')
  const vm = await runInVm({
    kernel: series,
    nvme: true,
    swapMb: 64,
    timeoutS: 300,
    env: { SPILLWAY_HARNESS_PROBE: 'probe value' },
    command: [
      'sh',
      '-c',
      [
        'echo "cwd=$(pwd)"',
        'echo "kernel=$SPILLWAY_KERNEL vm=$SPILLWAY_VM probe=$SPILLWAY_HARNESS_PROBE home=$HOME"',
        'echo "spillway:x:990:" >> /etc/group && grep -c "^spillway:" /etc/group | sed "s/^/groups=/"',
        'grep -c "^/dev/nvme0n1" /proc/swaps | sed "s/^/nvme-swap=/"',
        `insmod ${ko} && grep -c "^hello " /proc/modules | sed "s/^/loaded=/" && rmmod hello`,
        'node -e "console.log(\'node=\' + (1 + 1))"',
        'exit 7',
      ].join('; '),
    ],
  })
  t.equal(vm.failure, null, 'the VM ran to the end', { output: vm.output.slice(-3000) })
  t.equal(vm.code, 7, "the command's exit status comes out")
  t.match(vm.output, `cwd=${repoRoot}`, 'cwd is the directory runInVm ran in')
  t.match(vm.output, `kernel=${series} vm=1 probe=probe value home=/root`, 'environment is set')
  t.match(vm.output, /^groups=1$/m, '/etc/group is writable in the overlay')
  t.match(vm.output, /^nvme-swap=1$/m, 'swap is on the NVMe disk')
  t.match(vm.output, /^loaded=1$/m, 'a module built by build-kmod.sh loads')
  t.match(vm.output, /^node=2$/m, 'node runs in the guest')
  t.same(kernelProblemLines(vm.output), [], 'no kernel splats')
  t.comment(`${series}: command started after ${vm.bootSeconds} s, total ${vm.totalSeconds} s`)
})
