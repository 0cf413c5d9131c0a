// test/gpu/driver_facts.c, the probe that prints what the real driver answers (issue 13), run
// against the fake driver: it must build and run through, and the fake must give the answers
// that were measured on the H100 (shared/notes/cuda.md, issue 13). The other facts it prints
// are the fake's reading of CUDA's documentation, to compare with a GPU run of the probe.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const build = join(root, 'test', 'shim', 'build')
const cudaInc = process.env.CUDA_INC ?? '/usr/local/cuda-13.0/include'

// Measured on the H100, driver 580.159.04: key, value.
const measured: Array<[string, string, string]> = [
  ['capture.relaxed.event_query_captured.rc', '907', 'waiting on a captured event is 907 (relaxed mode)'],
  ['capture.relaxed.event_query_captured.status_after', '2', '... and invalidates the capture'],
  ['capture.relaxed.event_query_captured.end_rc', '901', '... which then ends with 901'],
  ['capture.global.host_register.rc', '900', 'cuMemHostRegister during capture is 900'],
  ['handle.device_fabric.create_rc', '800', 'a FABRIC handle is refused with 800 even on device memory'],
  ['handle.host_posix_fd.create_rc', '1', 'HOST refuses shareable handle types'],
  ['export.registered.ipc_rc', '1', 'cuIpcGetMemHandle fails on registered host memory'],
  ['attr.registered.2', '1', 'registered memory is MEMORY_TYPE HOST'],
  ['attr.host_numa.2', '1', 'host-NUMA VMM memory is MEMORY_TYPE HOST'],
  ['attr.registered.devptr_is_hostptr', '1', 'registered memory: device pointer == host pointer'],
  ['fork.cuMemAlloc', '3', 'a forked child gets 3 from cuMemAlloc'],
  ['fork.cuCtxSetCurrent', '3', '... and from cuCtxSetCurrent'],
  ['done', '1', 'the probe ran through'],
]

const lib = join(build, 'libcuda.so')
t.ok(existsSync(lib), `the fake driver is built (${lib}; make -C shim)`)
if (existsSync(lib)) {
  const exe = join(mkdtempSync(join(tmpdir(), 'driver-facts-')), 'driver_facts')
  const cc = spawnSync(
    'cc',
    [
      '-O1',
      '-std=gnu11',
      `-I${cudaInc}`,
      '-o',
      exe,
      join(root, 'test', 'gpu', 'driver_facts.c'),
      `-L${build}`,
      '-lcuda',
      '-lpthread',
    ],
    { encoding: 'utf8' },
  )
  t.equal(cc.status, 0, `driver_facts.c builds against the fake driver${cc.stderr ? `: ${cc.stderr.slice(-1500)}` : ''}`)
  if (cc.status === 0) {
    const env: NodeJS.ProcessEnv = { ...process.env, LD_LIBRARY_PATH: build, FAKE_CUDA_VRAM: '16G' }
    for (const name of Object.keys(env)) {
      if (name.startsWith('SPILLWAY_') || (name.startsWith('FAKE_CUDA_') && name !== 'FAKE_CUDA_VRAM')) delete env[name]
    }
    delete env.LD_PRELOAD
    const run = spawnSync(exe, ['all'], { env, encoding: 'utf8', timeout: 60_000 })
    t.equal(run.status, 0, `it runs through on the fake driver${run.stderr ? `: ${run.stderr.slice(-1500)}` : ''}`)
    const facts = new Map<string, string>()
    for (const line of (run.stdout ?? '').split('\n')) {
      const m = /^fact (\S+) (.*)$/.exec(line)
      if (m) facts.set(m[1] as string, m[2] as string)
    }
    t.ok(facts.size > 200, `it printed ${facts.size} facts`)
    for (const [key, value, what] of measured) t.equal(facts.get(key), value, `${what} (${key})`)
    // The probe's capture cases leave a few MiB in the pool (graphs never launched): compare the cache.
    const cached =
      Number(facts.get('pool.tmax.reserved_after_free_sync_mib')) - Number(facts.get('pool.tmax.used_after_free_sync_mib'))
    t.equal(cached, 1024, 'the default pool keeps 1 GiB freed with the release threshold at its maximum')
  }
}
