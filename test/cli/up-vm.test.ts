// `spillway up` from a checkout, run for real as root in a 6.1 VM (see vm-up.sh): the module is
// built in the guest with make, loaded with an auto-sized pool, watch started in the background.
// Everything it writes lands in the guest's tmpfs overlay. install and uninstall: the Debian package
// in a booted Debian 13 image, test/package/boot.test.ts.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { which } from '../../cli/src/io/exec.js'
import { prepareKernel, repoRoot, runInVm } from '../vm/harness.js'
import { caseGetter, json, parseCases } from './vm-cases.js'

const SERIES = '6.1'
const MiB = 2 ** 20
const kernel = await prepareKernel(SERIES)
const rel = kernel.release

const missing = ['make', 'insmod'].filter((tool) => !which(tool))
const skip = !fs.existsSync(path.join(repoRoot, 'cli/native/build/Release/spillway.node'))
  ? 'the native binding is not built'
  : missing.length
    ? `missing on this host: ${missing.join(', ')} (scripts/setup-test-deps.sh installs them)`
    : false

t.test('up for real in a 6.1 VM', { skip }, async (t) => {
  const vm = await runInVm({
    kernel: SERIES,
    command: ['sh', 'test/cli/vm-up.sh'],
    memMb: 1024,
    smp: 2,
    timeoutS: 900,
    env: { SPILLWAY_KERNEL_DIR: kernel.dir },
    logFile: process.env.SPILLWAY_UP_VM_LOG,
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
})
