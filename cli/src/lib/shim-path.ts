// Where `spillway run` looks for libspillway-cuda.so, in order, and the line it prints about it.
import { formatSize } from './sizes.js'

export const SHIM_NAME = 'libspillway-cuda.so'

/** SPILLWAY_SHIM, when set, is the only candidate: a path that is wrong must not be replaced silently. */
export function shimCandidates(env: Record<string, string | undefined>, repoDir: string): string[] {
  if (env.SPILLWAY_SHIM) return [env.SPILLWAY_SHIM]
  return [`${repoDir}/shim/build/${SHIM_NAME}`, `/usr/local/lib/spillway/${SHIM_NAME}`, `/usr/lib/spillway/${SHIM_NAME}`]
}

/** LD_PRELOAD with the shim first; an existing list is kept after it. */
export function preloadValue(shim: string, existing: string | undefined): string {
  const rest = (existing ?? '').split(/[\s:]+/).filter((entry) => entry !== '' && entry !== shim)
  return [shim, ...rest].join(':')
}

export const REPORT_MODES = ['physical', 'virtual'] as const
export type ReportMode = (typeof REPORT_MODES)[number]

/** The one line `spillway run` prints: which shim, the VRAM budget and what frameworks are told. */
export function shimBanner(shim: string, env: Record<string, string | undefined>): string {
  const limit = env.SPILLWAY_VRAM_LIMIT
  const budget =
    limit && /^\d+$/.test(limit)
      ? `VRAM budget ${formatSize(Number(limit))}`
      : limit
        ? `VRAM budget ${limit}`
        : 'VRAM budget: the card'
  const report =
    env.SPILLWAY_REPORT === 'virtual'
      ? 'report virtual (free memory includes what can spill)'
      : 'report physical (free memory is VRAM only)'
  return `shim ${shim} active; ${budget}; ${report}`
}
