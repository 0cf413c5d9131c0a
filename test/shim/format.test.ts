// The shim's C and every C test (test/shim, test/include, test/kmod, test/reliability) are as
// clang-format writes them (shim/.clang-format; each test folder links to it). Fix a failure with:
//   clang-format -i shim/src/*/*.[ch] test/{shim,include,kmod,reliability}/*.[ch]
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const dirs = ['shim/src/core', 'shim/src/hooks', 'test/shim', 'test/include', 'test/kmod', 'test/reliability']
const files = dirs.flatMap((d) =>
  readdirSync(join(root, d))
    .filter((f) => /\.[ch]$/.test(f))
    .sort()
    .map((f) => join(root, d, f)),
)

const version = spawnSync('clang-format', ['--version'], { encoding: 'utf8' })
t.equal(version.status, 0, "clang-format runs (scripts/setup-test-deps.sh installs Debian's clang-format)")
t.ok(files.length >= 30, `C files to check (${files.length})`)
if (version.status === 0) {
  t.comment(version.stdout.trim())
  for (const file of files) {
    const run = spawnSync('clang-format', ['--dry-run', '--Werror', file], { encoding: 'utf8' })
    t.equal(run.status, 0, `${relative(root, file)} is formatted${run.stderr ? `\n${run.stderr.slice(0, 2000)}` : ''}`)
  }
}
