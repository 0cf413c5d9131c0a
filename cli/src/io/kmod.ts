// Finding, loading and unloading spillway.ko.
import fs from 'node:fs'
import path from 'node:path'
import { CliError, EXIT } from '../errors.js'
import { explainLoadFailure } from '../lib/module-params.js'
import { exec, isRoot, which } from './exec.js'
import { kernelRelease } from './system.js'

export type ModuleSource = { kind: 'modprobe' } | { kind: 'file'; path: string }

export function moduleLoaded(): boolean {
  return fs.existsSync('/sys/module/spillway')
}

export function requireRoot(what: string): void {
  if (!isRoot()) throw new CliError(`${what} needs root`, 'run it again with sudo', EXIT.permission)
}

/** The vermagic's release of a .ko ("6.1.0-56-amd64 SMP ..." -> "6.1.0-56-amd64"). */
export function moduleRelease(file: string): string | undefined {
  const result = exec(['modinfo', '-F', 'vermagic', file])
  return result.status === 0 ? result.stdout.trim().split(/\s+/)[0] : undefined
}

/** Where to load spillway from: an explicit file, the installed module, or the repo's build. */
export function findModule(explicit: string | undefined, repoDir: string): ModuleSource {
  if (explicit) {
    if (!fs.existsSync(explicit))
      throw new CliError(`${explicit} does not exist`, 'give the path of a built spillway.ko', EXIT.usage)
    return { kind: 'file', path: path.resolve(explicit) }
  }
  if (which('modinfo') && exec(['modinfo', '-n', 'spillway']).status === 0) return { kind: 'modprobe' }
  const built = path.join(repoDir, 'kmod', 'spillway.ko')
  if (fs.existsSync(built) && moduleRelease(built) === kernelRelease()) return { kind: 'file', path: built }
  throw new CliError(
    `no spillway.ko is installed for kernel ${kernelRelease()}`,
    'install it with `sudo spillway install` (DKMS), build and load it with `sudo spillway up`, or pass --module PATH',
    EXIT.noModule,
  )
}

export function loadCommandLine(source: ModuleSource, params: string[]): string[] {
  return source.kind === 'modprobe' ? ['modprobe', 'spillway', ...params] : ['insmod', source.path, ...params]
}

export function runLoad(argv: string[]): void {
  const result = exec(argv)
  if (result.status === 0) return
  const explained = explainLoadFailure(result.stderr)
  if (explained) throw new CliError(explained.message, explained.hint, EXIT.failed)
  throw new CliError(
    `\`${argv.join(' ')}\` failed: ${result.stderr.trim() || `exit ${result.status}`}`,
    "check `dmesg | tail` for the module's messages",
    EXIT.failed,
  )
}

/** Waits for udev to create the device node (it appears shortly after the module loads). */
export async function waitForDevice(devicePath: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (fs.existsSync(devicePath)) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return fs.existsSync(devicePath)
}
