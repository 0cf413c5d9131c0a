// Who holds pool memory: the buffers of SPILLWAY_IOC_LIST_BUFFERS summed per process.

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
  bytes: number
  /** bytes / pool size, 0..1; null when the pool size is unknown or 0. */
  share: number | null
}

/** One row per process, the largest holder first (ties: lower pid first). */
export function holders(
  buffers: readonly BufferEntry[],
  poolBytes: number | null,
  userName: (uid: number) => string | null,
): Holder[] {
  const byPid = new Map<number, Holder>()
  for (const b of buffers) {
    let h = byPid.get(b.pid)
    if (!h) {
      h = { pid: b.pid, uid: b.uid, user: userName(b.uid), command: b.command, buffers: 0, bytes: 0, share: null }
      byPid.set(b.pid, h)
    }
    h.buffers++
    h.bytes += b.size
  }
  const rows = [...byPid.values()]
  for (const h of rows) h.share = poolBytes ? h.bytes / poolBytes : null
  return rows.sort((a, b) => b.bytes - a.bytes || a.pid - b.pid)
}
