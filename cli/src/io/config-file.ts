// Reads /etc/spillway/config.json (or --config); a missing default file means the defaults.
import fs from 'node:fs'
import { CliError, EXIT } from '../errors.js'
import { ConfigError, DEFAULT_CONFIG, parseConfig } from '../lib/config.js'
import type { Config } from '../lib/config.js'

export const DEFAULT_CONFIG_PATH = '/etc/spillway/config.json'

export function readConfig(file: string | undefined): Config {
  const target = file ?? process.env.SPILLWAY_CONFIG ?? DEFAULT_CONFIG_PATH
  let text: string
  try {
    text = fs.readFileSync(target, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && file === undefined) return DEFAULT_CONFIG
    throw new CliError(
      `can not read the config file ${target}: ${(error as Error).message}`,
      'check the path given to --config',
      EXIT.usage,
      { cause: error },
    )
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (error) {
    throw new CliError(
      `${target} is not valid JSON: ${(error as Error).message}`,
      'fix the file (docs/admin-guide.md shows an example)',
      EXIT.usage,
      { cause: error },
    )
  }
  try {
    return parseConfig(raw)
  } catch (error) {
    if (error instanceof ConfigError)
      throw new CliError(`${target}: ${error.message}`, 'fix that setting (docs/admin-guide.md lists them all)', EXIT.usage)
    throw error
  }
}
