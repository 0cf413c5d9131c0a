// Entry point: wires the commands and is the one place that prints errors and sets the exit code.
import { CommanderError } from 'commander'
import { takeExitCode } from './commands/common.js'
import { EXIT, formatError } from './errors.js'
import { handleStdoutClosed, outStyle } from './io/console.js'
import { buildProgram } from './program.js'

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv)
    return takeExitCode()
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed the message (or the help / version).
      return error.exitCode === 0 ? 0 : EXIT.usage
    }
    const { text, exitCode } = formatError(error, argv.includes('--debug'), outStyle('err'))
    process.stderr.write(text + '\n')
    return exitCode
  }
}

handleStdoutClosed()
process.exitCode = await main(process.argv)
