// Cgroup shares of the pool (UAPI 1.2, struct spillway_share): naming the cgroup, checking the
// sizes, what each errno of SET_SHARE / LIST_SHARES means, and the table `spillway share list` prints.
import path from 'node:path'
import { formatSize } from './sizes.js'

/** The ABI that has SPILLWAY_IOC_SET_SHARE and SPILLWAY_IOC_LIST_SHARES. */
export const SHARES_ABI = { major: 1, minor: 2 } as const

/** statfs(2) f_type of a cgroup v2 filesystem (linux/magic.h CGROUP2_SUPER_MAGIC). */
export const CGROUP2_SUPER_MAGIC = 0x63677270

export interface ShareRow {
  cgroupId: number
  /** The cgroup's directory, found by its inode number under the cgroup2 mount; null if not found. */
  path: string | null
  maxBytes: number
  minBytes: number
  usedBytes: number
}

/**
 * The directory a CGROUP argument names: an absolute path as it is (a cgroup2 directory anywhere,
 * e.g. /sys/fs/cgroup/system.slice), anything else relative to the cgroup2 mount
 * ("system.slice/foo.service"). An absolute path that does not exist is taken under the mount too
 * ("/system.slice" as /proc/PID/cgroup writes it), when it is not already under the mount.
 */
export function cgroupDirCandidates(arg: string, mount: string): string[] {
  const trimmed = arg.trim().replace(/(.)\/+$/, '$1')
  const under = path.join(mount, trimmed.replace(/^\/+/, ''))
  if (!path.isAbsolute(trimmed)) return [under]
  const normal = path.normalize(trimmed)
  if (normal === mount || normal.startsWith(`${mount}/`)) return [normal]
  return [normal, under]
}

/** A cgroup path for people: relative to the mount with a leading "/", as /proc/PID/cgroup shows it. */
export function displayCgroup(dir: string, mount: string): string {
  if (dir === mount) return '/'
  if (dir.startsWith(`${mount}/`)) return dir.slice(mount.length)
  return dir
}

export type ShareSizeProblem = { message: string; hint: string } | null

/** Checks max/min before the ioctl, with the same rules the module applies (EINVAL otherwise). */
export function checkShareSizes(maxBytes: number, minBytes: number): ShareSizeProblem {
  if (maxBytes === 0 && minBytes === 0) {
    return {
      message: 'a share with --max 0 and no --min limits nothing',
      hint: 'to remove a share use `spillway share clear CGROUP`; --max 0 with --min SIZE is a guarantee without a limit',
    }
  }
  if (maxBytes !== 0 && minBytes > maxBytes) {
    return {
      message: `the guarantee (--min ${formatSize(minBytes)}) is above the limit (--max ${formatSize(maxBytes)})`,
      hint: 'give a --min at most --max, e.g. `--max 8G --min 4G`',
    }
  }
  return null
}

export type ShareAction = 'set' | 'clear' | 'list'

export interface ShareErrorText {
  message: string
  hint: string
  /** which EXIT code: permission, usage, noModule or failed */
  kind: 'permission' | 'usage' | 'noModule' | 'failed'
}

/**
 * What an errno from SET_SHARE / LIST_SHARES means (the contract is the comment on struct
 * spillway_share), or null for the errors every ioctl shares (ENOENT of the device, EACCES...).
 * `abi` is the loaded module's VERSION, when it could be read.
 */
export function shareErrorText(
  code: string | undefined,
  action: ShareAction,
  cgroup: string,
  abi: { major: number; minor: number } | null,
): ShareErrorText | null {
  const need = `ABI ${SHARES_ABI.major}.${SHARES_ABI.minor}`
  switch (code) {
    case 'EPERM':
      return {
        message: action === 'list' ? 'listing shares needs root' : `changing the share of ${cgroup} needs root (CAP_SYS_ADMIN)`,
        hint: 'run it again with sudo',
        kind: 'permission',
      }
    case 'ENOTTY':
      return {
        message: `the loaded spillway module has no cgroup shares (it speaks ABI ${abi ? `${abi.major}.${abi.minor}` : 'older than 1.2'}; shares need ${need})`,
        hint: 'install and load the module of this spillway version (`sudo spillway install`, then reboot or `sudo spillway unload && sudo spillway load`)',
        kind: 'failed',
      }
    case 'ENOSPC':
      return {
        message: `the guarantees (--min) of all cgroups would add up to more than the pool's requested size`,
        hint: 'lower --min, clear the share of a cgroup that no longer needs one (`spillway share list`), or grow the pool (`spillway pool set`)',
        kind: 'failed',
      }
    case 'ENOENT':
      if (action === 'list') return null
      return {
        message: `the cgroup ${cgroup} no longer exists`,
        hint: 'check the path (`ls /sys/fs/cgroup`); a cgroup that is removed drops its share by itself',
        kind: 'usage',
      }
    case 'EBADF':
    case 'ENOTDIR':
      return {
        message: `${cgroup} is not a cgroup v2 directory`,
        hint: 'name a directory of the cgroup2 filesystem, e.g. system.slice/foo.service or /sys/fs/cgroup/user.slice',
        kind: 'usage',
      }
    case 'EINVAL':
      return {
        message: `the module refused the share of ${cgroup} as invalid (a guarantee above the limit?)`,
        hint: 'give --min at most --max; check `dmesg` for messages from spillway',
        kind: 'usage',
      }
    default:
      return null
  }
}

/** Maps each cgroup's inode number (its cgroup id) to its directory; the first path seen wins. */
export function inodeIndex(dirs: Iterable<{ ino: number; dir: string }>): Map<number, string> {
  const index = new Map<number, string>()
  for (const { ino, dir } of dirs) if (!index.has(ino)) index.set(ino, dir)
  return index
}

/** The rows in a stable order: by path (unknown paths last, by id). */
export function sortShares(rows: readonly ShareRow[]): ShareRow[] {
  return [...rows].sort((a, b) => {
    if (a.path !== null && b.path !== null) return a.path < b.path ? -1 : a.path > b.path ? 1 : 0
    if (a.path !== null) return -1
    if (b.path !== null) return 1
    return a.cgroupId - b.cgroupId
  })
}

const limit = (bytes: number, none: string): string => (bytes === 0 ? none : formatSize(bytes))

/** The table of `spillway share list`; paths relative to the mount, "(id N)" when not found. */
export function renderShares(rows: readonly ShareRow[], mount: string): string[] {
  if (rows.length === 0) return ['no cgroup has a share or pool memory charged to it']
  const table = rows.map((r) => [
    r.path === null ? `(id ${r.cgroupId}, gone)` : displayCgroup(r.path, mount),
    limit(r.maxBytes, 'none'),
    limit(r.minBytes, 'none'),
    formatSize(r.usedBytes),
  ])
  const head = ['CGROUP', 'MAX', 'MIN', 'USED']
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()
  return [line(head), ...table.map(line)]
}
