// spillway load: modprobe or insmod with a pool size and watermarks.
import fs from 'node:fs'
import { Command, InvalidArgumentError, Option } from 'commander'
import { CliError, EXIT } from '../errors.js'
import { print, progress } from '../io/console.js'
import { findModule, loadCommandLine, moduleLoaded, requireRoot, runLoad, waitForDevice } from '../io/kmod.js'
import type { ModuleSource } from '../io/kmod.js'
import { readSizingFacts } from '../io/sizing-facts.js'
import { readSysfs } from '../io/sysfs.js'
import { moduleParams } from '../lib/module-params.js'
import type { LoadOptions } from '../lib/module-params.js'
import { formatSize } from '../lib/sizes.js'
import { DEVICE_PATH } from '../lib/uapi.js'
import { decidePoolSize } from './pool.js'
import { finish, poolArg, repoDir, sizeOption } from './common.js'

export interface LoadContext {
  pool: number | 'auto' | undefined
  floorBytes?: number
  warnBytes?: number
  criticalBytes?: number
  userLimitBytes?: number
  watchdogMs?: number
  testIoctls: boolean
  modulePath?: string
  force: boolean
  dryRun: boolean
}

export async function loadAction(ctx: LoadContext): Promise<number> {
  if (moduleLoaded()) {
    print('spillway is already loaded; resize with `sudo spillway pool set SIZE` or `sudo spillway unload` first')
    return 0
  }
  const options: LoadOptions = {
    floorBytes: ctx.floorBytes,
    warnBytes: ctx.warnBytes,
    criticalBytes: ctx.criticalBytes,
    userLimitBytes: ctx.userLimitBytes,
    watchdogMs: ctx.watchdogMs,
    testIoctls: ctx.testIoctls,
  }
  if (ctx.warnBytes !== undefined && ctx.criticalBytes !== undefined && ctx.criticalBytes > ctx.warnBytes) {
    throw new CliError(
      '--critical is above --warn',
      'critical is the lower MemAvailable mark: e.g. --warn 4G --critical 1G',
      EXIT.usage,
    )
  }
  if (!ctx.dryRun) requireRoot('loading the module')
  let note = 'the module default'
  if (ctx.pool !== undefined) {
    const decided = decidePoolSize(ctx.pool, ctx.force, await readSizingFacts())
    options.poolBytes = decided.bytes
    note = `${formatSize(decided.bytes)}: ${decided.note}`
  }
  // A dry run of `up` names the module it would build first, so the file need not exist yet.
  const source: ModuleSource =
    ctx.dryRun && ctx.modulePath && !fs.existsSync(ctx.modulePath)
      ? { kind: 'file', path: ctx.modulePath }
      : findModule(ctx.modulePath, repoDir())
  const argv = loadCommandLine(source, moduleParams(options))
  if (ctx.dryRun) {
    print(`would run: ${argv.join(' ')}   (pool: ${note})`)
    return 0
  }
  progress(`loading: ${argv.join(' ')} (reserving the pool can take a few seconds)`)
  runLoad(argv)
  if (!(await waitForDevice(DEVICE_PATH, 5000))) {
    throw new CliError(
      `the module loaded but ${DEVICE_PATH} did not appear within 5 s`,
      'check that udev runs, or install the rule: `sudo spillway install`',
      EXIT.failed,
    )
  }
  const state = readSysfs()
  const got = state ? `pool ${formatSize(state.poolBytes)} of ${formatSize(state.requestedBytes)} requested` : 'pool size unknown'
  print(`spillway loaded: ${got}`)
  return 0
}

export function loadCommand(action = loadAction): Command {
  return new Command('load')
    .description('load the module (modprobe, or insmod of a file) with a pool size and watermarks (needs root)')
    .option('--pool <size|auto>', 'pool to reserve: a size (8G) or auto (the sizing formula)', poolArg)
    .option('--floor <size>', 'pressure never shrinks the pool below this', sizeOption)
    .option('--warn <size>', 'MemAvailable below this is warn', sizeOption)
    .option('--critical <size>', 'MemAvailable below this is critical', sizeOption)
    .option('--user-limit <size>', 'per-user limit on live buffer bytes', sizeOption)
    .option('--watchdog-ms <ms>', 'watchdog sampling period', (v) => {
      const n = Number(v)
      if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer of milliseconds, e.g. 250')
      return n
    })
    .option('--module <path>', 'load this spillway.ko with insmod instead of the installed one')
    .addOption(new Option('--test-ioctls', 'enable the test-only ioctls').hideHelp())
    .option('--force', 'allow a pool that leaves less than the safe floor of RAM')
    .option('--dry-run', 'print the command, load nothing')
    .addHelpText(
      'after',
      `
Examples:
  sudo spillway load --pool auto
  sudo spillway load --pool 16G --warn 4G --critical 1G
  sudo spillway load --module kmod/spillway.ko --pool 512M

Exit codes: 0 loaded (or already loaded), 1 the kernel refused (message says why: signing, memory),
2 bad option, 3 no spillway.ko for this kernel, 4 not root, 5 unsafe pool without --force.`,
    )
    .action(
      async (o: {
        pool?: number | 'auto'
        floor?: number
        warn?: number
        critical?: number
        userLimit?: number
        watchdogMs?: number
        testIoctls?: boolean
        module?: string
        force?: boolean
        dryRun?: boolean
      }) =>
        finish(
          await action({
            pool: o.pool,
            floorBytes: o.floor,
            warnBytes: o.warn,
            criticalBytes: o.critical,
            userLimitBytes: o.userLimit,
            watchdogMs: o.watchdogMs,
            testIoctls: o.testIoctls === true,
            modulePath: o.module,
            force: o.force === true,
            dryRun: o.dryRun === true,
          }),
        ),
    )
}
