// spillway pool show | set SIZE | auto | watermarks WARN CRITICAL
import { Command } from 'commander'
import { CliError, EXIT } from '../errors.js'
import { print, printJson, warn } from '../io/console.js'
import { Device } from '../io/device.js'
import { readSizingFacts } from '../io/sizing-facts.js'
import { readSysfs } from '../io/sysfs.js'
import { autoPoolSize, checkPoolSize } from '../lib/sizing.js'
import type { SizingFacts } from '../lib/sizing.js'
import { formatSize } from '../lib/sizes.js'
import { finish, sizeOption } from './common.js'

export interface PoolShowContext {
  json: boolean
}

export interface PoolSetContext {
  /** Bytes wanted; 'auto' sizes from RAM and VRAM. */
  size: number | 'auto'
  force: boolean
  dryRun: boolean
  json: boolean
}

export interface PoolWatermarksContext {
  warnBytes: number
  criticalBytes: number
}

export interface PoolActions {
  show(ctx: PoolShowContext): Promise<number>
  set(ctx: PoolSetContext): Promise<number>
  watermarks(ctx: PoolWatermarksContext): Promise<number>
}

function requireModule(): NonNullable<ReturnType<typeof readSysfs>> {
  const state = readSysfs()
  if (!state) {
    throw new CliError(
      'the spillway module is not loaded',
      'load it with `sudo spillway load` (the pool size is a load parameter too: --pool SIZE)',
      EXIT.noModule,
    )
  }
  return state
}

export async function poolShow(ctx: PoolShowContext): Promise<number> {
  const facts = await readSizingFacts()
  const auto = autoPoolSize(facts)
  const state = readSysfs()
  const pool = state && {
    poolBytes: state.poolBytes,
    requestedBytes: state.requestedBytes,
    usedBytes: state.usedBytes,
    freeBytes: state.freeBytes,
    buffers: state.buffers,
    floorBytes: state.floorBytes,
    lentBytes: state.lentBytes,
  }
  if (ctx.json) {
    printJson({ loaded: state !== undefined, pool: pool ?? null, ramBytes: facts.ramBytes, vramBytes: facts.vramBytes, auto })
    return 0
  }
  if (pool) {
    const used = `${formatSize(pool.usedBytes)} used in ${pool.buffers} buffers`
    const lent = pool.lentBytes ? `, ${formatSize(pool.lentBytes)} lent to GPU drivers` : ''
    print(
      `pool:   ${formatSize(pool.poolBytes)} (requested ${formatSize(pool.requestedBytes)}), ${used}, ${formatSize(pool.freeBytes)} free${lent}`,
    )
  } else {
    print('pool:   the spillway module is not loaded (`sudo spillway load`)')
  }
  print(`auto:   ${formatSize(auto.poolBytes)} = ${auto.why}`)
  return 0
}

/** Decides the bytes to ask for, refusing unsafe sizes unless forced. Pure apart from its inputs. */
export function decidePoolSize(size: number | 'auto', force: boolean, facts: SizingFacts): { bytes: number; note: string } {
  if (size === 'auto') {
    const auto = autoPoolSize(facts)
    return { bytes: auto.poolBytes, note: auto.why }
  }
  const verdict = checkPoolSize(size, facts.ramBytes)
  if (!verdict.ok && !force) {
    throw new CliError(
      `refusing: ${verdict.problem}`,
      'choose a smaller size (`spillway pool auto` picks one), or add --force if you are sure',
      EXIT.unsafe,
    )
  }
  return {
    bytes: verdict.alignedBytes,
    note: verdict.ok ? 'the size asked for, rounded up to 2 MiB' : `FORCED: ${verdict.problem}`,
  }
}

export async function poolSet(ctx: PoolSetContext): Promise<number> {
  const facts = await readSizingFacts()
  const { bytes, note } = decidePoolSize(ctx.size, ctx.force, facts)
  if (ctx.dryRun) {
    if (ctx.json) printJson({ requestedBytes: bytes, note, applied: false })
    else print(`would resize the pool to ${formatSize(bytes)}: ${note}`)
    return 0
  }
  requireModule()
  const device = Device.open({ writable: true })
  let result: number
  // Capacity lent to GPU drivers is part of the request: the pool aims at the rest (ABI 1.3).
  let lent: number
  try {
    result = device.resize(bytes)
    lent = device.info().lentBytes
  } finally {
    device.close()
  }
  if (ctx.json) printJson({ requestedBytes: bytes, poolBytes: result, lentBytes: lent, note, applied: true })
  else {
    const lentNote = lent ? `, ${formatSize(lent)} more lent to GPU drivers` : ''
    print(`pool is now ${formatSize(result)}${lentNote} (asked for ${formatSize(bytes)}: ${note})`)
  }
  if (result + lent < bytes) {
    const atBoot = 'loading at boot reserves more: see `spillway install --pool`'
    warn(`the kernel had only ${formatSize(result)} to give: free memory is short or fragmented (${atBoot})`)
  }
  if (result + lent > bytes) warn(`buffers in use keep the pool at ${formatSize(result)}; it shrinks further as they are freed`)
  return 0
}

