// Prometheus text of the watch daemon, and the per-process view of who holds the pool.
import t from 'tap'
import { holders } from '../../cli/src/lib/holders.js'
import { emptyCounters, escapeLabel, parseListen, renderMetrics } from '../../cli/src/lib/metrics.js'
import type { MetricsSnapshot } from '../../cli/src/lib/metrics.js'
import { GiB, MiB } from '../../cli/src/lib/sizes.js'

const users = (uid: number) => ({ 0: 'root', 1000: 'alice' })[uid] ?? null

t.test('holders: buffers summed per process, largest first', async (t) => {
  const rows = holders(
    [
      { id: 1, size: 64 * MiB, pid: 300, uid: 1000, command: 'python' },
      { id: 2, size: 512 * MiB, pid: 200, uid: 0, command: 'llama-server' },
      { id: 3, size: 64 * MiB, pid: 300, uid: 1000, command: 'python' },
      { id: 4, size: 128 * MiB, pid: 400, uid: 4242, command: null },
      { id: 5, size: 128 * MiB, pid: 100, uid: 4242, command: null },
    ],
    GiB,
    users,
  )
  t.same(
    rows.map((r) => [r.pid, r.user, r.buffers, r.bytes / MiB, r.share]),
    [
      [200, 'root', 1, 512, 0.5],
      [100, null, 1, 128, 0.125],
      [300, 'alice', 2, 128, 0.125],
      [400, null, 1, 128, 0.125],
    ],
    'ties: the lower pid first; unknown uids have no name',
  )
  t.same(holders([], GiB, users), [])
  t.equal(holders([{ id: 1, size: 1, pid: 1, uid: 0, command: 'x' }], 0, users)[0]?.share, null, 'no share of an empty pool')
})

const snapshot: MetricsSnapshot = {
  version: '0.1.0',
  module: {
    poolBytes: GiB,
    requestedBytes: 2 * GiB,
    usedBytes: 512 * MiB,
    freeBytes: 512 * MiB,
    floorBytes: 0,
    releasedBytes: 5 * MiB,
    buffers: 1,
    lentBytes: 64 * MiB,
    events: 7,
    level: 1,
    memAvailable: 3 * GiB,
    swapFree: 0,
  },
  level: 'critical',
  jobs: 2,
  frozenJobs: 1,
  counters: { ...emptyCounters(), freezes: 3, thaws: 2, psiFired: { 'memory full': 4, 'io full': 1 } },
  holders: holders([{ id: 9, size: 512 * MiB, pid: 77, uid: 1000, command: 'my "job"\\x' }], GiB, users, [
    { id: 3, size: 64 * MiB, pid: 77, uid: 1000, command: 'my "job"\\x' },
  ]),
}

t.test('renderMetrics: the text exposition format', async (t) => {
  const text = renderMetrics(snapshot)
  t.ok(text.endsWith('\n'), 'ends with a newline')
  const lines = text.trimEnd().split('\n')
  // Every sample line is NAME{LABELS} VALUE; every metric has HELP and TYPE before its samples.
  const typed = new Set<string>()
  for (const line of lines) {
    const type = /^# TYPE (\w+) (gauge|counter)$/.exec(line)
    if (type?.[1]) {
      t.notOk(typed.has(type[1]), `${type[1]} is declared once`)
      typed.add(type[1])
      continue
    }
    if (line.startsWith('# HELP ')) continue
    const sample = /^(\w+)(\{(\w+="(?:[^"\\]|\\.)*",?)*\})? (-?\d+(\.\d+)?(e[+-]?\d+)?|NaN)$/.exec(line)
    t.ok(sample, `a sample line: ${line}`)
    t.ok(sample?.[1] && typed.has(sample[1]), `${sample?.[1]} was declared before its sample`)
  }
  for (const name of typed) if (name.endsWith('_total')) t.match(text, `# TYPE ${name} counter`, `${name} is a counter`)
  t.match(text, /^spillway_build_info\{version="0\.1\.0"\} 1$/m)
  t.match(text, /^spillway_level 2$/m, 'the daemon acts on critical')
  t.match(text, /^spillway_module_level 1$/m, 'while the module says warn')
  t.match(text, /^spillway_pool_used_bytes 536870912$/m)
  t.match(text, /^spillway_pool_released_bytes_total 5242880$/m)
  t.match(text, /^spillway_pool_lent_bytes 67108864$/m)
  t.match(text, /^spillway_process_lent_bytes\{pid="77",[^}]*\} 67108864$/m, 'what the process lent')
  t.match(text, /^spillway_jobs_frozen 1$/m)
  t.match(text, /^spillway_freezes_total 3$/m)
  t.match(
    text,
    /^spillway_psi_fired_total\{resource="io",kind="full"\} 1\nspillway_psi_fired_total\{resource="memory",kind="full"\} 4$/m,
  )
  t.match(
    text,
    /^spillway_process_pool_bytes\{pid="77",user="alice",command="my \\"job\\"\\\\x"\} 536870912$/m,
    'label values escaped',
  )
})

t.test('renderMetrics without the module', async (t) => {
  const text = renderMetrics({ ...snapshot, module: null, holders: null })
  t.match(text, /^spillway_module_loaded 0$/m)
  t.notMatch(text, /spillway_pool_/, 'no pool numbers to report')
  t.notMatch(text, /spillway_process_pool_bytes\{/)
})

t.test('escapeLabel and parseListen', async (t) => {
  t.equal(escapeLabel('a\\b"c\nd'), 'a\\\\b\\"c\\nd')
  t.same(parseListen('9464'), { host: '127.0.0.1', port: 9464 }, 'local only unless a host is given')
  t.same(parseListen('0.0.0.0:9464'), { host: '0.0.0.0', port: 9464 })
  t.same(parseListen('[::1]:9464'), { host: '::1', port: 9464 })
  t.same(parseListen('0'), { host: '127.0.0.1', port: 0 }, 'port 0: any free port')
  for (const bad of ['', 'http://x:1', '70000', 'host:', ':9464x']) t.throws(() => parseListen(bad), /is not \[HOST:\]PORT/, bad)
})
