// The cgroup v2 filesystem for `spillway share` and the Slurm hooks: opening a cgroup's directory
// (its fd names it to SPILLWAY_IOC_SET_SHARE) and finding cgroups by id (the directory's inode).
import fs from 'node:fs'
import path from 'node:path'
import { CliError, EXIT, errnoCode } from '../errors.js'
import { CGROUP2_SUPER_MAGIC, cgroupDirCandidates, inodeIndex } from '../lib/share.js'
import { cgroupRoot } from './jobs.js'

export interface OpenCgroup {
  fd: number
  dir: string
  /** the cgroup id: the directory's inode number */
  id: number
}

function isCgroup2(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === CGROUP2_SUPER_MAGIC
  } catch {
    return false
  }
}

/** Opens the cgroup2 directory that CGROUP names (see cgroupDirCandidates); the caller closes fd. */
export function openCgroup(arg: string, mount = cgroupRoot()): OpenCgroup {
  const candidates = cgroupDirCandidates(arg, mount)
  const dir = candidates.find((c) => fs.existsSync(c))
  if (!dir) {
    throw new CliError(
      `no cgroup ${arg}: ${candidates.join(' and ')} ${candidates.length > 1 ? 'do' : 'does'} not exist`,
      `name a directory under ${mount} (e.g. system.slice/foo.service) or give its absolute path`,
      EXIT.usage,
    )
  }
  if (!isCgroup2(dir)) {
    throw new CliError(
      `${dir} is not in a cgroup v2 filesystem`,
      `shares apply to cgroup v2 directories, e.g. under ${mount} (mount -t cgroup2 none ${mount})`,
      EXIT.usage,
    )
  }
  let fd: number
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  } catch (error) {
    const code = errnoCode(error)
    throw new CliError(
      `could not open ${dir} (${code ?? String(error)})`,
      code === 'ENOTDIR' ? 'a cgroup is a directory: name one' : 'check the path and that you may read it',
      code === 'ENOTDIR' ? EXIT.usage : EXIT.failed,
      { cause: error },
    )
  }
  return { fd, dir, id: fs.fstatSync(fd).ino }
}

/**
 * The directories of the given cgroup ids, found by walking the cgroup2 mount (a cgroup's id is its
 * directory's inode number). Stops once every id is found; ids not found are left out.
 */
export function cgroupPaths(ids: Iterable<number>, mount = cgroupRoot()): Map<number, string> {
  const wanted = new Set(ids)
  const found: Array<{ ino: number; dir: string }> = []
  if (wanted.size === 0) return new Map()
  const stack = [mount]
  while (stack.length && found.length < wanted.size) {
    const dir = stack.pop() as string
    let ino: number
    try {
      ino = fs.statSync(dir).ino
    } catch {
      continue // removed while we walked
    }
    if (wanted.has(ino)) found.push({ ino, dir })
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      continue
    }
    for (const e of entries) if (e.isDirectory()) stack.push(path.join(dir, e.name))
  }
  return inodeIndex(found)
}

/** The cgroup v2 path of a process ("/system.slice/x.service"), or null. */
export function cgroupOfPid(pid: number): string | null {
  try {
    const line = fs
      .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'))
    return line ? line.slice(3) : null
  } catch {
    return null
  }
}
