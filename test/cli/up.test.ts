// up's wait for the watch daemon: ready when the pid file names a live process, an error when the
// daemon exits first or never writes it.
import t from 'tap'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { waitForWatch } from '../../cli/src/commands/up.js'
import { CliError, EXIT } from '../../cli/src/errors.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-up-'))
process.env.SPILLWAY_RUN_DIR = dir
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
const pidFile = path.join(dir, 'watch.pid')

t.test('a daemon that exits at once is reported with its exit status', async (t) => {
  const child = spawn(process.execPath, ['-e', 'process.exit(3)'], { stdio: 'ignore' })
  await t.rejects(waitForWatch(child, '/run/spillway/watch.log', 10_000), {
    message: 'watch stopped at once (exit 3)',
    exitCode: EXIT.failed,
  })
})

t.test('a daemon that never writes its pid file times out', async (t) => {
  const error = await waitForWatch(null, '`journalctl -u spillway-watch`', 300).catch((e: unknown) => e)
  t.ok(error instanceof CliError)
  t.match(error, { message: 'watch did not start within 0.3 s', hint: 'see `journalctl -u spillway-watch`' })
})

t.test('ready once the pid file names the live daemon', async (t) => {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `setTimeout(() => require('fs').writeFileSync(${JSON.stringify(pidFile)}, process.pid + '\\n'), 200); setTimeout(() => {}, 5000)`,
    ],
    { stdio: 'ignore' },
  )
  t.teardown(() => child.kill())
  await t.resolves(waitForWatch(child, 'log', 10_000))
  t.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(child.pid))
})

t.test('from the Debian package, up builds a copy of /usr/src/spillway-VERSION/kmod, not the original', async (t) => {
  const packaged = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-pkg-'))
  t.teardown(() => fs.rmSync(packaged, { recursive: true, force: true }))
  fs.mkdirSync(path.join(packaged, 'kmod'))
  fs.writeFileSync(path.join(packaged, 'kmod', 'Kbuild'), 'obj-m := spillway.o\n')
  const up = await t.mockImport<typeof import('../../cli/src/commands/up.js')>('../../cli/src/commands/up.js', {
    '../../cli/src/io/install.js': { packagedSources: () => packaged },
  })
  const copy = up.moduleSourceDir(false)
  t.equal(copy, path.join(dir, 'kmod'), 'built under the run dir')
  t.equal(fs.readFileSync(path.join(copy, 'Kbuild'), 'utf8'), 'obj-m := spillway.o\n', 'with the packaged sources')
  const checkout = await t.mockImport<typeof import('../../cli/src/commands/up.js')>('../../cli/src/commands/up.js', {
    '../../cli/src/io/install.js': { packagedSources: () => undefined },
  })
  t.match(checkout.moduleSourceDir(true), /\/kmod$/)
  t.not(checkout.moduleSourceDir(true), copy, 'from a checkout: its own kmod/')
})
