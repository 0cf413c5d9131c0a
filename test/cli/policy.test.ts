import t from 'tap'
import { DEFAULT_POLICY, afterFailures, effectiveLevel, initialState, nextDeadline, step } from '../../cli/src/lib/policy.js'
import type { Action, PolicyConfig, PolicyState, Signal } from '../../cli/src/lib/policy.js'

function run(
  steps: { now: number; signal?: Signal; jobs: string[] }[],
  config: PolicyConfig = DEFAULT_POLICY,
): { state: PolicyState; actions: Action[][] } {
  let state = initialState()
  const actions: Action[][] = []
  for (const input of steps) {
    const result = step(state, input, config)
    state = result.state
    actions.push(result.actions)
  }
  return { state, actions }
}

t.test('warn runs hooks and freezes nothing; critical freezes; ok thaws', async (t) => {
  const { actions, state } = run([
    { now: 0, signal: { source: 'module', level: 'warn' }, jobs: ['a'] },
    { now: 1, signal: { source: 'module', level: 'critical' }, jobs: ['a', 'b'] },
    { now: 2, signal: { source: 'module', level: 'warn' }, jobs: ['a', 'b'] },
    { now: 3, signal: { source: 'module', level: 'ok' }, jobs: ['a', 'b'] },
  ])
  t.same(actions[0], [
    { kind: 'level', level: 'warn', prev: 'ok' },
    { kind: 'hooks', level: 'warn', prev: 'ok' },
  ])
  t.same(actions[1], [
    { kind: 'level', level: 'critical', prev: 'warn' },
    { kind: 'hooks', level: 'critical', prev: 'warn' },
    { kind: 'freeze', jobId: 'a' },
    { kind: 'freeze', jobId: 'b' },
  ])
  t.same(
    actions[2],
    [
      { kind: 'level', level: 'warn', prev: 'critical' },
      { kind: 'hooks', level: 'warn', prev: 'critical' },
    ],
    'warn after critical keeps jobs frozen',
  )
  t.same(actions[3], [
    { kind: 'level', level: 'ok', prev: 'warn' },
    { kind: 'hooks', level: 'ok', prev: 'warn' },
    { kind: 'thaw', jobId: 'a' },
    { kind: 'thaw', jobId: 'b' },
  ])
  t.same(state.frozen, [])
})

t.test('a job registered during critical is frozen at the next step; ended jobs are forgotten', async (t) => {
  const { actions, state } = run([
    { now: 0, signal: { source: 'module', level: 'critical' }, jobs: ['a'] },
    { now: 1, jobs: ['a', 'late'] },
    { now: 2, jobs: ['late'] },
    { now: 3, signal: { source: 'module', level: 'ok' }, jobs: ['late'] },
  ])
  t.same(actions[1], [{ kind: 'freeze', jobId: 'late' }])
  t.same(actions[2], [], 'a vanished job produces no action')
  t.same(
    actions[3]?.filter((a) => a.kind === 'thaw'),
    [{ kind: 'thaw', jobId: 'late' }],
  )
  t.same(state.frozen, [])
})

t.test('a freeze that failed is tried again at the next step; a thaw that failed too', async (t) => {
  const critical = { source: 'module', level: 'critical' } as const
  const first = step(initialState(), { now: 0, signal: critical, jobs: ['a', 'b'] }, DEFAULT_POLICY)
  t.same(first.state.frozen, ['a', 'b'])
  // the cgroup write for a threw
  const failedA = first.actions.filter((a) => a.kind === 'freeze' && a.jobId === 'a')
  const state = afterFailures(first.state, failedA)
  t.same(state.frozen, ['b'], 'a is not frozen')
  const again = step(state, { now: 1000, jobs: ['a', 'b'] }, DEFAULT_POLICY)
  t.same(again.actions, [{ kind: 'freeze', jobId: 'a' }], 'the tick tries a again, and only a')
  const ok = step(again.state, { now: 2000, signal: { source: 'module', level: 'ok' }, jobs: ['a', 'b'] }, DEFAULT_POLICY)
  const thaws = ok.actions.filter((a) => a.kind === 'thaw')
  t.same(thaws, [
    { kind: 'thaw', jobId: 'b' },
    { kind: 'thaw', jobId: 'a' },
  ])
  // the thaw of b threw: b is still frozen and the next step at ok thaws it again
  const stuck = afterFailures(ok.state, thaws.slice(0, 1))
  t.same(stuck.frozen, ['b'])
  const retry = step(stuck, { now: 3000, jobs: ['a', 'b'] }, DEFAULT_POLICY)
  t.same(retry.actions, [{ kind: 'thaw', jobId: 'b' }])
  t.same(retry.state.frozen, [])
  t.equal(afterFailures(ok.state, []), ok.state, 'no failure, same state')
})

