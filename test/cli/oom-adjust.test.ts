// The OOM adjustment of pool holders (issue 14 B): the adj arithmetic against the kernel's
// oom_badness(), the scan-to-scan bookkeeping, and the /proc parsers.
import t from 'tap'
import { parseConfig } from '../../cli/src/lib/config.js'
import {
  cancellingAdj,
  cgroupContextPages,
  mapsPool,
  planAdjustments,
  poolRssKb,
  restoreAll,
} from '../../cli/src/lib/oom-adjust.js'
import type { Adjusted, ProcessView } from '../../cli/src/lib/oom-adjust.js'
import { DMABUF_NAME_PREFIX } from '../../cli/src/lib/uapi.js'

/** The kernel's oom_badness() points for a process: rss + adj * (totalpages / 1000), integer. */
function badness(rssPages: number, adj: number, totalPages: number): number {
  return rssPages + adj * Math.floor(totalPages / 1000)
}

const GiB_PAGES = 262144

t.test('cancellingAdj removes the pool pages from the badness, no more than one unit too much', async (t) => {
  const cases: [number, number][] = [
    [98304, GiB_PAGES], // 384 MiB mapped on a 1 GiB machine
    [131072, 16 * GiB_PAGES],
    [1, GiB_PAGES],
    [25600, 25600 + 1000], // a cgroup a little bigger than the mapping
  ]
  for (const [pool, total] of cases) {
    const own = 500
    const adj = cancellingAdj(0, pool, total)
    const points = badness(own + pool, adj, total)
    t.ok(points <= own, `${pool} pages in ${total}: judged by its own ${own} pages or less (${points}, adj ${adj})`)
    t.ok(points > own - Math.floor(total / 1000), `${pool} pages in ${total}: cancels less than one more unit`)
  }
  t.equal(cancellingAdj(0, 0, GiB_PAGES), 0, 'no pool pages: the adj stays')
  t.equal(cancellingAdj(300, 98304, GiB_PAGES), 300 - Math.ceil(98304 / 262), 'a base adj keeps its meaning')
  t.equal(cancellingAdj(-1000, 98304, GiB_PAGES), -1000, '-1000 (never kill) stays')
  t.equal(cancellingAdj(0, 131072, 25600), -1000, 'a mapping over 1000 units of the context needs -1000')
  t.equal(cancellingAdj(0, 100, 999), -1000, 'a context under 1000 pages has no unit: -1000')
  t.equal(cancellingAdj(900, 1, GiB_PAGES), 899, 'the smallest cancel is one unit')
})

const view = (over: Partial<ProcessView>): ProcessView => ({
  pid: 100,
  ppid: 1,
  poolPages: null,
  adj: 0,
  contextPages: GiB_PAGES,
  ...over,
})

t.test('planAdjustments: cancel, follow the mapping, restore, respect a changed adj', async (t) => {
  let tracked = new Map<number, Adjusted>()
  let r = planAdjustments(tracked, [view({ poolPages: 98304 }), view({ pid: 200 })])
  const adj = cancellingAdj(0, 98304, GiB_PAGES)
  t.same(
    r.writes,
    [{ pid: 100, adj, base: 0, poolPages: 98304, why: 'cancel' }],
    'the holder is cancelled; the other is left alone',
  )
  tracked = r.tracked

  r = planAdjustments(tracked, [view({ poolPages: 98304, adj })])
  t.same(r.writes, [], 'nothing to write while nothing changed')
  tracked = r.tracked

  r = planAdjustments(tracked, [view({ poolPages: 49152, adj })])
  t.same(
    r.writes.map((w) => [w.adj, w.base]),
    [[cancellingAdj(0, 49152, GiB_PAGES), 0]],
    'half the mapping: half the cancel, from the same base',
  )
  tracked = r.tracked

  r = planAdjustments(tracked, [view({ poolPages: null, adj: cancellingAdj(0, 49152, GiB_PAGES) })])
  t.same(r.writes, [{ pid: 100, adj: 0, base: 0, poolPages: 0, why: 'restore' }], 'mapping gone: its own adj back')
  t.equal(r.tracked.size, 0, 'and it is no longer tracked')

  tracked = planAdjustments(new Map(), [view({ poolPages: 98304 })]).tracked
  r = planAdjustments(tracked, [view({ poolPages: 98304, adj: 200 })])
  t.same(
    r.writes.map((w) => [w.adj, w.base]),
    [[cancellingAdj(200, 98304, GiB_PAGES), 200]],
    'someone set 200: that is the new base',
  )
  r = planAdjustments(tracked, [view({ poolPages: null, adj: 200 })])
  t.same(r.writes, [], 'someone changed it and the mapping went: their value stays')

  r = planAdjustments(tracked, [])
  t.equal(r.tracked.size, 0, 'a process that exited is forgotten')
})

