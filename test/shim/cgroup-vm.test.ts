// The shim's cgroup v2 reader against a real cgroup v2 (the host may have none, or v1 only): in
// a QEMU guest, t_cgroup runs inside a cgroup with memory.max = 96 MiB (test/shim/cgroup-vm.sh)
// and checks the live figure, the virtual report bounded by it, and a spill past it refused.
import t from 'tap'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { kernelsUnderTest, parseTap, prepareKernel, runInVm, tapPlan } from '../vm/harness.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const program = join(root, 'test', 'shim', 'build', 't_cgroup')
const kernel = kernelsUnderTest()[0] ?? '6.12'

t.ok(existsSync(program), `t_cgroup is built (${program}; make -C shim)`)
await prepareKernel(kernel)
const vm = await runInVm({ kernel, command: ['sh', 'test/shim/cgroup-vm.sh'], memMb: 1024, timeoutS: 400 })
t.equal(vm.failure, null, `the guest ran (kernel ${kernel})${vm.failure ? `\n${vm.output.slice(-3000)}` : ''}`)
const results = parseTap(vm.output)
for (const r of results) {
  if (/^SKIP\b/i.test(r.diag)) t.fail(`${kernel}: ${r.name} was skipped in the guest, which has T_CGROUP_MAX`)
  else t.ok(r.ok, `${kernel}: ${r.name}${r.ok ? '' : `\n${r.diag}`}`)
}
t.equal(tapPlan(vm.output), results.length, 't_cgroup printed its whole plan in the guest')
t.equal(vm.code, 0, `t_cgroup exited 0 in the guest${vm.code ? `\n${vm.output.slice(-3000)}` : ''}`)
