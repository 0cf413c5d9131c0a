// Commands map their options to a typed context: built with fake actions and exitOverride().
import t from 'tap'
import { Command, CommanderError } from 'commander'
import { buildProgram } from '../../cli/src/program.js'
import { statusCommand } from '../../cli/src/commands/status.js'
import { poolCommand } from '../../cli/src/commands/pool.js'
import type { PoolActions } from '../../cli/src/commands/pool.js'
import { loadCommand } from '../../cli/src/commands/load.js'
import { unloadCommand } from '../../cli/src/commands/unload.js'
import { runCommand } from '../../cli/src/commands/run.js'
import { installCommand } from '../../cli/src/commands/install.js'
import { uninstallCommand } from '../../cli/src/commands/uninstall.js'
import { watchCommand } from '../../cli/src/commands/watch.js'
import { doctorCommand } from '../../cli/src/commands/doctor.js'
import { vmCommand } from '../../cli/src/commands/vm.js'
import { upCommand } from '../../cli/src/commands/up.js'
import { takeExitCode } from '../../cli/src/commands/common.js'
import { GiB, MiB } from '../../cli/src/lib/sizes.js'

function recorder<T>(code = 0): { calls: T[]; action: (ctx: T) => Promise<number> } {
  const calls: T[] = []
  return {
    calls,
    action: async (ctx: T) => {
      calls.push(ctx)
      return code
    },
  }
}

async function parse(commands: Command[], args: string[]): Promise<{ code: number; error?: CommanderError; stderr: string }> {
  const program = buildProgram(commands)
  let stderr = ''
  const quiet = (c: Command): void => {
    c.configureOutput({
      writeErr: (s) => {
        stderr += s
      },
      writeOut: () => {},
    })
    c.commands.forEach(quiet)
  }
  quiet(program)
  try {
    await program.parseAsync(['node', 'spillway', ...args])
    return { code: takeExitCode(), stderr }
  } catch (error) {
    if (error instanceof CommanderError) return { code: -1, error, stderr }
    throw error
  }
}

t.test('status and doctor', async (t) => {
  const status = recorder<{ json: boolean; watchSeconds?: number }>()
  await parse([statusCommand(status.action)], ['status', '--json'])
  await parse([statusCommand(status.action)], ['status'])
  await parse([statusCommand(status.action)], ['status', '--watch'])
  await parse([statusCommand(status.action)], ['status', '--watch', '0.5', '--json'])
  await parse([statusCommand(status.action)], ['status', '-w', '10'])
  t.same(
    status.calls,
    [
      { json: true, watchSeconds: undefined },
      { json: false, watchSeconds: undefined },
      { json: false, watchSeconds: 2 },
      { json: true, watchSeconds: 0.5 },
      { json: false, watchSeconds: 10 },
    ],
    '--watch alone: every 2 s',
  )
  const badWatch = await parse([statusCommand(status.action)], ['status', '--watch', 'often'])
  t.match(badWatch.stderr, /must be a number of seconds from 0\.1 to 86400/)
  const doctor = recorder<{ json: boolean }>(1)
  const r = await parse([doctorCommand(doctor.action)], ['doctor', '--json'])
  t.same(doctor.calls, [{ json: true }])
  t.equal(r.code, 1, "the action's exit code is kept for main.ts")
})

t.test('pool', async (t) => {
  const calls: unknown[] = []
  const fake: PoolActions = {
    show: async (ctx) => {
      calls.push(['show', ctx])
      return 0
    },
    set: async (ctx) => {
      calls.push(['set', ctx])
      return 0
    },
    watermarks: async (ctx) => {
      calls.push(['watermarks', ctx])
      return 0
    },
  }
  await parse([poolCommand(fake)], ['pool'])
  await parse([poolCommand(fake)], ['pool', 'show', '--json'])
  await parse([poolCommand(fake)], ['pool', 'set', '8G', '--force'])
  await parse([poolCommand(fake)], ['pool', 'set', '512MiB', '--dry-run', '--json'])
  await parse([poolCommand(fake)], ['pool', 'auto', '--dry-run'])
  await parse([poolCommand(fake)], ['pool', 'watermarks', '4G', '1G'])
  t.same(calls, [
    ['show', { json: false }],
    ['show', { json: true }],
    ['set', { size: 8 * GiB, force: true, dryRun: false, json: false }],
    ['set', { size: 512 * MiB, force: false, dryRun: true, json: true }],
    ['set', { size: 'auto', force: false, dryRun: true, json: false }],
    ['watermarks', { warnBytes: 4 * GiB, criticalBytes: GiB }],
  ])
  const bad = await parse([poolCommand(fake)], ['pool', 'set', '8X'])
  t.equal(bad.error?.code, 'commander.invalidArgument')
  t.match(bad.stderr, /"8X" is not a size; write a number with an optional unit, e.g. 8G/)
  const missing = await parse([poolCommand(fake)], ['pool', 'set'])
  t.equal(missing.error?.code, 'commander.missingArgument')
  t.equal(calls.length, 6, 'no action ran for bad input')
})

