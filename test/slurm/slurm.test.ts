// Issue 18 item 2, for real: Debian bookworm's Slurm (slurmctld, slurmd, munge) in a VM guest hands
// out the pool as the GRES `spillway`, and the packaged Prolog/Epilog/TaskProlog give each job its
// cgroup share. The guest script is test/slurm/slurm-in-vm.sh; its TAP lines become assertions.
// One kernel (the first under test that is 6.12 or later, else the first): the module's shares are
// tested on every kernel by test/kmod.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {
  buildModule,
  kernelProblemLines,
  kernelsUnderTest,
  parseTap,
  progress,
  repoRoot,
  runInVm,
  tapPlan,
} from '../vm/harness.js'

const TAIL = 60
const tail = (text: string): string => text.split('\n').slice(-TAIL).join('\n')

const kernels = kernelsUnderTest()
const series = kernels.find((k) => k === '6.12') ?? kernels[0] ?? '6.12'

t.test(`Slurm with the spillway GRES on kernel ${series}`, async (t) => {
  progress('Slurm and munge .debs: fetching or finding them in the cache')
  const fetch = spawnSync('sh', [path.join(repoRoot, 'test/slurm/fetch-debs.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const debs = fetch.stdout.trim().split('\n').pop() ?? ''
  if (fetch.status !== 0 || !fs.existsSync(path.join(debs, '.complete'))) {
    t.fail(`test/slurm/fetch-debs.sh failed (exit ${fetch.status})`)
    return
  }
  t.ok(
    fs.readdirSync(debs).some((f) => f.startsWith('slurmd_')),
    `slurmd's .deb is in ${debs}`,
  )
  const ko = await buildModule(series)
  const vm = await runInVm({
    kernel: series,
    command: ['sh', 'test/slurm/slurm-in-vm.sh'],
    memMb: 4608,
    smp: 2,
    timeoutS: 420,
    env: { SPILLWAY_KO: ko, SPILLWAY_SLURM_DEBS: debs },
    // the console as it comes, for debugging: SPILLWAY_SLURM_LOG=/tmp/slurm-console.log
    logFile: process.env.SPILLWAY_SLURM_LOG,
  })
  t.comment(`${series}: started after ${vm.bootSeconds ?? '?'} s, VM total ${vm.totalSeconds} s`)
  if (vm.failure) {
    t.fail(`the VM failed: ${vm.failure}`, { diagnostic: true, lastLines: tail(vm.output) })
    return
  }
  const results = parseTap(vm.output)
  t.ok(results.length > 0, 'the guest reported results', { lastLines: results.length ? undefined : tail(vm.output) })
  t.equal(results.length, tapPlan(vm.output), 'the guest ran all its planned tests')
  t.ok(results.length >= 15, `the guest got through the jobs (${results.length} results)`)
  for (const r of results) t.ok(r.ok, r.name, r.ok ? {} : { diagnostic: true, diag: r.diag })
  t.equal(vm.code, 0, 'the guest script exit status', vm.code === 0 ? {} : { lastLines: tail(vm.output) })
  t.same(kernelProblemLines(vm.output), [], 'the console shows no BUG, WARNING, Oops, kmemleak or general protection')
})
