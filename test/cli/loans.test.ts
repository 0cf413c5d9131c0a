// The pool's loans (capacity lent to GPU drivers, ABI 1.3) in the per-process view and the pool line.
import t from 'tap'
import { holders } from '../../cli/src/lib/holders.js'
import { poolLine, renderHolders } from '../../cli/src/lib/status.js'
import type { PoolStatus } from '../../cli/src/lib/status.js'
import { GiB, MiB } from '../../cli/src/lib/sizes.js'

const users = (uid: number) => ({ 0: 'root', 1000: 'alice' })[uid] ?? null

t.test('holders: loans summed per process next to its buffers', async (t) => {
  const rows = holders(
    [
      { id: 1, size: 256 * MiB, pid: 300, uid: 1000, command: 'python' },
      { id: 2, size: 512 * MiB, pid: 200, uid: 0, command: 'llama-server' },
    ],
    GiB,
    users,
    [
      { id: 1, size: 2 * GiB, pid: 300, uid: 1000, command: 'python' },
      { id: 2, size: 64 * MiB, pid: 300, uid: 1000, command: 'python' },
      { id: 3, size: 128 * MiB, pid: 500, uid: 1000, command: 'jax' },
    ],
  )
  t.same(
    rows.map((r) => [r.pid, r.buffers, r.bytes / MiB, r.loans, r.lentBytes / MiB, r.share]),
    [
      [300, 1, 256, 2, 2112, 0.25],
      [200, 1, 512, 0, 0, 0.5],
      [500, 0, 0, 1, 128, 0],
    ],
    'buffers and loans together order the rows; share counts buffers (a loan is no longer in the pool)',
  )
  t.equal(rows[2]?.user, 'alice', 'a process that only lends is a row of its own, with its user')
  t.same(
    holders([{ id: 1, size: MiB, pid: 9, uid: 0, command: 'x' }], GiB, users).map((r) => [r.loans, r.lentBytes]),
    [[0, 0]],
    'no loans given: none counted',
  )
})

t.test('renderHolders: the LENT column', async (t) => {
  const rows = holders([{ id: 1, size: 256 * MiB, pid: 300, uid: 1000, command: 'python' }], GiB, users, [
    { id: 7, size: 2 * GiB, pid: 300, uid: 1000, command: 'python' },
  ])
  t.same(renderHolders(rows), [
    '  PID      USER        BUFFERS  SIZE        LENT        SHARE  COMMAND',
    '  300      alice       1        256 MiB     2 GiB       25.0%  python',
  ])
})

t.test('poolLine: lent capacity, and a shortfall only beyond it', async (t) => {
  const pool: PoolStatus = {
    poolBytes: 6 * GiB,
    requestedBytes: 8 * GiB,
    usedBytes: GiB,
    freeBytes: 5 * GiB,
    floorBytes: 0,
    releasedBytes: 0,
    buffers: 2,
    lentBytes: 2 * GiB,
  }
  t.equal(poolLine(pool), '6 GiB: 1 GiB used in 2 buffers, 5 GiB free, 2 GiB lent to GPU drivers', 'pool + lent = requested')
  t.equal(
    poolLine({ ...pool, lentBytes: GiB }),
    '6 GiB of 8 GiB requested: 1 GiB used in 2 buffers, 5 GiB free, 1 GiB lent to GPU drivers',
    'a shortfall: requested > pool + lent',
  )
  t.equal(
    poolLine({ ...pool, poolBytes: 8 * GiB, freeBytes: 7 * GiB, lentBytes: 0 }),
    '8 GiB: 1 GiB used in 2 buffers, 7 GiB free',
    'nothing lent: as before',
  )
})