t.test('planAdjustments: children of a holder', async (t) => {
  const tracked = planAdjustments(new Map(), [view({ poolPages: 98304, adj: 100 })]).tracked
  const lowered = cancellingAdj(100, 98304, GiB_PAGES)
  let r = planAdjustments(tracked, [
    view({ poolPages: 98304, adj: lowered }),
    view({ pid: 101, ppid: 100, poolPages: 1000, adj: lowered }),
  ])
  t.same(
    r.writes.map((w) => [w.pid, w.adj, w.base, w.why]),
    [[101, cancellingAdj(100, 1000, GiB_PAGES), 100, 'cancel']],
    "a forked child that maps the pool: cancelled from the parent's base, not from the inherited value",
  )
  r = planAdjustments(tracked, [view({ poolPages: 98304, adj: lowered }), view({ pid: 102, ppid: 100, adj: lowered })])
  t.same(
    r.writes.map((w) => [w.pid, w.adj, w.why]),
    [[102, 100, 'inherited']],
    "a child that maps nothing (fork + exec) gets the parent's own adj, not its cancel",
  )
  r = planAdjustments(tracked, [view({ poolPages: 98304, adj: lowered }), view({ pid: 103, ppid: 100, adj: -1000 })])
  t.same(r.writes, [], 'a child that set its own adj is left alone')
})

t.test('restoreAll gives back what the daemon changed and nothing else', async (t) => {
  const tracked = new Map<number, Adjusted>([
    [1, { base: 0, written: -400 }],
    [2, { base: 0, written: -400 }],
    [3, { base: -1000, written: -1000 }],
  ])
  const now: Record<number, number | null> = { 1: -400, 2: 50, 3: -1000 }
  t.same(
    restoreAll(tracked, (pid) => now[pid] ?? null).map((w) => [w.pid, w.adj]),
    [[1, 0]],
    'only the one still at the written value, and only where something was written',
  )
})

t.test('the /proc parsers', async (t) => {
  const name = `/dmabuf:${DMABUF_NAME_PREFIX}`
  const smaps = [
    '55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]',
    'Rss:                 132 kB',
    `7f0000000000-7f0018000000 rw-s 00000000 00:08 4242                       ${name}7`,
    'Size:             393216 kB',
    'Rss:              393216 kB',
    `7f1000000000-7f1000400000 rw-s 00000000 00:08 4243                       ${name}8`,
    'Rss:                1024 kB',
    '7f2000000000-7f2000400000 rw-s 00000000 00:08 4244                       /dmabuf:other',
    'Rss:                4096 kB',
  ].join('\n')
  t.equal(poolRssKb(smaps, DMABUF_NAME_PREFIX), 393216 + 1024, 'sums the Rss of the pool mappings only')
  t.equal(poolRssKb('7f00-7f01 r--p 0 00:00 0 /usr/lib/libc.so.6\nRss: 8 kB', DMABUF_NAME_PREFIX), null, 'no pool mapping: null')
  t.ok(mapsPool(smaps, DMABUF_NAME_PREFIX), 'maps: found')
  t.notOk(mapsPool('7f2000000000-7f2000400000 rw-s 0 00:08 1 /dmabuf:other\n', DMABUF_NAME_PREFIX), 'another dma-buf is not ours')

  t.equal(cgroupContextPages('max\n', null, 0, 4096), null, 'memory.max "max": no limit')
  t.equal(cgroupContextPages('104857600\n', 'max\n', 0, 4096), 25600, '100 MiB, no swap')
  t.equal(cgroupContextPages('104857600\n', 'max\n', 1000, 4096), 26600, 'swap.max "max": all the swap counts')
  t.equal(cgroupContextPages('104857600\n', '4096000\n', 262144, 4096), 25600 + 1000, 'swap.max limits the swap part')
  t.equal(cgroupContextPages('104857600\n', null, 1000, 4096), 26600, 'no swap controller file: swap counts')
})

t.test('config: watch.oomAdjust', async (t) => {
  t.same(parseConfig({}).watch.oomAdjust, { enabled: true, intervalMs: 2000 }, 'on by default, every 2 s')
  t.same(parseConfig({ watch: { oomAdjust: { enabled: false, intervalMs: 500 } } }).watch.oomAdjust, {
    enabled: false,
    intervalMs: 500,
  })
  t.throws(() => parseConfig({ watch: { oomAdjust: { enabled: 'yes' } } }), /watch\.oomAdjust\.enabled must be true or false/)
  t.throws(() => parseConfig({ watch: { oomAdjust: { intervalMs: 10 } } }), /watch\.oomAdjust\.intervalMs/)
  t.throws(() => parseConfig({ watch: { oomAdjust: { every: 1 } } }), /watch\.oomAdjust\.every is not a setting/)
})
