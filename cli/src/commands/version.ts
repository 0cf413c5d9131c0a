// spillway version: this command's version, the loaded module's ABI, the kernel and node.
import { Command } from 'commander'
import fs from 'node:fs'
import { print, printJson } from '../io/console.js'
import { Device } from '../io/device.js'
import { kernelRelease } from '../io/system.js'
import { VERSION } from '../io/version.js'
import { ABI_MAJOR, ABI_MINOR } from '../lib/uapi.js'
import { finish } from './common.js'

export interface VersionReport {
  spillway: string
  /** The ABI this command speaks (the UAPI header it was built from). */
  abi: string
  /** The loaded module's ABI; null when it is not loaded or may not be opened. */
  moduleAbi: string | null
  kernel: string
  node: string
}

function loadedModuleAbi(): string | null {
  if (!fs.existsSync('/sys/module/spillway')) return null
  try {
    const device = Device.open({ writable: false })
    try {
      const v = device.version()
      return `${v.major}.${v.minor}`
    } finally {
      device.close()
    }
  } catch {
    return null // not allowed to open it: `status` says why
  }
}

export async function versionAction(ctx: { json: boolean }): Promise<number> {
  const report: VersionReport = {
    spillway: VERSION,
    abi: `${ABI_MAJOR}.${ABI_MINOR}`,
    moduleAbi: loadedModuleAbi(),
    kernel: kernelRelease(),
    node: process.versions.node,
  }
  if (ctx.json) printJson(report)
  else {
    print(`spillway ${report.spillway} (ABI ${report.abi})`)
    print(`module   ${report.moduleAbi === null ? 'not loaded (or not readable)' : `ABI ${report.moduleAbi}`}`)
    print(`kernel   ${report.kernel}`)
    print(`node     ${report.node}`)
  }
  return 0
}

export function versionCommand(action = versionAction): Command {
  return new Command('version')
    .description("print the version of spillway, of the loaded module's ABI, the kernel and node (-v prints only the first)")
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  spillway version
  spillway -v

Exit codes: 0 printed.`,
    )
    .action(async (o: { json?: boolean }) => finish(await action({ json: o.json === true })))
}
