// Running other programs (modprobe, dkms, systemctl, ...).
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { CliError, EXIT } from '../errors.js'

export interface ExecResult {
  status: number
  stdout: string
  stderr: string
}

/** Runs argv and returns its output; never throws for a non-zero exit (spawn failure is status 127). */
export function exec(argv: readonly string[], options: { input?: string; timeoutMs?: number } = {}): ExecResult {
  const [file, ...args] = argv
  if (!file) throw new Error('exec: empty argv')
  const result = spawnSync(file, args, {
    encoding: 'utf8',
    input: options.input,
    timeout: options.timeoutMs ?? 600_000,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  if (result.error) return { status: 127, stdout: '', stderr: result.error.message }
  return { status: result.status ?? 128, stdout: result.stdout, stderr: result.stderr }
}

/** Runs argv and throws a CliError naming the command and its last stderr line when it fails. */
export function execOrThrow(argv: readonly string[], hint: string, options: { timeoutMs?: number } = {}): ExecResult {
  const result = exec(argv, options)
  if (result.status !== 0) {
    const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ')
    throw new CliError(`\`${argv.join(' ')}\` failed (exit ${result.status})${detail ? `: ${detail}` : ''}`, hint, EXIT.failed)
  }
  return result
}

/** The full path of a program on PATH (plus the sbin directories a non-root PATH may lack). */
export function which(program: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/local/sbin', '/usr/sbin', '/sbin'])
  for (const dir of dirs) {
    if (!dir) continue
    const candidate = path.join(dir, program)
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

export function isRoot(): boolean {
  return process.getuid?.() === 0
}
