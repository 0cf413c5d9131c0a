// The TypeScript view of the UAPI (cli/src/lib/uapi.ts) and the native binding's constants must
// match kmod/include/uapi/spillway.h: a C program compiled against the header prints its values.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as uapi from '../../cli/src/lib/uapi.js'
import { loadBinding } from '../../cli/src/io/native.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const header = path.join(repo, 'kmod/include/uapi/spillway.h')

const fields = ['seq', 'type', 'level', 'prev_level', 'reason', 'time_ns', 'mem_available', 'swap_free', 'swap_rate', 'pool_free', 'count']
const structs = Object.keys(uapi.STRUCT_SIZES)
const consts = [
  'SPILLWAY_ABI_MAJOR', 'SPILLWAY_ABI_MINOR', 'SPILLWAY_LEVEL_OK', 'SPILLWAY_LEVEL_WARN', 'SPILLWAY_LEVEL_CRITICAL',
  'SPILLWAY_REASON_MEM_AVAILABLE', 'SPILLWAY_REASON_SWAP_FREE', 'SPILLWAY_REASON_SWAP_RATE', 'SPILLWAY_REASON_OOM',
  'SPILLWAY_REASON_RECOVERED', 'SPILLWAY_EVENT_LEVEL', 'SPILLWAY_EVENT_OVERFLOW', 'SPILLWAY_EVENT_RELEASE',
  'SPILLWAY_EVENT_LOST', 'SPILLWAY_EVENT_SIZE', 'SPILLWAY_EVENT_QUEUE_LEN', 'SPILLWAY_LIST_MAX', 'SPILLWAY_IOC_MAGIC',
  'SPILLWAY_IOC_VERSION', 'SPILLWAY_IOC_INFO', 'SPILLWAY_IOC_ALLOC', 'SPILLWAY_IOC_RESIZE',
  'SPILLWAY_IOC_SET_WATERMARKS', 'SPILLWAY_IOC_LIST_BUFFERS',
]

function headerValues(): { consts: Record<string, number>; sizes: Record<string, number>; offsets: Record<string, number>; device: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-uapi-'))
  const src = path.join(dir, 'dump.c')
  const lines = [
    '#include <stddef.h>', '#include <stdio.h>', `#include "${header}"`, 'int main(void) {',
    'printf("{\\"device\\": \\"%s\\", \\"consts\\": {", SPILLWAY_DEVICE_NAME);',
    ...consts.map((c, i) => `printf("${i ? ',' : ''}\\"${c}\\": %llu", (unsigned long long)(${c}));`),
    'printf("}, \\"sizes\\": {");',
    ...structs.map((s, i) => `printf("${i ? ',' : ''}\\"${s}\\": %zu", sizeof(struct ${s}));`),
    'printf("}, \\"offsets\\": {");',
    ...fields.map((f, i) => `printf("${i ? ',' : ''}\\"${f}\\": %zu", offsetof(struct spillway_event, ${f}));`),
    'printf("}}\\n"); return 0; }',
  ]
  fs.writeFileSync(src, lines.join('\n'))
  try {
    execFileSync('gcc', ['-Wall', '-Werror', '-o', path.join(dir, 'dump'), src])
    return JSON.parse(execFileSync(path.join(dir, 'dump'), { encoding: 'utf8' }))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const h = headerValues()

t.test('constants in cli/src/lib/uapi.ts match the header', async (t) => {
  const c = h.consts
  t.equal(uapi.DEVICE_NAME, h.device)
  t.equal(uapi.ABI_MAJOR, c.SPILLWAY_ABI_MAJOR)
  t.equal(uapi.ABI_MINOR, c.SPILLWAY_ABI_MINOR)
  t.same(uapi.LEVEL, { ok: c.SPILLWAY_LEVEL_OK, warn: c.SPILLWAY_LEVEL_WARN, critical: c.SPILLWAY_LEVEL_CRITICAL })
  t.same(uapi.REASON, {
    memAvailable: c.SPILLWAY_REASON_MEM_AVAILABLE, swapFree: c.SPILLWAY_REASON_SWAP_FREE, swapRate: c.SPILLWAY_REASON_SWAP_RATE,
    oom: c.SPILLWAY_REASON_OOM, recovered: c.SPILLWAY_REASON_RECOVERED,
  })
  t.same(uapi.EVENT_TYPE, { level: c.SPILLWAY_EVENT_LEVEL, overflow: c.SPILLWAY_EVENT_OVERFLOW, release: c.SPILLWAY_EVENT_RELEASE, lost: c.SPILLWAY_EVENT_LOST })
  t.equal(uapi.EVENT_SIZE, c.SPILLWAY_EVENT_SIZE)
  t.equal(uapi.EVENT_QUEUE_LEN, c.SPILLWAY_EVENT_QUEUE_LEN)
  t.equal(uapi.LIST_MAX, c.SPILLWAY_LIST_MAX)
})

t.test('struct sizes and event offsets match the header', async (t) => {
  t.same(uapi.STRUCT_SIZES, h.sizes)
  t.same(uapi.EVENT_OFFSETS, h.offsets)
  t.equal(h.sizes.spillway_event, uapi.EVENT_SIZE, 'the event record is EVENT_SIZE bytes')
})

t.test('the native binding was compiled against the same header', async (t) => {
  const native = loadBinding()
  if (native instanceof Error) {
    t.fail(`the binding is not built: ${native.message}`)
    return
  }
  for (const name of consts) t.equal(native.constants[name], h.consts[name], name)
  t.equal(native.constants.SPILLWAY_DEVICE_NAME, h.device)
  t.same(native.sizes, h.sizes)
  t.same(native.eventOffsets, h.offsets)
})

t.test('the binding type-checks its arguments', async (t) => {
  const native = loadBinding()
  if (native instanceof Error) {
    t.fail(`the binding is not built: ${native.message}`)
    return
  }
  const bad = native as unknown as Record<string, (...args: unknown[]) => unknown>
  t.throws(() => bad.info?.('3'), TypeError, 'fd as a string')
  t.throws(() => bad.info?.(-1), TypeError, 'negative fd')
  t.throws(() => bad.info?.(), TypeError, 'missing fd')
  t.throws(() => bad.resize?.(0, 1.5), TypeError, 'fractional size')
  t.throws(() => bad.resize?.(0, -1), TypeError, 'negative size')
  t.throws(() => bad.resize?.(0, 2 ** 60), TypeError, 'size above 2^53')
  t.throws(() => bad.listBuffers?.(0, 65537), TypeError, 'capacity above SPILLWAY_LIST_MAX')
  t.throws(() => bad.poll?.(0, 0x100, 10), TypeError, 'poll events other than POLLIN/POLLPRI')
  t.throws(() => bad.poll?.(0, 1, 70000), TypeError, 'poll timeout above 60 s')
  t.throws(() => bad.open?.(1, true), TypeError, 'path as a number')
  // A real fd that is not the device: the ioctl reaches the kernel and fails with ENOTTY.
  const fd = fs.openSync('/dev/null', 'r')
  try {
    t.throws(() => native.info(fd), { code: 'ENOTTY', syscall: 'SPILLWAY_IOC_INFO' })
    t.throws(() => native.open('/nonexistent/spillway', false), { code: 'ENOENT', syscall: 'open' })
    t.equal(await native.poll(fd, Number(native.constants.POLLIN), 100), Number(native.constants.POLLIN), '/dev/null is readable at once')
  } finally {
    fs.closeSync(fd)
  }
})
