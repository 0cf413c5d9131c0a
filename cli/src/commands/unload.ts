// spillway unload: rmmod, refused while buffers are in use or pool capacity is lent.
import { Command } from 'commander'
import { CliError, EXIT } from '../errors.js'
import { print } from '../io/console.js'
import { Device } from '../io/device.js'
import { exec } from '../io/exec.js'
import { moduleLoaded, requireRoot } from '../io/kmod.js'
import { readSysfs } from '../io/sysfs.js'
import { readText } from '../io/system.js'
import { formatSize } from '../lib/sizes.js'
import { finish } from './common.js'

export interface UnloadContext {
  dryRun: boolean
}

/** The processes that hold buffers, or (loans) lent pool capacity to their GPU driver. */
function owners(what: 'buffers' | 'loans'): string {
  try {
    const device = Device.open({ writable: false })
    try {
      const entries = what === 'buffers' ? device.listBuffers() : device.listLoans()
      const owners = entries.map((b) => `pid ${b.pid} (${readText(`/proc/${b.pid}/comm`)?.trim() ?? 'exited'})`)
      return [...new Set(owners)].join(', ')
    } finally {
      device.close()
    }
  } catch {
    return 'see `spillway status`'
  }
}

export async function unloadAction(ctx: UnloadContext): Promise<number> {
  if (!moduleLoaded()) {
    print('spillway is not loaded; nothing to do')
    return 0
  }
  const state = readSysfs()
  const buffers = state?.buffers ?? NaN
  if (!(buffers === 0)) {
    const detail = Number.isNaN(buffers)
      ? 'the number of live buffers can not be read'
      : `${buffers} buffer${buffers === 1 ? ' is' : 's are'} still in use by ${owners('buffers')}`
    throw new CliError(
      `refusing to unload: ${detail}`,
      'stop the jobs that hold them (or wait for them to finish), then unload again',
      EXIT.busy,
    )
  }
  // Loans (ABI 1.3) hold the device open; rmmod would fail with "in use".
  const lent = state?.lentBytes ?? 0
  if (lent > 0) {
    throw new CliError(
      `refusing to unload: ${formatSize(lent)} of the pool is lent to GPU drivers by ${owners('loans')}`,
      'stop the jobs that hold them (or wait for them to finish), then unload again',
      EXIT.busy,
    )
  }
  const argv = ['rmmod', 'spillway']
  if (ctx.dryRun) {
    print(`would run: ${argv.join(' ')}`)
    return 0
  }
  requireRoot('unloading the module')
  const result = exec(argv)
  if (result.status !== 0) {
    const busy = /in use|Resource temporarily unavailable/i.test(result.stderr)
    throw new CliError(
      `\`rmmod spillway\` failed: ${result.stderr.trim()}`,
      busy
        ? 'a process still holds /dev/spillway or a buffer fd open: stop it (`spillway status` lists buffers; `fuser /dev/spillway`)'
        : 'check `dmesg | tail`',
      busy ? EXIT.busy : EXIT.failed,
    )
  }
  print('spillway unloaded; the pool went back to the kernel')
  return 0
}

export function unloadCommand(action = unloadAction): Command {
  return new Command('unload')
    .description('unload the module; refused while buffers are in use (needs root)')
    .option('--dry-run', 'check and print the command, unload nothing')
    .addHelpText(
      'after',
      `
Examples:
  sudo spillway unload

Exit codes: 0 unloaded (or not loaded), 1 rmmod failed, 4 not root, 6 buffers in use.`,
    )
    .action(async (o: { dryRun?: boolean }) => finish(await action({ dryRun: o.dryRun === true })))
}
