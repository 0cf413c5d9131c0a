// The shim's layering, read from its object files: core/ never calls into hooks/ (the
// exported wrappers), and the files of core/ call each other without a circle.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const build = join(root, 'shim', 'build')

interface Obj {
  name: string
  defines: Set<string>
  uses: Set<string>
}

function objects(layer: string): Obj[] {
  const dir = join(build, layer)
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((f) => f.endsWith('.o'))
    .sort()
    .map((f) => {
      const nm = spawnSync('nm', [join(dir, f)], { encoding: 'utf8' })
      const defines = new Set<string>()
      const uses = new Set<string>()
      for (const line of nm.stdout.split('\n')) {
        const m = /^\s*[0-9a-f]*\s+([A-Za-z])\s+(\S+)$/.exec(line)
        if (!m) continue
        if (m[1] === 'U') uses.add(m[2] as string)
        else if (m[1] === (m[1] as string).toUpperCase()) defines.add(m[2] as string)
      }
      return { name: `${layer}/${f.replace(/\.o$/, '.c')}`, defines, uses }
    })
}

const core = objects('core')
const hooks = objects('hooks')
t.ok(
  core.length >= 10 && hooks.length >= 5,
  `the shim is built in layers (${core.length} core, ${hooks.length} hooks objects; make -C shim)`,
)

const hookSymbols = new Map<string, string>()
for (const o of hooks) for (const s of o.defines) hookSymbols.set(s, o.name)
for (const o of core) {
  const calls = [...o.uses].filter((s) => hookSymbols.has(s)).map((s) => `${s} (${hookSymbols.get(s)})`)
  t.same(calls, [], `${o.name} uses nothing from hooks/`)
}

// Which core file uses which: an edge for every undefined symbol another core file defines.
const definedBy = new Map<string, string>()
for (const o of core) for (const s of o.defines) definedBy.set(s, o.name)
const edges = new Map<string, Set<string>>()
for (const o of core) {
  const to = new Set<string>()
  for (const s of o.uses) {
    const d = definedBy.get(s)
    if (d && d !== o.name) to.add(d)
  }
  edges.set(o.name, to)
}
// Depth-first search for a cycle; reports the first one found as a path.
function findCycle(): string[] {
  const state = new Map<string, number>()
  const stack: string[] = []
  const visit = (n: string): string[] => {
    state.set(n, 1)
    stack.push(n)
    for (const m of edges.get(n) ?? []) {
      if (state.get(m) === 1) return [...stack.slice(stack.indexOf(m)), m]
      if (!state.has(m)) {
        const c = visit(m)
        if (c.length) return c
      }
    }
    stack.pop()
    state.set(n, 2)
    return []
  }
  for (const n of edges.keys()) {
    if (!state.has(n)) {
      const c = visit(n)
      if (c.length) return c
    }
  }
  return []
}
t.same(findCycle(), [], 'the files of core/ call each other without a circle')
