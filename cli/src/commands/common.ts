// Helpers every command shares: the exit code an action returns, and option parsers.
import { InvalidArgumentError } from 'commander'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SizeError, parseSize } from '../lib/sizes.js'
import type { SizeRule } from '../lib/sizes.js'

let exitCode = 0

/** Records the exit code of the action that ran; main.ts sets it on the process. */
export function finish(code: number): void {
  exitCode = code
}

export function takeExitCode(): number {
  const code = exitCode
  exitCode = 0
  return code
}

/** A commander parser for sizes that checks a rule's limits: "8G", "512MiB", "1.5GiB", bytes. */
export function sizeParser(rule: SizeRule): (text: string) => number {
  return (text) => {
    try {
      return parseSize(text, rule)
    } catch (error) {
      throw new InvalidArgumentError(error instanceof SizeError ? error.message : String(error))
    }
  }
}

/** A commander parser for sizes: "8G", "512MiB", "1.5GiB", bytes. */
export const sizeOption = sizeParser({})

/** A pool of 0 reserves nothing: refused, with what to do instead. */
export const POOL_RULE: SizeRule = {
  min: { bytes: 1, why: 'a pool of 0 reserves nothing; give a size or auto (to remove spillway: `spillway uninstall`)' },
}

/** --pool: a size, or "auto" for the sizing formula. */
export function poolArg(text: string): number | 'auto' {
  return text === 'auto' ? 'auto' : sizeParser(POOL_RULE)(text)
}

/** The repository (or installed package) root: cli/dist/commands -> ../../.. */
export function repoDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
}

/** How to start this same command again (for the systemd unit and background watch). */
export function selfCommand(): string[] {
  return [process.execPath, path.join(repoDir(), 'cli/bin/spillway.js')]
}