t.test('load and unload', async (t) => {
  const load = recorder<unknown>()
  await parse(
    [loadCommand(load.action as never)],
    ['load', '--pool', 'auto', '--warn', '4G', '--critical', '1G', '--module', 'k/spillway.ko', '--dry-run'],
  )
  await parse(
    [loadCommand(load.action as never)],
    ['load', '--pool', '16G', '--floor', '1G', '--user-limit', '2G', '--watchdog-ms', '250', '--force'],
  )
  t.same(load.calls, [
    {
      pool: 'auto',
      floorBytes: undefined,
      warnBytes: 4 * GiB,
      criticalBytes: GiB,
      userLimitBytes: undefined,
      watchdogMs: undefined,
      testIoctls: false,
      modulePath: 'k/spillway.ko',
      force: false,
      dryRun: true,
    },
    {
      pool: 16 * GiB,
      floorBytes: GiB,
      warnBytes: undefined,
      criticalBytes: undefined,
      userLimitBytes: 2 * GiB,
      watchdogMs: 250,
      testIoctls: false,
      modulePath: undefined,
      force: true,
      dryRun: false,
    },
  ])
  const bad = await parse([loadCommand(load.action as never)], ['load', '--watchdog-ms', 'fast'])
  t.match(bad.stderr, /positive integer of milliseconds/)
  const unload = recorder<unknown>(6)
  const r = await parse([unloadCommand(unload.action as never)], ['unload'])
  t.same(unload.calls, [{ dryRun: false }])
  t.equal(r.code, 6)
})

t.test('run keeps the command and its own options', async (t) => {
  const run = recorder<unknown>(42)
  const r = await parse(
    [runCommand(run.action as never)],
    ['run', '--oom-safe', '--vram-limit', '8G', '--', 'python', 'train.py', '--epochs', '3', '--json'],
  )
  t.same(run.calls, [{ command: ['python', 'train.py', '--epochs', '3', '--json'], oomSafe: true, vramLimitBytes: 8 * GiB }])
  t.equal(r.code, 42, "the job's exit code")
  await parse([runCommand(run.action as never)], ['run', 'nvidia-smi', '-L'])
  t.same(run.calls[1], { command: ['nvidia-smi', '-L'], oomSafe: false, vramLimitBytes: undefined })
  await parse([runCommand(run.action as never)], ['run', '-q', '--report', 'virtual', '--', 'x'])
  t.same(run.calls[2], { command: ['x'], oomSafe: false, vramLimitBytes: undefined, report: 'virtual', quiet: true })
  const badReport = await parse([runCommand(run.action as never)], ['run', '--report', 'max', '--', 'x'])
  t.match(badReport.stderr, /--report max: expected physical or virtual/)
  t.equal(run.calls.length, 3, 'a bad --report runs nothing')
  const none = await parse([runCommand(run.action as never)], ['run'])
  t.equal(none.error?.code, 'commander.missingArgument')
})

t.test('install, uninstall, watch, up, vm', async (t) => {
  const install = recorder<unknown>()
  await parse([installCommand(install.action as never)], ['install', '--dry-run', '--pool', '32G'])
  t.same(install.calls, [{ pool: 32 * GiB, force: false, dryRun: true }])
  const uninstall = recorder<unknown>()
  await parse([uninstallCommand(uninstall.action as never)], ['uninstall', '--purge'])
  t.same(uninstall.calls, [{ dryRun: false, purge: true }])
  const watch = recorder<unknown>()
  await parse(
    [watchCommand(watch.action as never)],
    ['watch', '--config', '/tmp/c.json', '--no-psi', '--kill-after-critical', '60'],
  )
  await parse(
    [watchCommand(watch.action as never)],
    ['watch', '--log-format', 'json', '--metrics-file', '/run/s.prom', '--metrics-listen', '9464'],
  )
  const none = { logFormat: undefined, metricsFile: undefined, metricsListen: undefined }
  t.same(watch.calls, [
    { configPath: '/tmp/c.json', psi: false, killAfterCriticalSeconds: 60, ...none },
    {
      configPath: undefined,
      psi: true,
      killAfterCriticalSeconds: undefined,
      logFormat: 'json',
      metricsFile: '/run/s.prom',
      metricsListen: '9464',
    },
  ])
  const badFormat = await parse([watchCommand(watch.action as never)], ['watch', '--log-format', 'xml'])
  t.match(badFormat.stderr, /Allowed choices are text, json/)
  const badListen = await parse([watchCommand(watch.action as never)], ['watch', '--metrics-listen', 'all'])
  t.match(badListen.stderr, /"all" is not \[HOST:\]PORT/)
  const up = recorder<unknown>()
  await parse([upCommand(up.action as never)], ['up', '--dry-run'])
  t.same(up.calls, [{ dryRun: true }])
  const vm = recorder<unknown>()
  await parse([vmCommand(vm.action as never)], ['vm', '--demo'])
  await parse([vmCommand(vm.action as never)], ['vm', '--kernel', '6.12', '--mem', '2048', '--', 'spillway', 'status'])
  t.same(vm.calls, [
    { kernel: '6.1', memMb: 1024, demo: true, command: [] },
    { kernel: '6.12', memMb: 2048, demo: false, command: ['spillway', 'status'] },
  ])
  const badKernel = await parse([vmCommand(vm.action as never)], ['vm', '--kernel', '5.10'])
  t.equal(badKernel.error?.code, 'commander.invalidArgument')
  t.match(badKernel.stderr, /Allowed choices are 6\.1, 6\.12, 7\.2/)
  const badMem = await parse([vmCommand(vm.action as never)], ['vm', '--mem', '100'])
  t.match(badMem.stderr, /"100" is too small: the guest needs at least 512 MiB/)
})

