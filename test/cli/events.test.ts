import t from 'tap'
import { decodeEvent, decodeEvents } from '../../cli/src/lib/events.js'
import { EVENT_OFFSETS as O, EVENT_SIZE, REASON, levelName, reasonNames } from '../../cli/src/lib/uapi.js'

function record(fields: Partial<Record<keyof typeof O, number | bigint>>): Buffer {
  const buf = Buffer.alloc(EVENT_SIZE)
  for (const [name, value] of Object.entries(fields)) {
    const offset = O[name as keyof typeof O]
    const is32 = ['type', 'level', 'prev_level', 'reason'].includes(name)
    if (is32) buf.writeUInt32LE(Number(value), offset)
    else buf.writeBigUInt64LE(BigInt(value), offset)
  }
  return buf
}

t.test('a level event decodes field by field', async (t) => {
  const e = decodeEvent(
    record({
      seq: 7,
      type: 1,
      level: 2,
      prev_level: 1,
      reason: REASON.memAvailable | REASON.swapRate,
      time_ns: 12_345_678_901n,
      mem_available: 300n << 20n,
      swap_free: 1n << 30n,
      swap_rate: 5000,
      pool_free: 64n << 20n,
      count: 0,
    }),
  )
  t.same(e, {
    seq: 7,
    type: 'level',
    level: 'critical',
    prevLevel: 'warn',
    reasons: ['memAvailable', 'swapRate'],
    monotonicMs: 12345.678901,
    memAvailable: 300 * 2 ** 20,
    swapFree: 2 ** 30,
    swapRate: 5000,
    poolFree: 64 * 2 ** 20,
    count: 0,
  })
})

t.test('overflow and release records, unknown values', async (t) => {
  t.match(decodeEvent(record({ seq: 1, type: 2, count: 40 })), { type: 'overflow', count: 40 })
  t.match(decodeEvent(record({ seq: 2, type: 3, count: 1n << 33n })), { type: 'release', count: 2 ** 33 })
  t.match(decodeEvent(record({ type: 9, level: 7 })), { type: 'unknown(9)', level: 'unknown(7)' })
  t.same(reasonNames(REASON.oom | 0x100), ['oom', 'unknown(0x100)'])
  t.same(reasonNames(0), [])
  t.equal(levelName(1), 'warn')
})

t.test('a read of several records', async (t) => {
  const buf = Buffer.concat([
    record({ seq: 1, type: 1, level: 1 }),
    record({ seq: 2, type: 1, level: 0, prev_level: 1, reason: REASON.recovered }),
  ])
  const events = decodeEvents(buf)
  t.equal(events.length, 2)
  t.same(
    events.map((e) => [e.seq, e.level, e.prevLevel]),
    [
      [1, 'warn', 'ok'],
      [2, 'ok', 'warn'],
    ],
  )
  t.same(decodeEvents(Buffer.alloc(EVENT_SIZE * 4), 0), [], 'a read of 0 bytes')
  t.same(decodeEvents(buf, EVENT_SIZE).length, 1, 'only the bytes read count')
  t.throws(() => decodeEvents(Buffer.alloc(100)), { name: 'RangeError' }, 'a partial record is an error')
  t.throws(() => decodeEvent(Buffer.alloc(10)), /72 bytes; got 10/)
})
