// Builds the commander program. Tests build it with fake actions and exitOverride().
import { Command } from 'commander'
import { EXIT } from './errors.js'
import { setQuiet } from './io/console.js'
import { VERSION } from './io/version.js'
import { doctorCommand } from './commands/doctor.js'
import { installCommand } from './commands/install.js'
import { loadCommand } from './commands/load.js'
import { poolCommand } from './commands/pool.js'
import { psCommand } from './commands/ps.js'
import { runCommand } from './commands/run.js'
import { shareCommand } from './commands/share.js'
import { slurmCommand } from './commands/slurm.js'
import { statusCommand } from './commands/status.js'
import { uninstallCommand } from './commands/uninstall.js'
import { unloadCommand } from './commands/unload.js'
import { upCommand } from './commands/up.js'
import { versionCommand } from './commands/version.js'
import { vmCommand } from './commands/vm.js'
import { watchCommand } from './commands/watch.js'

export { VERSION } from './io/version.js'

export function buildProgram(commands: Command[] = defaultCommands()): Command {
  const program = new Command('spillway')
    .description('Run GPU jobs that need more memory than the card has: a reserved RAM pool, a CUDA shim, a pressure watchdog.')
    .version(VERSION, '-v, --version', 'print the version (`spillway version` says more)')
    .option('--debug', 'show stack traces of errors')
    .enablePositionalOptions()
  for (const command of commands) program.addCommand(command)
  // Errors reach main.ts as exceptions instead of process.exit() (subcommands do not inherit this).
  const override = (command: Command): void => {
    command.exitOverride().showHelpAfterError('(add --help for usage)')
    refuseNegativeArguments(command)
    if (!command.options.some((o) => o.short === '-q'))
      command.option('-q, --quiet', 'print nothing but errors: for scripts that read the exit status')
    command.commands.forEach(override)
  }
  override(program)
  program.hook('preAction', (_program, actionCommand) => setQuiet(actionCommand.optsWithGlobals().quiet === true))
  program.addHelpText(
    'after',
    `
Exit codes: 0 ok, 1 failed, 2 bad usage, 3 module not loaded, 4 permission denied,
5 refused as unsafe (--force overrides), 6 busy (buffers in use), 7 and 8 (status) pressure warn
and critical, 141 stdout closed early (as SIGPIPE). \`run\` exits with the job's code.`,
  )
  return program
}

/**
 * commander takes "-5G" for an option it does not know ("-5" alone passes as a number). No command
 * has a digit option, so an argument that starts with -digit is a negative value: say so.
 */
function refuseNegativeArguments(command: Command): void {
  // unknownOption is commander's (14.x) own hook for this message; its typings leave it out.
  const hooked = command as Command & { unknownOption(flag: string): void }
  const unknownOption = hooked.unknownOption.bind(command)
  hooked.unknownOption = (flag: string): void => {
    if (/^-\d/.test(flag))
      command.error(`error: "${flag}": a size or number can not be negative`, {
        code: 'commander.invalidArgument',
        exitCode: EXIT.usage,
      })
    unknownOption(flag)
  }
}

export function defaultCommands(): Command[] {
  return [
    statusCommand(),
    poolCommand(),
    upCommand(),
    loadCommand(),
    unloadCommand(),
    installCommand(),
    uninstallCommand(),
    watchCommand(),
    runCommand(),
    psCommand(),
    shareCommand(),
    slurmCommand(),
    doctorCommand(),
    vmCommand(),
    versionCommand(),
  ]
}
