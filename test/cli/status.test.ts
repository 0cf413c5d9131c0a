// status's exit statuses, colours and the --watch frame; watch's log lines; colour rules.
import t from 'tap'
import { DEFAULT_CONFIG, parseConfig } from '../../cli/src/lib/config.js'
import { renderStatus, statusExitCode, statusFrame } from '../../cli/src/lib/status.js'
import type { StatusReport } from '../../cli/src/lib/status.js'
import { colorWanted, paintFor, style } from '../../cli/src/lib/style.js'
import { formatLogLine } from '../../cli/src/lib/watch-log.js'
import { MiB } from '../../cli/src/lib/sizes.js'

function report(over: Partial<StatusReport> = {}): StatusReport {
  return {
    version: '0.1.0',
    kernel: '6.12.57+deb13-amd64',
    module: { loaded: true, device: '/dev/spillway', access: 'read-only', abi: { major: 1, minor: 0 }, source: 'ioctl' },
    pool: {
      poolBytes: 1024 * MiB,
      requestedBytes: 1024 * MiB,
      usedBytes: 256 * MiB,
      freeBytes: 768 * MiB,
      floorBytes: 0,
      releasedBytes: 0,
      buffers: 2,
      lentBytes: 0,
    },
    pressure: { level: 'ok', reasons: [], watermarkWarnBytes: 4096 * MiB, watermarkCriticalBytes: 1024 * MiB },
    buffers: [],
    loans: [],
    holders: [
      { pid: 42, uid: 1000, user: 'alice', command: 'python', buffers: 2, bytes: 256 * MiB, loans: 0, lentBytes: 0, share: 0.25 },
    ],
    events: [],
    memory: { ramBytes: 8192 * MiB, availableBytes: 4096 * MiB, swapTotalBytes: 0, swapFreeBytes: 0 },
    gpus: [],
    jobs: [],
    watch: { running: true, pid: 7 },
    missing: [],
    ...over,
  }
}

t.test('exit statuses scripts can use', async (t) => {
  t.equal(statusExitCode(report()), 0, 'loaded, ok')
  t.equal(statusExitCode(report({ module: { ...report().module, loaded: false }, pressure: null })), 3, 'not loaded')
  t.equal(statusExitCode(report({ pressure: { ...report().pressure!, level: 'warn' } })), 7)
  t.equal(statusExitCode(report({ pressure: { ...report().pressure!, level: 'critical' } })), 8)
  t.equal(
    statusExitCode(report({ pressure: { ...report().pressure!, level: 'unknown' } })),
    0,
    'a level sysfs did not give is not an alarm',
  )
})

t.test('renderStatus: version line, holders table, colour only when asked', async (t) => {
  const plain = renderStatus(report())
  t.match(plain, /\nversion {4}spillway 0\.1\.0, kernel 6\.12\.57\+deb13-amd64\n/)
  t.match(
    plain,
    /pool memory by process:\n {2}PID +USER +BUFFERS +SIZE +LENT +SHARE +COMMAND\n {2}42 +alice +2 +256 MiB +- +25\.0% +python/,
  )
  t.notMatch(plain, /\u001b/, 'no escape codes without colour')
  const painted = renderStatus(report({ pressure: { ...report().pressure!, level: 'critical' } }), style(true))
  t.match(painted, /pressure {3}\u001b\[31mcritical\u001b\[0m/, 'critical in red')
})

t.test('status --watch frame', async (t) => {
  const frame = statusFrame(report(), new Date('2026-12-05T20:30:00.123Z'), 5)
  t.match(frame, /^every 5 s: spillway status {4}2026-12-05 20:30:00 UTC\n\nmodule /)
})

t.test('colour rules: a terminal, NO_COLOR, FORCE_COLOR, TERM=dumb', async (t) => {
  t.equal(colorWanted(true, {}), true)
  t.equal(colorWanted(false, {}), false)
  t.equal(colorWanted(true, { NO_COLOR: '1' }), false)
  t.equal(colorWanted(true, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)')
  t.equal(colorWanted(false, { FORCE_COLOR: '1' }), true)
  t.equal(colorWanted(false, { FORCE_COLOR: '0' }), false)
  t.equal(colorWanted(true, { FORCE_COLOR: '1', NO_COLOR: '1' }), false, 'NO_COLOR wins')
  t.equal(colorWanted(true, { TERM: 'dumb' }), false)
  t.same(['ok', 'pass', 'warn', 'critical', 'fail', 'other'].map(paintFor), ['ok', 'ok', 'warn', 'bad', 'bad', 'bold'])
  t.equal(style(true).paint('', 'bad'), '', 'nothing to paint')
})

t.test('watch log lines: readable by default, JSON on request', async (t) => {
  const at = new Date('2026-12-05T20:30:00.000Z')
  t.equal(formatLogLine({ event: 'freeze', job: 'job-1a2b', pid: 4242 }, 'text', at), 'freeze job=job-1a2b pid=4242')
  t.equal(
    formatLogLine({ event: 'hook', level: 'warn', command: 'logger spillway warn', exitCode: 0, signal: null }, 'text', at),
    'hook level=warn command="logger spillway warn" exitCode=0',
    'quoted when it has spaces; null left out',
  )
  t.equal(
    formatLogLine({ event: 'start', psi: ['memory some 1 2', 'io full 3 4'], adoptedFrozen: [] }, 'text', at),
    'start psi="memory some 1 2, io full 3 4" adoptedFrozen=""',
  )
  t.equal(
    formatLogLine({ event: 'reload', policy: { freezeAtCritical: true } }, 'text', at),
    'reload policy={"freezeAtCritical":true}',
  )
  t.same(JSON.parse(formatLogLine({ event: 'stop', reason: 'SIGTERM' }, 'json', at)), {
    time: '2026-12-05T20:30:00.000Z',
    event: 'stop',
    reason: 'SIGTERM',
  })
})

t.test('config: logFormat and metrics', async (t) => {
  t.same(DEFAULT_CONFIG.watch.metrics, { textfile: null, listen: null, intervalSeconds: 15 }, 'metrics are off by default')
  t.equal(DEFAULT_CONFIG.watch.logFormat, 'text')
  const c = parseConfig({
    watch: {
      logFormat: 'json',
      metrics: { textfile: '/var/lib/prometheus/node-exporter/spillway.prom', listen: '9464', intervalSeconds: 30 },
    },
  })
  t.same(c.watch.metrics, { textfile: '/var/lib/prometheus/node-exporter/spillway.prom', listen: '9464', intervalSeconds: 30 })
  t.throws(() => parseConfig({ watch: { logFormat: 'xml' } }), /logFormat must be "text" or "json"/)
  t.throws(() => parseConfig({ watch: { metrics: { textfile: 'spillway.prom' } } }), /absolute path ending in \.prom/)
  t.throws(() => parseConfig({ watch: { metrics: { textfile: '/tmp/spillway.txt' } } }), /ending in \.prom/)
  t.throws(
    () => parseConfig({ watch: { metrics: { listen: 'everywhere' } } }),
    /metrics\.listen: "everywhere" is not \[HOST:\]PORT/,
  )
  t.throws(() => parseConfig({ watch: { metrics: { port: 1 } } }), /watch\.metrics\.port is not a setting/)
})
