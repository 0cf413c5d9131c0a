// Kernel style for kmod/: checkpatch.pl --strict (from Debian's linux-source-6.1, cached by
// checkpatch-fetch.sh) and sparse (make C=2 against the cached 6.1 headers, Debian's sparse
// package). Any message from either fails.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { prepareKernel, repoRoot } from '../vm/harness.js'

const kmod = path.join(repoRoot, 'kmod')
const sources = (dir: string, exts: string[]): string[] =>
  fs
    .readdirSync(path.join(kmod, dir))
    .filter((f) => exts.some((e) => f.endsWith(e)))
    .map((f) => path.join('kmod', dir, f))
    .sort()

t.test('checkpatch.pl --strict finds nothing in kmod/', async (t) => {
  const fetch = spawnSync('sh', [path.join(repoRoot, 'test/kmod/checkpatch-fetch.sh')], { encoding: 'utf8' })
  t.equal(fetch.status, 0, 'checkpatch-fetch.sh found or fetched checkpatch.pl', { stderr: fetch.stderr.slice(-2000) })
  if (fetch.status !== 0) return
  const script = fetch.stdout.trim().split('\n').pop() ?? ''
  const files = [...sources('.', ['.c', '.h']), ...sources('probe', ['.c']), ...sources('include/uapi', ['.h'])]
  t.ok(files.length >= 10, `${files.length} files to check`)
  const r = spawnSync('perl', [script, '--strict', '--no-tree', '--terse', '--show-types', '-f', ...files], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
  const findings = r.stdout.split('\n').filter((l) => /: (ERROR|WARNING|CHECK):/.test(l))
  t.same(findings, [], 'no ERROR, WARNING or CHECK')
  t.equal(r.status, 0, 'checkpatch exit status', { stderr: r.stderr.slice(-2000) })
  // The control: the same run finds the faults of a badly styled file.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-checkpatch-'))
  try {
    const bad = path.join(dir, 'bad.c')
    fs.writeFileSync(bad, '// SPDX-License-Identifier: GPL-2.0\nint f(int a){\n  if (a) return (a);\n  return 0;\n}\n')
    const c = spawnSync('perl', [script, '--strict', '--no-tree', '--terse', '--show-types', '-f', bad], { encoding: 'utf8' })
    t.ok(
      c.stdout.split('\n').filter((l) => /: (ERROR|WARNING|CHECK):/.test(l)).length >= 2,
      'control: a badly styled file is reported',
      { out: c.stdout },
    )
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

t.test('sparse (make C=2) finds nothing in kmod/ against the 6.1 headers', async (t) => {
  const which = spawnSync('sh', ['-c', 'command -v sparse'], { encoding: 'utf8' })
  t.equal(which.status, 0, 'sparse is installed (Debian package sparse; scripts/setup-test-deps.sh)')
  if (which.status !== 0) return
  const kernel = await prepareKernel('6.1')
  const kdir = fs.realpathSync(path.join(kernel.dir, 'headers'))
  const build = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-sparse-'))
  try {
    fs.cpSync(kmod, build, { recursive: true })
    t.comment('sparse over kmod/ (a module build with C=2; about a minute on 2 cores)')
    const r = spawnSync('make', ['-C', kdir, `M=${build}`, 'C=2', 'modules'], { encoding: 'utf8' })
    const out = r.stdout + r.stderr
    const checked = out.split('\n').filter((l) => /^\s+CHECK\s/.test(l))
    const cFiles = sources('.', ['.c']).length
    t.equal(checked.length, cFiles, `sparse checked all ${cFiles} .c files`, { output: out.slice(-3000) })
    const findings = out.split('\n').filter((l) => /(warning|error):/.test(l))
    t.same(findings, [], 'no sparse or compiler warning or error')
    t.equal(r.status, 0, 'the build succeeded', r.status === 0 ? {} : { output: out.slice(-3000) })
    // The control: sparse reports a dereference of a __user pointer, what C=2 is there to catch.
    const control = path.join(build, 'control.c')
    fs.writeFileSync(
      control,
      '#define __user __attribute__((noderef, address_space(__user)))\nint f(int __user *p);\nint f(int __user *p)\n{\n\treturn *p;\n}\n',
    )
    const c = spawnSync('sparse', [control], { encoding: 'utf8' })
    t.match(c.stdout + c.stderr, /warning: dereference of noderef expression/, 'control: sparse reports a __user dereference')
  } finally {
    fs.rmSync(build, { recursive: true, force: true })
  }
})
