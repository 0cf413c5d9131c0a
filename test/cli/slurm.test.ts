// Pure logic of the Slurm hooks (cli/src/lib/slurm.ts): scontrol's output, the GRES, the job's
// cgroup and the environment of its tasks. The real thing runs in test/slurm/slurm.test.ts.
import t from 'tap'
import {
  checkJobId,
  expandHostlist,
  exportLines,
  gresConfig,
  gresCountIn,
  jobAllocation,
  parseJobState,
  pickJobCgroup,
  splitGresList,
  taskEnv,
} from '../../cli/src/lib/slurm.js'
import { GiB, MiB } from '../../cli/src/lib/sizes.js'
import { parseJobRecord } from '../../cli/src/lib/jobs.js'

// `scontrol show job -d` of Slurm 22.05 (Debian bookworm), one node, --gres=spillway:2.
const JOB = `JobId=7 JobName=big
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   JobState=RUNNING Reason=None Dependency=(null)
   NodeList=node[01-02]
   NumNodes=2 NumCPUs=2 NumTasks=2 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
   TRES=cpu=2,node=2,billing=2,gres/spillway=4
   JOB_GRES=spillway:2
     Nodes=node01 CPU_IDs=0 Mem=0 GRES=spillway(CNT:2)
     Nodes=node02 CPU_IDs=0 Mem=0 GRES=gpu:1(IDX:0),spillway:3
   MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0
   TresPerNode=gres:spillway:2
`

t.test('the gres.conf line counts whole GiB of the pool', async (t) => {
  t.same(gresConfig(4 * GiB + 100 * MiB, 'node01'), {
    count: 4,
    gresConf: 'Name=spillway Count=4',
    nodeGres: 'NodeName=node01 Gres=spillway:4',
  })
  t.equal(gresConfig(512 * MiB, 'n').count, 0)
})

t.test('GRES lists as scontrol writes them', async (t) => {
  t.same(splitGresList('gpu:2(IDX:0,2),spillway:4'), ['gpu:2(IDX:0,2)', 'spillway:4'])
  t.equal(gresCountIn('spillway:2'), 2)
  t.equal(gresCountIn('gres:spillway:3'), 3)
  t.equal(gresCountIn('cpu=1,gres/spillway=5'), 5)
  t.equal(gresCountIn('gpu:a100:1(IDX:0),spillway:fast:6(IDX:0-5)'), 6)
  t.equal(gresCountIn('spillway'), 1, 'no count is one')
  t.equal(gresCountIn('spillway:1K'), 1024)
  t.equal(gresCountIn('spillway(CNT:2)'), 2, "22.05's per-node count-only GRES")
  t.equal(gresCountIn('gpu(CNT:1),spillway(CNT:3)'), 3)
  t.equal(gresCountIn('gpu:2,spillwayx:3'), null)
  t.equal(gresCountIn(''), null)
})

t.test('host lists', async (t) => {
  t.same(expandHostlist('node[01-03,7],login'), ['node01', 'node02', 'node03', 'node7', 'login'])
  t.same(expandHostlist('localhost'), ['localhost'])
  t.same(expandHostlist('a[1-2]b'), ['a1b', 'a2b'])
})

t.test("a job's allocation on this node", async (t) => {
  t.same(jobAllocation(JOB, 'node01'), { gib: 2, from: 'Nodes=node01 GRES=spillway(CNT:2)' })
  t.same(jobAllocation(JOB, 'node02'), { gib: 3, from: 'Nodes=node02 GRES=gpu:1(IDX:0),spillway:3' })
  const noPerNode = JOB.split('\n')
    .filter((l) => !/^\s+Nodes=/.test(l))
    .join('\n')
  t.same(jobAllocation(noPerNode, 'node01'), { gib: 2, from: 'JOB_GRES=spillway:2' })
  const tresOnly = `JobId=8\n   NumNodes=2 NumCPUs=2\n   TRES=cpu=2,node=2,gres/spillway=4\n   TresPerNode=(null)\n`
  t.same(jobAllocation(tresOnly, 'x'), { gib: 2, from: 'TRES=cpu=2,node=2,gres/spillway=4' })
  const none = `JobId=9\n   TRES=cpu=1,node=1,billing=1\n     Nodes=localhost CPU_IDs=0 Mem=0 GRES=\n`
  t.equal(jobAllocation(none, 'localhost').gib, 0)
  t.equal(jobAllocation('JobId=10\n   TRES=cpu=1\n', 'n').gib, 0)
})

