// spillway ps: who holds pool memory, per process (SPILLWAY_IOC_LIST_BUFFERS and, ABI 1.3,
// SPILLWAY_IOC_LIST_LOANS summed by pid).
import { Command } from 'commander'
import { print, printJson } from '../io/console.js'
import { Device } from '../io/device.js'
import type { NativeBuffer } from '../io/native.js'
import { readText, userName } from '../io/system.js'
import { cgroupPaths } from '../io/cgroup.js'
import { cgroupRoot } from '../io/jobs.js'
import { displayCgroup } from '../lib/share.js'
import { holders } from '../lib/holders.js'
import type { Holder } from '../lib/holders.js'
import { formatSize } from '../lib/sizes.js'
import { renderHolders } from '../lib/status.js'
import { finish } from './common.js'

export async function psAction(ctx: { json: boolean }): Promise<number> {
  const device = Device.open({ writable: false })
  let rows: Holder[]
  let poolBytes: number
  let lentBytes: number
  // The cgroup each process's buffers are charged to (ABI 1.2; 0 from older modules): by pid.
  const cgroupIds = new Map<number, number>()
  try {
    const info = device.info()
    poolBytes = info.poolBytes
    lentBytes = info.lentBytes
    const withCommand = (b: NativeBuffer) => ({ ...b, command: readText(`/proc/${b.pid}/comm`)?.trim() ?? null })
    const buffers = device.listBuffers().map(withCommand)
    const loans = device.listLoans().map(withCommand)
    for (const b of [...buffers, ...loans]) if (b.cgroupId && !cgroupIds.has(b.pid)) cgroupIds.set(b.pid, b.cgroupId)
    rows = holders(buffers, poolBytes, userName, loans)
  } finally {
    device.close()
  }
  const mount = cgroupRoot()
  const paths = cgroupPaths(cgroupIds.values(), mount)
  const cgroupOf = (pid: number): string | null => {
    const id = cgroupIds.get(pid)
    if (id === undefined) return null
    const dir = paths.get(id)
    return dir === undefined ? `(id ${id})` : displayCgroup(dir, mount)
  }
  if (ctx.json) {
    printJson({ poolBytes, lentBytes, processes: rows.map((h) => ({ ...h, cgroup: cgroupOf(h.pid) })) })
    return 0
  }
  const used = rows.reduce((sum, h) => sum + h.bytes, 0)
  const lent = lentBytes ? `, ${formatSize(lentBytes)} lent to GPU drivers` : ''
  print(
    `pool ${formatSize(poolBytes)}: ${formatSize(used)} held by ${rows.length} process${rows.length === 1 ? '' : 'es'}${lent}`,
  )
  if (rows.length) print(renderHolders(rows, cgroupIds.size ? (h) => cgroupOf(h.pid) ?? '-' : undefined).join('\n'))
  return 0
}

export function psCommand(action = psAction): Command {
  return new Command('ps')
    .description('who holds pool memory: buffers, bytes and what each lent to its GPU driver, per process')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Needs read access to /dev/spillway (root or the spillway group).

Examples:
  spillway ps
  spillway ps --json | jq '.processes[] | select(.bytes > 1073741824)'

Exit codes: 0 listed, 3 module not loaded, 4 may not open /dev/spillway.`,
    )
    .action(async (o: { json?: boolean }) => finish(await action({ json: o.json === true })))
}
