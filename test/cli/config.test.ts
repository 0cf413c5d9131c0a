import t from 'tap'
import { DEFAULT_CONFIG, parseConfig, psiTriggerLine } from '../../cli/src/lib/config.js'

t.test('defaults', async (t) => {
  t.same(parseConfig({}), DEFAULT_CONFIG)
  const w = DEFAULT_CONFIG.watch
  t.equal(w.freezeAtCritical, true)
  t.equal(w.killAfterCriticalMs, null, 'never kill unless configured')
  t.same(
    w.psiTriggers.map((p) => psiTriggerLine(p, w.psiWindowMs)),
    ['some 200000 2000000', 'full 400000 2000000', 'full 800000 2000000'],
  )
  t.same(
    w.psiTriggers.map((p) => `${p.resource}:${p.level}`),
    ['memory:warn', 'memory:critical', 'io:warn'],
  )
})

t.test('a full config', async (t) => {
  const c = parseConfig({
    watch: {
      freezeAtCritical: false,
      killAfterCriticalSeconds: 120,
      psi: { windowMs: 1000, holdMs: 0, memorySomeWarnMs: 100, memoryFullCriticalMs: 300, ioFullWarnMs: 0 },
      hooks: { warn: ['logger spillway warn'], critical: ['systemctl stop batch.slice'] },
    },
  })
  t.equal(c.watch.freezeAtCritical, false)
  t.equal(c.watch.killAfterCriticalMs, 120_000)
  t.equal(c.watch.psiHoldMs, 0)
  t.same(
    c.watch.psiTriggers.map((p) => psiTriggerLine(p, c.watch.psiWindowMs)),
    ['some 100000 1000000', 'full 300000 1000000'],
    'a 0 stall turns the io trigger off',
  )
  t.same(c.watch.hooks, { ok: [], warn: ['logger spillway warn'], critical: ['systemctl stop batch.slice'] })
  t.same(
    parseConfig({ watch: { psi: { windowMs: 500 } } }).watch.psiTriggers.map((p) => p.stallMs),
    [200, 400, 499],
    'defaults are clamped below a small window',
  )
})

t.test('every bad setting is named in the error', async (t) => {
  const bad: [unknown, RegExp][] = [
    [[], /JSON object/],
    [{ pool: {} }, /^pool is not a setting/],
    [{ watch: [] }, /watch must be an object/],
    [{ watch: { freeze: true } }, /watch\.freeze is not a setting \(known: freezeAtCritical/],
    [{ watch: { freezeAtCritical: 'yes' } }, /freezeAtCritical must be true or false/],
    [{ watch: { killAfterCriticalSeconds: -1 } }, /killAfterCriticalSeconds must be an integer from 0 to 86400, not -1/],
    [{ watch: { psi: { windowMs: 100 } } }, /windowMs must be an integer from 500 to 10000/],
    [{ watch: { psi: { memorySomeWarnMs: 2000 } } }, /memorySomeWarnMs must be an integer from 0 to 1999/],
    [{ watch: { psi: { extra: 1 } } }, /watch\.psi\.extra is not a setting/],
    [{ watch: { hooks: { warn: 'echo' } } }, /hooks\.warn must be a list of shell commands/],
    [{ watch: { hooks: { warn: [''] } } }, /hooks\.warn must be a list/],
    [{ watch: { hooks: { panic: [] } } }, /watch\.hooks\.panic is not a setting/],
  ]
  for (const [raw, message] of bad) t.throws(() => parseConfig(raw), { name: 'ConfigError', message }, JSON.stringify(raw))
})
