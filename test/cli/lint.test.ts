// eslint (typescript-eslint) and prettier over the TypeScript and JavaScript: CI fails on a finding.
// `npm run lint` runs the same; `npm run format` rewrites what prettier would change.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const bin = (name: string) => path.join(repo, 'node_modules/.bin', name)

function run(name: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(bin(name), args, { cwd: repo, encoding: 'utf8', timeout: 600_000 })
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() }
}

t.test('eslint finds nothing', async (t) => {
  const r = run('eslint', ['--max-warnings', '0', '.'])
  t.equal(r.status, 0, r.output || 'eslint failed without output')
})

t.test('prettier finds nothing to reformat', async (t) => {
  const r = run('prettier', ['--check', '.'])
  t.equal(r.status, 0, `${r.output}\n(npm run format fixes these)`)
})
