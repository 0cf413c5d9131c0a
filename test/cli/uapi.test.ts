// The TypeScript view of the UAPI is generated from kmod/include/uapi/spillway.h (scripts/gen-uapi.mjs
// into cli/src/lib/uapi.generated.ts); the native binding is compiled against the same header.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as uapi from '../../cli/src/lib/uapi.js'
import { loadBinding } from '../../cli/src/io/native.js'
import type { NativeBinding } from '../../cli/src/io/native.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const header = fs.readFileSync(path.join(repo, 'kmod/include/uapi/spillway.h'), 'utf8')

t.test('uapi.generated.ts is what the header gives today', async (t) => {
  const check = spawnSync(process.execPath, [path.join(repo, 'scripts/gen-uapi.mjs'), '--check'], { encoding: 'utf8' })
  t.equal(check.status, 0, check.stderr)
})

t.test('the generator sees every #define and struct of the header', async (t) => {
  const defines = [...header.matchAll(/^#define\s+(SPILLWAY_\w+)\s+\S/gm)].map((m) => m[1])
  t.same(Object.keys(uapi.HEADER), defines)
  t.ok(defines.length >= 30, `${defines.length} defines`)
  const structs = [...header.matchAll(/^struct\s+(spillway_\w+)\s*\{/gm)].map((m) => m[1])
  t.same(Object.keys(uapi.STRUCTS), structs)
  for (const [name, s] of Object.entries(uapi.STRUCTS)) {
    const sizeMacro = `SPILLWAY_${name.replace(/^spillway_/, '').toUpperCase()}_SIZE` as keyof typeof uapi.HEADER
    t.equal(s.size, uapi.HEADER[sizeMacro], `sizeof(struct ${name}) is ${sizeMacro}`)
    const fields = Object.values(s.fields)
    const last = fields.at(-1)
    t.equal(last ? last.offset + last.size : 0, s.size, `${name}: no padding at the end`)
  }
})

t.test('every level, reason and event type of the header has a name here', async (t) => {
  const values = (prefix: string, exclude: string[] = []) =>
    Object.entries(uapi.HEADER)
      .filter(([name]) => name.startsWith(prefix) && !exclude.includes(name))
      .map(([, value]) => value)
  t.same(Object.values(uapi.LEVEL), values('SPILLWAY_LEVEL_'))
  t.same(Object.values(uapi.REASON), values('SPILLWAY_REASON_'))
  t.same(Object.values(uapi.EVENT_TYPE), values('SPILLWAY_EVENT_', ['SPILLWAY_EVENT_SIZE', 'SPILLWAY_EVENT_QUEUE_LEN']))
  t.same(uapi.LEVEL_NAMES, ['ok', 'warn', 'critical'], 'least dangerous first')
  t.equal(uapi.EVENT_OFFSETS.count, 64)
  t.equal(uapi.STRUCT_SIZES.spillway_event, uapi.EVENT_SIZE)
  t.equal(uapi.DEVICE_PATH, '/dev/spillway')
})

function nativeOrFail(t: Pick<typeof import('tap').default, 'fail'>): NativeBinding | null {
  const native = loadBinding()
  if (native instanceof Error) {
    t.fail(`the binding is not built: ${native.message}`)
    return null
  }
  return native
}

t.test('the native binding was compiled against the same header', async (t) => {
  const native = nativeOrFail(t)
  if (!native) return
  for (const [name, value] of Object.entries(native.constants)) {
    if (name.startsWith('SPILLWAY_')) t.equal(value, uapi.HEADER[name as keyof typeof uapi.HEADER], name)
  }
  t.same(
    native.sizes,
    Object.fromEntries(Object.keys(native.sizes).map((name) => [name, uapi.STRUCT_SIZES[name as uapi.StructName]])),
  )
  t.same(native.eventOffsets, uapi.EVENT_OFFSETS)
})

t.test('the binding type-checks its arguments', async (t) => {
  const native = nativeOrFail(t)
  if (!native) return
  const bad = native as unknown as Record<string, (...args: unknown[]) => unknown>
  const BadWatch = native.FdWatch as unknown as new (...args: unknown[]) => unknown
  t.throws(() => bad.info?.('3'), TypeError, 'fd as a string')
  t.throws(() => bad.info?.(-1), TypeError, 'negative fd')
  t.throws(() => bad.info?.(), TypeError, 'missing fd')
  t.throws(() => bad.resize?.(0, 1.5), TypeError, 'fractional size')
  t.throws(() => bad.resize?.(0, -1), TypeError, 'negative size')
  t.throws(() => bad.resize?.(0, 2 ** 60), TypeError, 'size above 2^53')
  t.throws(() => bad.listBuffers?.(0, 65537), TypeError, 'capacity above SPILLWAY_LIST_MAX')
  t.throws(() => new BadWatch(0, 0x100, () => {}), TypeError, 'watch events other than POLLIN/POLLPRI')
  t.throws(() => new BadWatch(0, 1, 'callback'), TypeError, 'watch callback not a function')
  t.throws(() => new BadWatch(0, 1), TypeError, 'watch without a callback')
  t.throws(() => bad.open?.(1, true), TypeError, 'path as a number')
  // A real fd that is not the device: the ioctl reaches the kernel and fails with ENOTTY.
  const fd = fs.openSync('/dev/null', 'r')
  try {
    t.throws(() => native.info(fd), { code: 'ENOTTY', syscall: 'SPILLWAY_IOC_INFO' })
    t.throws(() => native.open('/nonexistent/spillway', false), { code: 'ENOENT', syscall: 'open' })
  } finally {
    fs.closeSync(fd)
  }
})

t.test('FdWatch: events on the event loop, stop() at once', async (t) => {
  const native = nativeOrFail(t)
  if (!native) return
  const POLLIN = Number(native.constants.POLLIN)
  const [readEnd, writeEnd] = pipeFds()
  const seen: number[] = []
  const first = new Promise<void>((resolve) => {
    const watch = new native.FdWatch(readEnd, POLLIN, (error, revents) => {
      t.equal(error, null)
      seen.push(revents)
      fs.readSync(readEnd, Buffer.alloc(16)) // drain: uv_poll is level-triggered
      watch.stop()
      resolve()
    })
  })
  t.same(seen, [], 'nothing before the pipe is written')
  fs.writeSync(writeEnd, 'x')
  await first
  t.same(seen, [POLLIN], 'one callback with POLLIN')
  // A stopped watch calls nothing more, and keeps nothing alive: the test ends without a stop timer.
  fs.writeSync(writeEnd, 'y')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(seen, [POLLIN], 'no callback after stop()')
  // stop() closes the handle at once: nothing is left to wait for (this test would not end otherwise).
  const idle = new native.FdWatch(readEnd, POLLIN | Number(native.constants.POLLPRI), () => seen.push(-1))
  idle.stop()
  t.doesNotThrow(() => idle.stop(), 'a second stop() is harmless')
  fs.closeSync(readEnd)
  fs.closeSync(writeEnd)
})

/** A pipe's two fds (node has no pipe(2); a FIFO in a temporary directory gives the same). */
function pipeFds(): [number, number] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-fifo-'))
  const fifo = path.join(dir, 'fifo')
  spawnSync('mkfifo', [fifo])
  const readEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  const writeEnd = fs.openSync(fifo, fs.constants.O_WRONLY)
  fs.rmSync(dir, { recursive: true })
  return [readEnd, writeEnd]
}
