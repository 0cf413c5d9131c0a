// python/spillway (hybrid GPU+CPU placement) without a GPU: its unittest suite (planner, CPU
// kernels against a reference, CPU worker, placement of a tiny model with both roads simulated
// on the CPU, UAPI parsing) under Debian's python3-torch. The ioctl numbers it derives from the
// header are checked against what the C compiler makes of the same header.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const header = path.join(repo, 'kmod/include/uapi/spillway.h')

function pythonWithTorch(): string | undefined {
  const candidates = [process.env.SPILLWAY_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c)
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch, numpy'], { stdio: 'ignore' })
    if (r.status === 0) return py
  }
  return undefined
}

function compilerIoctls(): Record<string, string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-pyioc-'))
  const src = path.join(dir, 'ioc.c')
  fs.writeFileSync(
    src,
    [
      '#include <stdio.h>',
      `#include "${header}"`,
      'int main(void) { printf("%lu %lu\\n", (unsigned long)SPILLWAY_IOC_ALLOC, (unsigned long)SPILLWAY_IOC_VERSION); return 0; }',
    ].join('\n'),
  )
  try {
    execFileSync('cc', ['-o', path.join(dir, 'ioc'), src])
    const [alloc = '', version = ''] = execFileSync(path.join(dir, 'ioc'), { encoding: 'utf8' }).trim().split(' ')
    return { SPILLWAY_TEST_IOC_ALLOC: alloc, SPILLWAY_TEST_IOC_VERSION: version }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const py = pythonWithTorch()
if (!py) {
  const msg =
    'no python3 with torch and numpy (Debian: apt-get install python3-torch python3-numpy; ' +
    'scripts/setup-test-deps.sh does it as root)'
  if (process.getuid?.() === 0) t.fail(msg)
  else t.plan(0, msg)
} else {
  const python = py
  t.test('python/spillway unit tests', async (t) => {
    // One OpenMP thread: the tests are tiny, and on a loaded 2-core machine idle OpenMP threads
    // spinning beside the worker thread made the suite 13 times slower (2 min 15 s against 10 s).
    const r = spawnSync(python, ['-m', 'unittest', 'discover', '-v', '-s', 'tests', '-t', '.'], {
      cwd: path.join(repo, 'python'),
      encoding: 'utf8',
      env: {
        ...process.env,
        ...compilerIoctls(),
        SPILLWAY_UAPI_HEADER: header,
        OMP_NUM_THREADS: '1',
        OMP_WAIT_POLICY: 'passive',
      },
      timeout: 300_000,
    })
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`
    const ran = /Ran (\d+) tests?/.exec(out)
    t.equal(
      r.status,
      0,
      r.status === 0 ? 'python3 -m unittest passed' : `python3 -m unittest exited ${r.status}\n${out.slice(-4000)}`,
    )
    t.ok(ran && Number(ran[1]) >= 25, `ran ${ran?.[1] ?? 0} tests`)
    t.notMatch(out, /skipped 'kmod/, 'the UAPI header was found')
  })
}