t.test("the job's cgroup", async (t) => {
  const dirs = [
    'system.slice',
    'system.slice/slurmstepd.scope',
    'system.slice/slurmstepd.scope/job_12',
    'system.slice/slurmstepd.scope/job_12/step_batch',
    'system.slice/slurmstepd.scope/job_123',
    'other/deeper/more/job_12',
  ]
  t.equal(pickJobCgroup(dirs, '12'), 'system.slice/slurmstepd.scope/job_12')
  t.equal(pickJobCgroup(dirs, '123'), 'system.slice/slurmstepd.scope/job_123')
  t.equal(pickJobCgroup(dirs, '1'), null)
})

t.test("the tasks' environment", async (t) => {
  const shim = '/usr/lib/spillway/libspillway-cuda.so'
  const vars = taskEnv({ gib: 2, shim, env: { LD_PRELOAD: '/x.so' } })
  t.same(vars, [
    ['SPILLWAY_BACKEND', 'pool'],
    ['SPILLWAY_SPILL_LIMIT', '2G'],
    ['SPILLWAY_LOG', 'warn,stats'],
    ['SPILLWAY_SLURM_GIB', '2'],
    ['LD_PRELOAD', `${shim}:/x.so`],
  ])
  t.same(exportLines(vars.slice(0, 1)), ['export SPILLWAY_BACKEND=pool'])
  const own = taskEnv({ gib: 1, shim, env: { SPILLWAY_LOG: 'info', LD_PRELOAD: shim } })
  t.same(
    own.map(([k]) => k),
    ['SPILLWAY_BACKEND', 'SPILLWAY_SPILL_LIMIT', 'SPILLWAY_SLURM_GIB'],
    "the user's SPILLWAY_LOG and a preloaded shim are kept",
  )
  t.same(taskEnv({ gib: 0, shim, env: {} }), [], 'no GRES, no change')
  t.notOk(
    taskEnv({ gib: 1, shim: null, env: {} }).some(([k]) => k === 'LD_PRELOAD'),
    'no shim installed: nothing to preload',
  )
})

t.test('the state the prolog leaves for the epilog, and job ids', async (t) => {
  const state = { jobId: '12', gib: 2, cgroup: '/sys/fs/cgroup/a/job_12', cgroupId: 99, error: null }
  t.same(parseJobState(JSON.stringify(state)), state)
  const pending = { jobId: '12', gib: 2, cgroup: null, cgroupId: null, error: null }
  t.same(parseJobState(JSON.stringify(pending)), pending, 'before the guard found the cgroup')
  const failed = { ...pending, error: 'no cgroup' }
  t.same(parseJobState(JSON.stringify(failed)), failed)
  t.equal(parseJobState(JSON.stringify({ ...state, cgroupId: '99' })), null)
  t.equal(parseJobState('{"jobId":"x"}'), null)
  t.equal(parseJobState('not json'), null)
  t.equal(checkJobId('42'), '42')
  t.equal(checkJobId('42;rm'), null)
  t.equal(checkJobId(undefined), null)
})

t.test('watch accepts a Slurm job registered with its job_ID cgroup, and nothing else outside its own', async (t) => {
  const base = '/sys/fs/cgroup/spillway'
  const record = (id: string, cgroup: string): string =>
    JSON.stringify({ id, pid: 5, cgroup, command: ['slurm', 'job 7'], uid: 0, startedAt: '2026-12-06T00:00:00Z' })
  t.equal(parseJobRecord(record('slurm-7', '/sys/fs/cgroup/system.slice/slurmstepd.scope/job_7'), base).id, 'slurm-7')
  t.throws(() => parseJobRecord(record('slurm-7', '/sys/fs/cgroup/system.slice/slurmstepd.scope/job_8'), base), /cgroup must be/)
  t.throws(() => parseJobRecord(record('slurm-7', '/sys/fs/cgroup/../etc/job_7'), base), /cgroup must be/)
  t.throws(() => parseJobRecord(record('slurm-7', '/elsewhere/job_7'), base), /cgroup must be/)
  t.throws(() => parseJobRecord(record('job-1', '/sys/fs/cgroup/x/job_1'), base), /cgroup must be/)
  t.equal(parseJobRecord(record('job-1', `${base}/job-1`), base).id, 'job-1', 'run --oom-safe jobs as before')
})
