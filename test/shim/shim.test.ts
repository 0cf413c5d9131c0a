// Runs each C test program of the shim under LD_PRELOAD against the fake driver and turns
// every TAP line it prints into an assertion. A program that crashes, exits non-zero, prints
// no lines or fewer lines than its plan fails.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, '..', '..')
const shim = join(root, 'shim', 'build', 'libspillway-cuda.so')
const build = join(here, 'build')

t.ok(existsSync(shim), `the shim is built (${shim}; scripts/build.sh runs make -C shim)`)
const programs = existsSync(build)
  ? readdirSync(build)
      .filter((f) => /^t_[a-z_]+$/.test(f))
      .sort()
  : []
t.ok(programs.length >= 8, `the test programs are built (${programs.join(', ')})`)

for (const program of programs) {
  t.test(program, async (tt) => {
    const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: shim, LD_LIBRARY_PATH: build }
    for (const name of Object.keys(env)) {
      if (name.startsWith('SPILLWAY_') || name.startsWith('FAKE_CUDA_')) delete env[name]
    }
    const run = spawnSync(join(build, program), [], { env, encoding: 'utf8', timeout: 240_000 })
    const lines = (run.stdout ?? '').split('\n')
    let asserted = 0
    let plan = -1
    for (const line of lines) {
      const m = /^(not )?ok (\d+) - (.*)$/.exec(line)
      if (m && !m[1] && m[3]?.includes('# SKIP')) {
        tt.skip(`${m[2]} - ${m[3]}`, () => {})
        asserted++
      } else if (m) {
        tt.ok(!m[1], `${m[2]} - ${m[3]}`)
        asserted++
      }
      const p = /^1\.\.(\d+)$/.exec(line)
      if (p) plan = Number(p[1])
    }
    tt.ok(asserted > 0, `${program} printed TAP lines`)
    tt.equal(plan, asserted, `${program} printed its whole plan`)
    tt.equal(run.signal, null, `${program} was not killed by a signal`)
    tt.equal(run.status, 0, `${program} exited 0${run.stderr ? `; stderr: ${run.stderr.slice(-2000)}` : ''}`)
  })
}
