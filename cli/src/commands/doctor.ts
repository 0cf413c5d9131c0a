// spillway doctor: is this machine ready? Each check passes, warns or fails, with the fix.
import { Command } from 'commander'
import { outStyle, print, printJson } from '../io/console.js'
import { gatherDoctorFacts } from '../io/doctor-facts.js'
import { runChecks } from '../lib/doctor.js'
import type { CheckResult } from '../lib/doctor.js'
import { PLAIN, paintFor } from '../lib/style.js'
import type { Style } from '../lib/style.js'
import { finish } from './common.js'

export interface DoctorContext {
  json: boolean
}

export function doctorExitCode(results: CheckResult[]): number {
  return results.some((r) => r.verdict === 'fail') ? 1 : 0
}

export function renderDoctor(results: CheckResult[], style: Style = PLAIN): string {
  const lines = results.map((r) => {
    const head = `${style.paint(r.verdict.toUpperCase().padEnd(4), paintFor(r.verdict))}  ${r.title}: ${r.detail}`
    return r.fix ? `${head}\n      fix: ${r.fix}` : head
  })
  const count = (v: string) => results.filter((r) => r.verdict === v).length
  lines.push('', `${count('pass')} passed, ${count('warn')} warnings, ${count('fail')} failed`)
  return lines.join('\n')
}

export async function doctorAction(ctx: DoctorContext): Promise<number> {
  const results = runChecks(gatherDoctorFacts())
  if (ctx.json) printJson({ checks: results, ok: doctorExitCode(results) === 0 })
  else print(renderDoctor(results, outStyle()))
  return doctorExitCode(results)
}

export function doctorCommand(action = doctorAction): Command {
  return new Command('doctor')
    .description('check kernel, headers, DKMS, Secure Boot, signing, NVIDIA driver, PCIe link, IOMMU, swap, cgroup v2')
    .option('--json', 'print the checks as JSON')
    .addHelpText(
      'after',
      `
Examples:
  spillway doctor
  spillway doctor --json | jq '.checks[] | select(.verdict != "pass")'

Exit codes: 0 no check failed (warnings allowed), 1 at least one check failed.`,
    )
    .action(async (o: { json?: boolean }) => finish(await action({ json: o.json === true })))
}
