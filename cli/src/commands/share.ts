// spillway share set CGROUP --max SIZE [--min SIZE] | clear CGROUP | list: cgroup shares of the pool.
import { Command } from 'commander'
import fs from 'node:fs'
import { CliError, EXIT } from '../errors.js'
import { print, printJson } from '../io/console.js'
import { cgroupPaths, openCgroup } from '../io/cgroup.js'
import { Device } from '../io/device.js'
import { cgroupRoot } from '../io/jobs.js'
import { checkShareSizes, displayCgroup, renderShares, sortShares } from '../lib/share.js'
import type { ShareRow } from '../lib/share.js'
import { formatSize } from '../lib/sizes.js'
import { finish, sizeOption } from './common.js'

export interface ShareSetContext {
  cgroup: string
  maxBytes: number
  minBytes: number
  json: boolean
}

export interface ShareActions {
  set(ctx: ShareSetContext): Promise<number>
  clear(ctx: { cgroup: string; json: boolean }): Promise<number>
  list(ctx: { json: boolean }): Promise<number>
}

/** Sets the share of the cgroup CGROUP names (both 0 clears it); returns what the module reports. */
export function applyShare(cgroup: string, maxBytes: number, minBytes: number): ShareRow {
  const mount = cgroupRoot()
  const target = openCgroup(cgroup, mount)
  try {
    const device = Device.open({ writable: true })
    try {
      const share = device.setShare(target.fd, displayCgroup(target.dir, mount), maxBytes, minBytes)
      return { ...share, path: target.dir }
    } finally {
      device.close()
    }
  } finally {
    fs.closeSync(target.fd)
  }
}

/** Every share and charged cgroup, with the paths found by id under the cgroup2 mount. */
export function readShares(): ShareRow[] {
  const device = Device.open({ writable: false })
  let shares
  try {
    shares = device.listShares()
  } finally {
    device.close()
  }
  const paths = cgroupPaths(shares.map((s) => s.cgroupId))
  return sortShares(shares.map((s) => ({ ...s, path: paths.get(s.cgroupId) ?? null })))
}

function shareJson(row: ShareRow): Record<string, unknown> {
  const mount = cgroupRoot()
  return {
    cgroup: row.path === null ? null : displayCgroup(row.path, mount),
    path: row.path,
    cgroupId: row.cgroupId,
    maxBytes: row.maxBytes,
    minBytes: row.minBytes,
    usedBytes: row.usedBytes,
  }
}

export async function shareSet(ctx: ShareSetContext): Promise<number> {
  const problem = checkShareSizes(ctx.maxBytes, ctx.minBytes)
  if (problem) throw new CliError(problem.message, problem.hint, EXIT.usage)
  const row = applyShare(ctx.cgroup, ctx.maxBytes, ctx.minBytes)
  if (ctx.json) printJson(shareJson(row))
  else {
    const max = row.maxBytes ? formatSize(row.maxBytes) : 'no limit'
    const min = row.minBytes ? formatSize(row.minBytes) : 'none'
    print(`${displayCgroup(row.path ?? '', cgroupRoot())}: max ${max}, min ${min}, ${formatSize(row.usedBytes)} used`)
  }
  return 0
}

export async function shareClear(ctx: { cgroup: string; json: boolean }): Promise<number> {
  const row = applyShare(ctx.cgroup, 0, 0)
  if (ctx.json) printJson(shareJson(row))
  else print(`${displayCgroup(row.path ?? '', cgroupRoot())}: share cleared (${formatSize(row.usedBytes)} still charged to it)`)
  return 0
}

export async function shareList(ctx: { json: boolean }): Promise<number> {
  const rows = readShares()
  if (ctx.json) printJson({ shares: rows.map(shareJson) })
  else print(renderShares(rows, cgroupRoot()).join('\n'))
  return 0
}

const defaultActions: ShareActions = { set: shareSet, clear: shareClear, list: shareList }

export function shareCommand(actions: ShareActions = defaultActions): Command {
  const share = new Command('share').description("limit or guarantee a cgroup's share of the pool (cgroup v2)")
  share
    .command('set')
    .description("set a cgroup's limit and guarantee of pool memory (needs root)")
    .argument('<cgroup>', 'a cgroup v2 directory: relative to /sys/fs/cgroup, or an absolute path')
    .requiredOption('--max <size>', 'most pool memory the cgroup and its descendants may hold; 0 = no limit', sizeOption)
    .option('--min <size>', 'pool memory kept for the cgroup that others may not take', sizeOption, 0)
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Buffers are charged to the cgroup the process that opened /dev/spillway was in; limits apply down
the hierarchy. Past its max, an allocation fails (the shim reports CUDA out of memory).

Examples:
  sudo spillway share set system.slice/llm.service --max 16G --min 8G
  sudo spillway share set /sys/fs/cgroup/user.slice --max 4G

Exit codes: 0 set, 1 failed (module without shares, guarantees above the pool), 2 bad usage or
not a cgroup, 3 module not loaded, 4 not root.`,
    )
    .action(async (cgroup: string, o: { max: number; min: number; json?: boolean }) =>
      finish(await actions.set({ cgroup, maxBytes: o.max, minBytes: o.min, json: o.json === true })),
    )
  share
    .command('clear')
    .description("remove a cgroup's share (needs root)")
    .argument('<cgroup>', 'a cgroup v2 directory: relative to /sys/fs/cgroup, or an absolute path')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  sudo spillway share clear system.slice/llm.service

Exit codes: 0 cleared, 1 failed, 2 not a cgroup, 3 module not loaded, 4 not root.`,
    )
    .action(async (cgroup: string, o: { json?: boolean }) => finish(await actions.clear({ cgroup, json: o.json === true })))
  share
    .command('list', { isDefault: true })
    .description('every cgroup with a share or pool memory charged to it')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Paths are found by cgroup id (the directory's inode) under /sys/fs/cgroup; a cgroup removed while
its buffers live shows as "(id N, gone)".

Examples:
  spillway share list
  spillway share list --json | jq '.shares[] | select(.usedBytes > 0)'

Exit codes: 0 listed, 1 module without shares, 3 module not loaded, 4 may not open /dev/spillway.`,
    )
    .action(async (o: { json?: boolean }) => finish(await actions.list({ json: o.json === true })))
  return share
}
