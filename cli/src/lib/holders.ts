// Who holds pool memory: the buffers of SPILLWAY_IOC_LIST_BUFFERS and the loans of
// SPILLWAY_IOC_LIST_LOANS (capacity lent to a GPU driver, ABI 1.3) summed per process.

export interface BufferEntry {
  id: number
  size: number
  pid: number
  uid: number
  command: string | null
}

export interface Holder {
  pid: number
  uid: number
  user: string | null
  command: string | null
  buffers: number
  /** bytes in the process's buffers */
  bytes: number
  /** loans: pool capacity the process lent to its GPU driver (split allocations) */
  loans: number
  lentBytes: number
  /** bytes / pool size, 0..1; null when the pool size is unknown or 0. */
  share: number | null
}

/**
 * One row per process, the largest holder (buffers and loans together) first; ties: lower pid
 * first. A loan is not in the pool any more, so share counts the buffers only.
 */
export function holders(
  buffers: readonly BufferEntry[],
  poolBytes: number | null,
  userName: (uid: number) => string | null,
  loans: readonly BufferEntry[] = [],
): Holder[] {
  const byPid = new Map<number, Holder>()
  const row = (e: BufferEntry): Holder => {
    let h = byPid.get(e.pid)
    if (!h) {
      h = {
        pid: e.pid,
        uid: e.uid,
        user: userName(e.uid),
        command: e.command,
        buffers: 0,
        bytes: 0,
        loans: 0,
        lentBytes: 0,
        share: null,
      }
      byPid.set(e.pid, h)
    }
    return h
  }
  for (const b of buffers) {
    const h = row(b)
    h.buffers++
    h.bytes += b.size
  }
  for (const l of loans) {
    const h = row(l)
    h.loans++
    h.lentBytes += l.size
  }
  const rows = [...byPid.values()]
  for (const h of rows) h.share = poolBytes ? h.bytes / poolBytes : null
  return rows.sort((a, b) => b.bytes + b.lentBytes - (a.bytes + a.lentBytes) || a.pid - b.pid)
}
