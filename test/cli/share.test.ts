// Pure logic of `spillway share` (cli/src/lib/share.ts) and its command line (fake actions).
import t from 'tap'
import { Command, CommanderError } from 'commander'
import { buildProgram } from '../../cli/src/program.js'
import { shareCommand } from '../../cli/src/commands/share.js'
import type { ShareActions, ShareSetContext } from '../../cli/src/commands/share.js'
import { takeExitCode } from '../../cli/src/commands/common.js'
import {
  checkShareSizes,
  cgroupDirCandidates,
  displayCgroup,
  inodeIndex,
  renderShares,
  shareErrorText,
  sortShares,
} from '../../cli/src/lib/share.js'
import { GiB, MiB } from '../../cli/src/lib/sizes.js'
import { renderHolders } from '../../cli/src/lib/status.js'

const mount = '/sys/fs/cgroup'

t.test('a CGROUP argument names a directory under the mount or an absolute one', async (t) => {
  t.same(cgroupDirCandidates('system.slice/a.service', mount), ['/sys/fs/cgroup/system.slice/a.service'])
  t.same(cgroupDirCandidates('/sys/fs/cgroup/user.slice/', mount), ['/sys/fs/cgroup/user.slice'])
  t.same(cgroupDirCandidates('/sys/fs/cgroup', mount), ['/sys/fs/cgroup'])
  t.same(cgroupDirCandidates('/system.slice/x', mount), ['/system.slice/x', '/sys/fs/cgroup/system.slice/x'])
  t.same(cgroupDirCandidates('/mnt/cg2/a', mount), ['/mnt/cg2/a', '/sys/fs/cgroup/mnt/cg2/a'])
  t.equal(displayCgroup('/sys/fs/cgroup/system.slice/x', mount), '/system.slice/x')
  t.equal(displayCgroup(mount, mount), '/')
  t.equal(displayCgroup('/mnt/cg2/a', mount), '/mnt/cg2/a')
})

t.test('sizes are checked as the module checks them', async (t) => {
  t.equal(checkShareSizes(8 * GiB, 4 * GiB), null)
  t.equal(checkShareSizes(0, 4 * GiB), null, 'a guarantee without a limit')
  t.equal(checkShareSizes(8 * GiB, 0), null)
  t.match(checkShareSizes(0, 0)?.hint, /share clear/)
  t.match(checkShareSizes(GiB, 2 * GiB)?.message, /guarantee \(--min 2 GiB\) is above the limit \(--max 1 GiB\)/)
})

t.test('every errno of the share ioctls has its own explanation', async (t) => {
  const abi10 = { major: 1, minor: 1 }
  t.match(shareErrorText('EPERM', 'set', '/a', null), { kind: 'permission', message: /needs root/, hint: /sudo/ })
  t.match(shareErrorText('EPERM', 'list', '/a', null), { kind: 'permission', message: /listing shares needs root/ })
  const old = shareErrorText('ENOTTY', 'set', '/a', abi10)
  t.match(old, { kind: 'failed', message: /ABI 1\.1; shares need ABI 1\.2/ })
  t.match(shareErrorText('ENOTTY', 'list', '/a', null)?.message, /older than 1\.2/)
  t.match(shareErrorText('ENOSPC', 'set', '/a', null), { kind: 'failed', message: /guarantees/, hint: /lower --min/ })
  t.match(shareErrorText('ENOENT', 'set', '/a', null), { kind: 'usage', message: /\/a no longer exists/ })
  t.equal(shareErrorText('ENOENT', 'list', '/a', null), null, 'ENOENT of the device itself: the common message')
  t.match(shareErrorText('ENOTDIR', 'set', '/a', null), { kind: 'usage', message: /not a cgroup v2 directory/ })
  t.match(shareErrorText('EBADF', 'clear', '/a', null), { kind: 'usage' })
  t.match(shareErrorText('EINVAL', 'set', '/a', null), { kind: 'usage', hint: /--min at most --max/ })
  t.equal(shareErrorText('EACCES', 'set', '/a', null), null)
  t.equal(shareErrorText(undefined, 'set', '/a', null), null)
})

