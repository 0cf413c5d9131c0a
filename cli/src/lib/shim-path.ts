// Where `spillway run` looks for libspillway-cuda.so, in order.

export const SHIM_NAME = 'libspillway-cuda.so'

export function shimCandidates(env: Record<string, string | undefined>, repoDir: string): string[] {
  const list: string[] = []
  if (env.SPILLWAY_SHIM) list.push(env.SPILLWAY_SHIM)
  list.push(`${repoDir}/shim/build/${SHIM_NAME}`, `/usr/local/lib/spillway/${SHIM_NAME}`, `/usr/lib/spillway/${SHIM_NAME}`)
  return list
}

/** LD_PRELOAD with the shim first; an existing list is kept after it. */
export function preloadValue(shim: string, existing: string | undefined): string {
  const rest = (existing ?? '').split(/[\s:]+/).filter((entry) => entry !== '' && entry !== shim)
  return [shim, ...rest].join(':')
}
