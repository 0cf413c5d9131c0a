import t from 'tap'
import { vmScript } from '../../cli/src/lib/vm-script.js'

const base = { spillway: ['/usr/bin/node', '/r/cli/bin/spillway.js'], modulePath: '/b/spillway.ko', poolMb: 128, memMb: 1024 }

t.test('plain: load, status, the command, unload', async (t) => {
  const script = vmScript({ ...base, demo: false, command: ['spillway', 'status', '--json'] })
  const lines = script.trim().split('\n')
  t.equal(lines[0], 'set -e')
  t.equal(lines[1], "spillway() { '/usr/bin/node' '/r/cli/bin/spillway.js' \"$@\"; }", 'a command can call spillway')
  t.equal(
    lines[2],
    "'/usr/bin/node' '/r/cli/bin/spillway.js' load --module '/b/spillway.ko' --pool 128M --warn 553M --critical 399M --watchdog-ms 100 --force",
  )
  t.equal(lines.at(-2), "'spillway' 'status' '--json'")
  t.equal(lines.at(-1), "'/usr/bin/node' '/r/cli/bin/spillway.js' unload")
  t.notMatch(script, /spillway\.js' watch/, 'no daemon without --demo')
})

t.test('demo: cgroup v2, watch, an --oom-safe job and a hog that crosses both watermarks', async (t) => {
  const script = vmScript({ ...base, demo: true, command: [] })
  t.match(script, /\[ -f \/sys\/fs\/cgroup\/cgroup.controllers \] \|\| mount -t cgroup2 none \/sys\/fs\/cgroup/)
  t.match(script, /watch --no-psi > \/tmp\/watch.log/)
  t.match(script, /run --oom-safe -- sh -c/)
  const hog = Number(/i<(\d+);i\+\+\)a.push/.exec(script)?.[1])
  t.equal(hog, 379)
  // Measured in the 1024 MiB guest with a 128 MiB pool: about 680 MiB available before the hog.
  const left = 680 - hog
  t.ok(left < 399 && left > 200, `the hog leaves about ${left} MiB: below critical, above OOM`)
  t.ok(script.indexOf('cat /tmp/watch.log') > script.indexOf('wait $job'), 'the log is shown after the job ends')
  t.equal(
    vmScript({ ...base, demo: false, command: ["it's"] })
      .trim()
      .split('\n')
      .at(-2),
    "'it'\\''s'",
    'quotes are escaped',
  )
})
