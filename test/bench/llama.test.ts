// The llama.cpp benchmark's logic (bench/llama: model shapes, the bound per placement, the
// parsers of llama-fit-params, llama-bench and the shim's log), run with Python's unittest.
// The GGUF writer's read-back test needs llama.cpp's gguf-py (LLAMA_GGUF_PY) and skips
// itself without it; the count of skips is shown.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const python = spawnSync('python3', ['--version'], { encoding: 'utf8' })

if (python.status !== 0) {
  t.skip('python3 is not installed: bench/llama is not tested here', () => {})
} else {
  const run = spawnSync('python3', ['-m', 'unittest', 'discover', '-v', '-s', join(root, 'bench', 'llama'), '-p', 'test_*.py'], {
    encoding: 'utf8',
    timeout: 120_000,
  })
  const out = `${run.stdout ?? ''}${run.stderr ?? ''}`
  const ran = /^Ran (\d+) tests?/m.exec(out)
  t.ok(ran !== null && Number(ran[1]) >= 10, `unittest ran the tests (${ran?.[0] ?? 'no summary'})`)
  for (const m of out.matchAll(/^(\w+) \(([\w.]+)\)[^\n]*? \.\.\. (ok|FAIL|ERROR|skipped.*)$/gm)) {
    const [, , name = '', result = ''] = m
    if (result.startsWith('skipped')) t.skip(`${name}: ${result}`, () => {})
    else t.equal(result, 'ok', name)
  }
  t.equal(run.status, 0, `unittest exited 0${run.status ? `:\n${out.slice(-3000)}` : ''}`)
}