t.test('edge cases of sizes on the command line (issue 15)', async (t) => {
  const pool = { show: async () => 0, set: async () => 0, watermarks: async () => 0 }
  const negative = await parse([poolCommand(pool)], ['pool', 'set', '-5G'])
  t.equal(negative.error?.code, 'commander.invalidArgument')
  t.match(negative.stderr, /"-5G": a size or number can not be negative/)
  t.notMatch(negative.stderr, /unknown option/)
  const negativeNumber = await parse([poolCommand(pool)], ['pool', 'set', '-5'])
  t.match(negativeNumber.stderr, /"-5": a size can not be negative/, 'commander passes -5 on: the size parser refuses it')
  const negativeOption = await parse([loadCommand(recorder().action as never)], ['load', '--floor', '-1G'])
  t.match(negativeOption.stderr, /"-1G": a size can not be negative/)
  const unknown = await parse([poolCommand(pool)], ['pool', 'set', '--bogus'])
  t.match(unknown.stderr, /unknown option '--bogus'/, 'real unknown options are still reported as such')

  const run = recorder<unknown>()
  const vram0 = await parse([runCommand(run.action as never)], ['run', '--vram-limit', '0', '--', 'true'])
  t.equal(vram0.error?.code, 'commander.invalidArgument')
  t.match(vram0.stderr, /"0" is too small: a VRAM limit of 0 leaves the job no VRAM at all/)
  const install = recorder<unknown>()
  const pool0 = await parse([installCommand(install.action as never)], ['install', '--pool', '0'])
  t.match(pool0.stderr, /"0" is too small: a pool of 0 reserves nothing/)
  const load0 = await parse([loadCommand(recorder().action as never)], ['load', '--pool', '0M'])
  t.match(load0.stderr, /a pool of 0 reserves nothing/)
  t.same([...run.calls, ...install.calls], [], 'no action ran')

  const vm = recorder<{ memMb: number }>()
  await parse([vmCommand(vm.action as never)], ['vm', '--mem', '2G'])
  await parse([vmCommand(vm.action as never)], ['vm', '--mem', '1536MiB'])
  await parse([vmCommand(vm.action as never)], ['vm', '--mem', '768'])
  t.same(
    vm.calls.map((c) => c.memMb),
    [2048, 1536, 768],
    'vm --mem takes sizes; a bare number is MiB',
  )
  const huge = await parse([vmCommand(vm.action as never)], ['vm', '--mem', '1T'])
  t.match(huge.stderr, /"1T" is too large: at most 64 GiB/)
})

t.test('every command has help with examples and exit codes', async (t) => {
  const program = buildProgram()
  const leaves: Command[] = []
  const walk = (c: Command): void => {
    if (c.commands.length === 0) leaves.push(c)
    c.commands.forEach(walk)
  }
  program.commands.forEach(walk)
  t.equal(
    leaves.length,
    24,
    'status, pool show/set/auto/watermarks, up, load, unload, install, uninstall, watch, run, ps, share set/clear/list, slurm gres/prolog/epilog/task-prolog/guard, doctor, vm, version',
  )
  for (const c of leaves) {
    let help = ''
    c.configureOutput({
      writeOut: (s) => {
        help += s
      },
    })
    c.outputHelp()
    t.match(help, /Examples:\n {2}\S/, `${c.name()} --help has examples`)
    t.match(help, /Exit codes: /, `${c.name()} --help documents exit codes`)
  }
})