t.test('the list: paths by inode, sorted, unknown ids last', async (t) => {
  const index = inodeIndex([
    { ino: 5, dir: `${mount}/b` },
    { ino: 7, dir: `${mount}/a` },
    { ino: 5, dir: `${mount}/b-again` },
  ])
  t.equal(index.get(5), `${mount}/b`, 'the first path seen wins')
  const rows = sortShares([
    { cgroupId: 9, path: null, maxBytes: 0, minBytes: 0, usedBytes: 4 * MiB },
    { cgroupId: 5, path: `${mount}/b`, maxBytes: 2 * GiB, minBytes: 2 * GiB, usedBytes: 0 },
    { cgroupId: 3, path: null, maxBytes: GiB, minBytes: 0, usedBytes: 0 },
    { cgroupId: 7, path: `${mount}/a`, maxBytes: GiB, minBytes: 0, usedBytes: 512 * MiB },
  ])
  t.same(
    rows.map((r) => r.cgroupId),
    [7, 5, 3, 9],
  )
  t.same(renderShares(rows, mount), [
    'CGROUP        MAX    MIN    USED',
    '/a            1 GiB  none   512 MiB',
    '/b            2 GiB  2 GiB  0 B',
    '(id 3, gone)  1 GiB  none   0 B',
    '(id 9, gone)  none   none   4 MiB',
  ])
  t.same(renderShares([], mount), ['no cgroup has a share or pool memory charged to it'])
})

async function parse(args: string[]): Promise<{ code: number; error?: CommanderError; calls: unknown[] }> {
  const calls: unknown[] = []
  const record =
    (name: string) =>
    async (ctx: unknown): Promise<number> => {
      calls.push({ name, ctx })
      return 0
    }
  const fake: ShareActions = { set: record('set'), clear: record('clear'), list: record('list') }
  const program = buildProgram([shareCommand(fake)])
  const quiet = (c: Command): void => {
    c.configureOutput({ writeErr: () => {}, writeOut: () => {} })
    c.commands.forEach(quiet)
  }
  quiet(program)
  try {
    await program.parseAsync(['node', 'spillway', ...args])
    return { code: takeExitCode(), calls }
  } catch (error) {
    if (error instanceof CommanderError) return { code: -1, error, calls }
    throw error
  }
}

t.test('share command line', async (t) => {
  const set = await parse(['share', 'set', 'system.slice/x', '--max', '8G', '--min', '512MiB', '--json'])
  t.same(set.calls, [
    {
      name: 'set',
      ctx: { cgroup: 'system.slice/x', maxBytes: 8 * GiB, minBytes: 512 * MiB, json: true } satisfies ShareSetContext,
    },
  ])
  const noMin = await parse(['share', 'set', '/sys/fs/cgroup/a', '--max', '1G'])
  t.same(noMin.calls, [{ name: 'set', ctx: { cgroup: '/sys/fs/cgroup/a', maxBytes: GiB, minBytes: 0, json: false } }])
  const noMax = await parse(['share', 'set', 'a'])
  t.match(noMax.error?.message, /--max/, '--max is required')
  const badSize = await parse(['share', 'set', 'a', '--max', '8X'])
  t.match(badSize.error?.message, /not a size/)
  const negative = await parse(['share', 'set', 'a', '--max', '-1G'])
  t.match(negative.error?.message, /negative/)
  t.same((await parse(['share', 'clear', 'a'])).calls, [{ name: 'clear', ctx: { cgroup: 'a', json: false } }])
  t.same((await parse(['share'])).calls, [{ name: 'list', ctx: { json: false } }], 'list is the default')
  t.same((await parse(['share', 'list', '--json'])).calls, [{ name: 'list', ctx: { json: true } }])
})

t.test('ps: a CGROUP column when the module reports cgroups', async (t) => {
  const rows = [
    { pid: 7, uid: 0, user: 'root', command: 'python3', buffers: 2, bytes: GiB, loans: 0, lentBytes: 0, share: 0.5 },
    { pid: 12, uid: 0, user: 'root', command: 'x', buffers: 1, bytes: MiB, loans: 0, lentBytes: 0, share: null },
  ]
  const cgroups = new Map([
    [7, '/system.slice/slurmstepd.scope/job_3'],
    [12, '(id 99)'],
  ])
  t.same(
    renderHolders(rows, (h) => cgroups.get(h.pid) ?? '-'),
    [
      '  PID      USER        BUFFERS  SIZE        LENT        SHARE  CGROUP                               COMMAND',
      '  7        root        2        1 GiB       -           50.0%  /system.slice/slurmstepd.scope/job_3 python3',
      '  12       root        1        1 MiB       -           -      (id 99)                              x',
    ],
  )
  t.equal(renderHolders(rows)[0], '  PID      USER        BUFFERS  SIZE        LENT        SHARE  COMMAND', 'without: as before')
})
