// Builds spillway.ko for every kernel under test, boots each kernel in QEMU running the in-guest
// suite test/kmod/run-tests.sh, and turns each guest TAP line into an assertion "SERIES: name".
import t from 'tap'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {
  buildModule,
  concurrencyLimit,
  kernelProblemLines,
  kernelsUnderTest,
  parseTap,
  repoRoot,
  runInVm,
  tapPlan,
  type VmResult,
} from './harness.js'

// SPILLWAY_GUEST_SUITE runs another in-guest script instead (debugging the harness).
const GUEST_SUITE = process.env.SPILLWAY_GUEST_SUITE ?? 'test/kmod/run-tests.sh'
// The machine has 2 cores; each TCG guest keeps one busy.
const MAX_VMS = 2
const TAIL = 40

const tail = (text: string): string => text.split('\n').slice(-TAIL).join('\n')

interface KernelRun {
  ko: string
  vm: VmResult
}

const suitePresent = fs.existsSync(path.join(repoRoot, GUEST_SUITE))
t.ok(suitePresent, `${GUEST_SUITE} exists (the in-guest module tests)`)

// The suite's test programs are built on the host (the guest has the host's compilers too, but
// building once here keeps each VM run short).
let programsBuilt = true
if (suitePresent && fs.existsSync(path.join(repoRoot, 'test/kmod/Makefile'))) {
  const make = spawnSync('make', ['-s', '-C', 'test/kmod'], { cwd: repoRoot, encoding: 'utf8' })
  programsBuilt = make.status === 0
  t.equal(make.status, 0, 'make -C test/kmod builds the in-guest test programs', {
    output: (make.stdout + make.stderr).slice(-3000),
  })
}

if (suitePresent && programsBuilt) {
  const kernels = kernelsUnderTest()
  const limit = concurrencyLimit(MAX_VMS)
  const runs = new Map(
    kernels.map((series) => [
      series,
      // Fetching and building (mostly network and short compiles) run for every kernel at once;
      // only the VMs, which each keep a core busy, are limited.
      buildModule(series).then(async (ko): Promise<KernelRun> => {
        const vm = await limit(() =>
          runInVm({ kernel: series, command: ['sh', GUEST_SUITE], memMb: 1024, env: { SPILLWAY_KO: ko } }),
        )
        return { ko, vm }
      }),
    ]),
  )
  // Every promise gets a handler now, so one kernel's failure is reported in its own subtest.
  for (const p of runs.values()) p.catch(() => {})

  for (const series of kernels) {
    t.test(`kernel ${series}`, async (t) => {
      let run: KernelRun
      try {
        run = await (runs.get(series) as Promise<KernelRun>)
      } catch (err) {
        t.fail(`${series}: build or boot failed`, { diagnostic: true, error: String(err) })
        return
      }
      const { vm } = run
      t.comment(`${series}: command started after ${vm.bootSeconds ?? '?'} s, VM total ${vm.totalSeconds} s`)
      if (vm.failure) {
        t.fail(`${series}: the VM failed: ${vm.failure}`, { diagnostic: true, lastLines: tail(vm.output) })
        return
      }
      const results = parseTap(vm.output)
      t.ok(results.length > 0, `${series}: the guest suite reported results`, {
        lastLines: results.length ? undefined : tail(vm.output),
      })
      const plan = tapPlan(vm.output)
      if (plan !== null) t.equal(results.length, plan, `${series}: the guest ran all ${plan} planned tests`)
      for (const r of results) {
        t.ok(r.ok, `${series}: ${r.name}`, r.ok ? {} : { diagnostic: true, diag: r.diag })
      }
      t.equal(vm.code, 0, `${series}: ${GUEST_SUITE} exit status`, vm.code === 0 ? {} : { lastLines: tail(vm.output) })
      const problems = kernelProblemLines(vm.output)
      t.same(problems, [], `${series}: the kernel logged no BUG, WARNING, Oops, kmemleak or general protection`)
    })
  }
}