export async function poolWatermarks(ctx: PoolWatermarksContext): Promise<number> {
  if (ctx.criticalBytes > ctx.warnBytes) {
    throw new CliError(
      `the critical watermark (${formatSize(ctx.criticalBytes)}) is above the warn watermark (${formatSize(ctx.warnBytes)})`,
      'critical must be the lower MemAvailable mark: e.g. `spillway pool watermarks 2G 1G`',
      EXIT.usage,
    )
  }
  requireModule()
  const device = Device.open({ writable: true })
  try {
    device.setWatermarks(ctx.warnBytes, ctx.criticalBytes)
  } finally {
    device.close()
  }
  print(`watermarks: warn below ${formatSize(ctx.warnBytes)} MemAvailable, critical below ${formatSize(ctx.criticalBytes)}`)
  return 0
}

const defaultActions: PoolActions = { show: poolShow, set: poolSet, watermarks: poolWatermarks }

export function poolCommand(actions: PoolActions = defaultActions): Command {
  const pool = new Command('pool').description('show or resize the reserved pool')
  pool
    .command('show', { isDefault: true })
    .description('the pool now, and the size `pool auto` would pick')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  spillway pool show\n  spillway pool show --json\n\nExit codes: 0 shown, 1 failure.')
    .action(async (opts: { json?: boolean }) => finish(await actions.show({ json: opts.json === true })))
  pool
    .command('set')
    .description('resize the pool to SIZE (needs root)')
    .argument('<size>', 'e.g. 8G, 512MiB, 1.5GiB', sizeOption)
    .option('--force', 'allow a size that leaves less than the safe floor of RAM to the system')
    .option('--dry-run', 'check the size and print what would be done')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Refuses sizes that leave less than max(min(2 GiB, RAM/4), RAM/10) of RAM outside the pool.

Examples:
  sudo spillway pool set 16G
  sudo spillway pool set 60G --force
  spillway pool set 8G --dry-run

Exit codes: 0 resized (see the message if the kernel gave less), 2 bad size, 3 module not loaded,
4 not root, 5 unsafe size without --force.`,
    )
    .action(async (size: number, opts: { force?: boolean; dryRun?: boolean; json?: boolean }) =>
      finish(await actions.set({ size, force: opts.force === true, dryRun: opts.dryRun === true, json: opts.json === true })),
    )
  pool
    .command('auto')
    .description('resize the pool to the size the sizing formula picks from RAM and VRAM (needs root)')
    .option('--dry-run', 'print the size and why, change nothing')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Formula: min(RAM - reserve, 2 x VRAM), reserve = max(min(4 GiB, RAM/2), RAM/4); without a GPU
min(RAM - reserve, RAM/4). Rounded down to 256 MiB. See docs/admin-guide.md.

Examples:
  spillway pool auto --dry-run
  sudo spillway pool auto

Exit codes: 0 resized, 3 module not loaded, 4 not root.`,
    )
    .action(async (opts: { dryRun?: boolean; json?: boolean }) =>
      finish(await actions.set({ size: 'auto', force: false, dryRun: opts.dryRun === true, json: opts.json === true })),
    )
  pool
    .command('watermarks')
    .description('set the MemAvailable marks of the warn and critical levels (needs root)')
    .argument('<warn>', 'MemAvailable below this is warn, e.g. 4G', sizeOption)
    .argument('<critical>', 'MemAvailable below this is critical, e.g. 1G', sizeOption)
    .addHelpText(
      'after',
      '\nExamples:\n  sudo spillway pool watermarks 4G 1G\n\nExit codes: 0 set, 2 critical above warn, 3 module not loaded, 4 not root.',
    )
    .action(async (warnBytes: number, criticalBytes: number) => finish(await actions.watermarks({ warnBytes, criticalBytes })))
  return pool
}
