// What `spillway watch` does about pressure: a pure state machine, fed signals and the clock,
// that returns the actions to take. The daemon (commands/watch.ts) performs them and logs them.
import { LEVEL } from './uapi.js'
import type { LevelName } from './uapi.js'

/** How dangerous a level is: the header numbers the levels in increasing order of danger. */
export const LEVEL_RANK: Readonly<Record<LevelName, number>> = LEVEL

export interface PolicyConfig {
  /** Freeze registered jobs at critical (cgroup.freeze) and thaw them at ok. */
  freezeAtCritical: boolean
  /** Kill frozen jobs once critical has lasted this long; null never kills. */
  killAfterCriticalMs: number | null
  /** A PSI trigger has no "recovered" event: its level holds this long after it last fired. */
  psiHoldMs: number
}

export const DEFAULT_POLICY: PolicyConfig = { freezeAtCritical: true, killAfterCriticalMs: null, psiHoldMs: 10_000 }

export type Signal = { source: 'module'; level: LevelName } | { source: 'psi'; trigger: string; level: LevelName }

export interface PolicyState {
  /** The level the module last reported. */
  moduleLevel: LevelName
  /** Until when (ms) a PSI trigger keeps each level raised. */
  psiUntil: { warn: number; critical: number }
  /** The effective level, the one last acted on. */
  level: LevelName
  criticalSince: number | null
  /** Jobs this daemon froze and has not thawed. */
  frozen: string[]
  killed: string[]
}

export type Action =
  | { kind: 'level'; level: LevelName; prev: LevelName }
  | { kind: 'hooks'; level: LevelName; prev: LevelName }
  | { kind: 'freeze'; jobId: string }
  | { kind: 'thaw'; jobId: string }
  | { kind: 'kill'; jobId: string }

export function initialState(): PolicyState {
  return { moduleLevel: 'ok', psiUntil: { warn: 0, critical: 0 }, level: 'ok', criticalSince: null, frozen: [], killed: [] }
}

export function maxLevel(a: LevelName, b: LevelName): LevelName {
  return LEVEL_RANK[a] >= LEVEL_RANK[b] ? a : b
}

export function effectiveLevel(state: PolicyState, now: number): LevelName {
  let level = state.moduleLevel
  if (state.psiUntil.warn > now) level = maxLevel(level, 'warn')
  if (state.psiUntil.critical > now) level = maxLevel(level, 'critical')
  return level
}

/**
 * One step: apply a signal (if any) at time `now` with the jobs registered now, and return the new
 * state and the actions, in the order to perform them.
 */
export function step(
  state: PolicyState,
  input: { now: number; signal?: Signal; jobs: readonly string[] },
  config: PolicyConfig,
): { state: PolicyState; actions: Action[] } {
  const { now, signal } = input
  const next: PolicyState = { ...state, psiUntil: { ...state.psiUntil }, frozen: [...state.frozen], killed: [...state.killed] }
  if (signal?.source === 'module') next.moduleLevel = signal.level
  if (signal?.source === 'psi' && signal.level !== 'ok') {
    next.psiUntil[signal.level] = Math.max(next.psiUntil[signal.level], now + config.psiHoldMs)
  }
  // Jobs that ended are no longer ours to thaw or kill.
  next.frozen = next.frozen.filter((id) => input.jobs.includes(id))

  const actions: Action[] = []
  const level = effectiveLevel(next, now)
  if (level !== state.level) {
    actions.push({ kind: 'level', level, prev: state.level }, { kind: 'hooks', level, prev: state.level })
    next.level = level
    next.criticalSince = level === 'critical' ? now : null
  }

  if (config.freezeAtCritical && level === 'critical') {
    for (const id of input.jobs) {
      if (next.frozen.includes(id) || next.killed.includes(id)) continue
      next.frozen.push(id)
      actions.push({ kind: 'freeze', jobId: id })
    }
    const since = next.criticalSince ?? now
    if (config.killAfterCriticalMs !== null && now - since >= config.killAfterCriticalMs) {
      for (const id of next.frozen) {
        next.killed.push(id)
        actions.push({ kind: 'kill', jobId: id })
      }
      next.frozen = []
    }
  }
  // Thaw only at ok: warn right after critical is when a thawed job would push it back up.
  if (level === 'ok') {
    for (const id of next.frozen) actions.push({ kind: 'thaw', jobId: id })
    next.frozen = []
  }
  next.killed = next.killed.filter((id) => input.jobs.includes(id))
  return { state: next, actions }
}

/**
 * The state after some of a step's actions failed (the cgroup write threw): a job whose freeze
 * failed is not frozen, so the next step (a signal or the daemon's tick) tries again while the
 * level is critical; a job whose thaw failed is still frozen, so the next step at ok thaws it again
 * rather than leave it stopped.
 */
export function afterFailures(state: PolicyState, failed: readonly Action[]): PolicyState {
  if (failed.length === 0) return state
  const frozen = new Set(state.frozen)
  for (const action of failed) {
    if (action.kind === 'freeze') frozen.delete(action.jobId)
    if (action.kind === 'thaw') frozen.add(action.jobId)
  }
  return { ...state, frozen: [...frozen] }
}

/** When the daemon must wake up next even without a signal: when a PSI hold or the kill delay ends. */
export function nextDeadline(state: PolicyState, now: number, config: PolicyConfig): number | null {
  const times = [state.psiUntil.warn, state.psiUntil.critical].filter((t) => t > now)
  if (config.killAfterCriticalMs !== null && state.criticalSince !== null && state.frozen.length > 0) {
    times.push(state.criticalSince + config.killAfterCriticalMs)
  }
  return times.length ? Math.min(...times) : null
}
