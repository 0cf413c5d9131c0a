// Reliability suite (issue 7 items 2-5): for every kernel under test, builds spillway.ko, boots one
// VM that runs test/reliability/run-in-vm.sh (ioctl fuzzing, concurrency stress, security) and one
// that runs test/reliability/oom-scenario.sh (the --oom-safe job against a memory hog), and turns
// each guest TAP line into an assertion "SERIES: name". The guest programs are built on the host by
// `make -C test/reliability` (scripts/build.sh).
import t from 'tap'
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
} from '../vm/harness.js'

const here = path.join(repoRoot, 'test', 'reliability')
// The machine has 2 cores; each TCG guest keeps one busy (the guests use --smp 2 for real races).
const MAX_VMS = 2
const TAIL = 40
const FUZZ_MIN_IOCTLS = 100000

const tail = (text: string): string => text.split('\n').slice(-TAIL).join('\n')

interface Suite {
  label: string
  script: string
  timeoutS: number
  env: Record<string, string>
}

const SUITES: Suite[] = [
  { label: 'fuzz, stress, security', script: 'run-in-vm.sh', timeoutS: 480, env: {} },
  {
    label: 'oom-safe scenario',
    script: 'oom-scenario.sh',
    timeoutS: 480,
    env: { SPILLWAY_OOM_RUNS: process.env.SPILLWAY_OOM_RUNS ?? '1' },
  },
  {
    label: 'oom victim',
    script: 'oom-victim.sh',
    timeoutS: 480,
    env: { SPILLWAY_OOM_VICTIM_ROUNDS: process.env.SPILLWAY_OOM_VICTIM_ROUNDS ?? '1' },
  },
]

const programsBuilt = fs.existsSync(path.join(here, 'build', 'fuzz'))
t.ok(programsBuilt, 'test/reliability/build holds the guest programs (make -C test/reliability)')

if (programsBuilt) {
  const kernels = kernelsUnderTest()
  const limit = concurrencyLimit(MAX_VMS)
  const modules = new Map(kernels.map((series) => [series, buildModule(series)]))
  const runs = new Map<string, Promise<VmResult>>()
  for (const series of kernels) {
    for (const suite of SUITES) {
      runs.set(
        `${series} ${suite.script}`,
        limit(async () => {
          const ko = await (modules.get(series) as Promise<string>)
          return runInVm({
            kernel: series,
            command: ['sh', `test/reliability/${suite.script}`],
            memMb: 1024,
            smp: 2,
            timeoutS: suite.timeoutS,
            env: { SPILLWAY_KO: ko, ...suite.env },
          })
        }),
      )
    }
  }
  // Every promise gets a handler now, so one kernel's failure is reported in its own subtest.
  for (const p of [...modules.values(), ...runs.values()]) p.catch(() => {})

  for (const series of kernels) {
    for (const suite of SUITES) {
      t.test(`kernel ${series}: ${suite.label}`, async (t) => {
        let vm: VmResult
        try {
          vm = await (runs.get(`${series} ${suite.script}`) as Promise<VmResult>)
        } catch (err) {
          t.fail(`${series}: build or boot failed`, { diagnostic: true, error: String(err) })
          return
        }
        t.comment(`${series}: ${suite.script} started after ${vm.bootSeconds ?? '?'} s, VM total ${vm.totalSeconds} s`)
        if (vm.failure) {
          t.fail(`${series}: the VM failed: ${vm.failure}`, { diagnostic: true, lastLines: tail(vm.output) })
          return
        }
        for (const line of vm.output.split('\n')) {
          if (/^(FUZZ_STATS|STRESS_STATS|OOM_MARGIN|OOM_VICTIM) /.test(line)) t.comment(`${series}: ${line}`)
        }
        const results = parseTap(vm.output)
        t.ok(results.length > 0, `${series}: ${suite.script} reported results`, {
          lastLines: results.length ? undefined : tail(vm.output),
        })
        const plan = tapPlan(vm.output)
        t.equal(results.length, plan, `${series}: ${suite.script} ran all its planned tests`)
        for (const r of results) {
          t.ok(r.ok, `${series}: ${r.name}`, r.ok ? {} : { diagnostic: true, diag: r.diag })
        }
        if (suite.script === 'run-in-vm.sh') {
          const ioctls = Number(/^FUZZ_STATS .*\bioctls=(\d+)/m.exec(vm.output)?.[1] ?? 0)
          t.ok(ioctls >= FUZZ_MIN_IOCTLS, `${series}: the fuzzer made at least ${FUZZ_MIN_IOCTLS} ioctl calls (${ioctls})`)
        }
        t.equal(vm.code, 0, `${series}: ${suite.script} exit status`, vm.code === 0 ? {} : { lastLines: tail(vm.output) })
        t.same(
          kernelProblemLines(vm.output),
          [],
          `${series}: the console shows no BUG, WARNING, Oops, kmemleak or general protection`,
        )
      })
    }
  }
}