t.test('freezing can be turned off', async (t) => {
  const { actions } = run([{ now: 0, signal: { source: 'module', level: 'critical' }, jobs: ['a'] }], {
    ...DEFAULT_POLICY,
    freezeAtCritical: false,
  })
  t.notOk(actions[0]?.some((a) => a.kind === 'freeze'))
})

t.test('kill only when configured, after the delay', async (t) => {
  const never = run([
    { now: 0, signal: { source: 'module', level: 'critical' }, jobs: ['a'] },
    { now: 3_600_000, jobs: ['a'] },
  ])
  t.notOk(
    never.actions.flat().some((a) => a.kind === 'kill'),
    'the default never kills',
  )
  const config = { ...DEFAULT_POLICY, killAfterCriticalMs: 5000 }
  const killed = run(
    [
      { now: 0, signal: { source: 'module', level: 'critical' }, jobs: ['a'] },
      { now: 4999, jobs: ['a'] },
      { now: 5000, jobs: ['a'] },
      { now: 6000, jobs: ['a'] },
    ],
    config,
  )
  t.same(killed.actions[1], [])
  t.same(killed.actions[2], [{ kind: 'kill', jobId: 'a' }])
  t.same(killed.actions[3], [], 'a killed job is not frozen again')
  t.equal(
    nextDeadline(
      step(initialState(), { now: 0, signal: { source: 'module', level: 'critical' }, jobs: ['a'] }, config).state,
      0,
      config,
    ),
    5000,
  )
})

t.test('PSI raises the level for the hold time, then it falls back', async (t) => {
  const config = { ...DEFAULT_POLICY, psiHoldMs: 1000 }
  const { actions, state } = run(
    [
      { now: 0, signal: { source: 'psi', trigger: 'memory some', level: 'warn' }, jobs: [] },
      { now: 500, jobs: [] },
      { now: 1000, jobs: [] },
    ],
    config,
  )
  t.equal(actions[0]?.[0]?.kind, 'level')
  t.same(actions[1], [], 'still held')
  t.same(actions[2]?.[0], { kind: 'level', level: 'ok', prev: 'warn' })
  t.equal(effectiveLevel(state, 1000), 'ok')
})

t.test('the module level and PSI combine to the higher one', async (t) => {
  const config = { ...DEFAULT_POLICY, psiHoldMs: 1000 }
  const { state, actions } = run(
    [
      { now: 0, signal: { source: 'module', level: 'warn' }, jobs: ['j'] },
      { now: 10, signal: { source: 'psi', trigger: 'memory full', level: 'critical' }, jobs: ['j'] },
      { now: 20, signal: { source: 'module', level: 'ok' }, jobs: ['j'] },
      { now: 1010, jobs: ['j'] },
    ],
    config,
  )
  t.same(
    actions[1]?.map((a) => a.kind),
    ['level', 'hooks', 'freeze'],
  )
  t.same(actions[2], [], 'module ok does not end a held PSI critical')
  t.same(
    actions[3]?.map((a) => a.kind),
    ['level', 'hooks', 'thaw'],
  )
  t.equal(state.level, 'ok')
  t.equal(nextDeadline(state, 1010, config), null)
})

t.test('psi ok signals are ignored and steps do not mutate their input', async (t) => {
  const before = initialState()
  const copy = JSON.parse(JSON.stringify(before))
  const r = step(before, { now: 0, signal: { source: 'psi', trigger: 'x', level: 'ok' }, jobs: [] }, DEFAULT_POLICY)
  t.same(r.actions, [])
  t.same(before, copy)
})
