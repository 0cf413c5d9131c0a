// The @@BEGIN/@@END cases that the guest scripts (vm-guest.sh, vm-up.sh, test/package/guest-check.sh) print.
import type { TAP } from 'tap'

export interface Case {
  status: number
  output: string
}

/** The @@BEGIN/@@END sections the guest script printed, without kernel console lines. */
export function parseCases(console: string): Map<string, Case> {
  const cases = new Map<string, Case>()
  const lines = console.split('\n').filter((l) => !/^\[\s*\d+\.\d+\]/.test(l))
  let name: string | null = null
  let body: string[] = []
  for (const line of lines) {
    const begin = /^@@BEGIN (\S+)$/.exec(line)
    const end = /^(.*)@@END (\S+) (\d+)$/.exec(line)
    if (begin?.[1]) {
      name = begin[1]
      body = []
    } else if (end && name === end[2]) {
      if (end[1]) body.push(end[1])
      cases.set(name, { status: Number(end[3]), output: body.join('\n') })
      name = null
    } else if (name) body.push(line)
  }
  return cases
}

export function json(c: Case | undefined): Record<string, any> {
  try {
    return JSON.parse(c?.output ?? '')
  } catch {
    return { unparsable: c?.output }
  }
}

/** A lookup of the cases that fails the test for a case that did not run. */
export function caseGetter(t: Pick<TAP, 'fail'>, cases: Map<string, Case>, console: string): (name: string) => Case {
  return (name) => {
    const c = cases.get(name)
    if (!c) t.fail(`case ${name} did not run`, { output: console.slice(-4000) })
    return c ?? { status: -1, output: '' }
  }
}
