#!/usr/bin/env node
// Writes cli/src/lib/uapi.generated.ts from kmod/include/uapi/spillway.h, the one definition of the
// UAPI. The header's #defines and structs are found by reading it; their values, sizes and offsets
// come from gcc compiling a program against it, so padding and _IOR() numbers are the compiler's.
//   node scripts/gen-uapi.mjs          regenerate the file (npm run uapi)
//   node scripts/gen-uapi.mjs --check  exit 1 when the file differs from what the header gives
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const header = path.join(repo, 'kmod/include/uapi/spillway.h')
const output = path.join(repo, 'cli/src/lib/uapi.generated.ts')

/** The object-like SPILLWAY_* macros (not the include guard) and each struct's fields, in order. */
export function readHeader(text) {
  const defines = []
  for (const m of text.matchAll(/^#define\s+(SPILLWAY_\w+)\s+(\S.*)$/gm)) {
    defines.push({ name: m[1], isString: m[2].trim().startsWith('"') })
  }
  const structs = []
  for (const m of text.matchAll(/^struct\s+(spillway_\w+)\s*\{([^}]*)\};/gm)) {
    const fields = []
    for (const f of m[2].matchAll(/^\s*(__[us]\d+)\s+(\w+)(\[\d+\])?;/gm)) {
      fields.push({ name: f[2], type: f[1].slice(2) + (f[3] ?? '') })
    }
    structs.push({ name: m[1], fields })
  }
  return { defines, structs }
}

/** A C program that prints every value, size and offset as JSON. */
function dumpProgram({ defines, structs }) {
  const lines = [
    '#include <stddef.h>',
    '#include <stdio.h>',
    `#include "${header}"`,
    'int main(void) {',
    'printf("{\\"defines\\": {");',
  ]
  defines.forEach((d, i) => {
    const sep = i ? ',' : ''
    if (d.isString) lines.push(`printf("${sep}\\"${d.name}\\": \\"%s\\"", ${d.name});`)
    else lines.push(`printf("${sep}\\"${d.name}\\": %llu", (unsigned long long)(${d.name}));`)
  })
  lines.push('printf("}, \\"structs\\": {");')
  structs.forEach((s, i) => {
    lines.push(`printf("${i ? ',' : ''}\\"${s.name}\\": {\\"size\\": %zu, \\"fields\\": {", sizeof(struct ${s.name}));`)
    s.fields.forEach((f, j) => {
      lines.push(
        `printf("${j ? ',' : ''}\\"${f.name}\\": [%zu, %zu]", offsetof(struct ${s.name}, ${f.name}), sizeof(((struct ${s.name} *)0)->${f.name}));`,
      )
    })
    lines.push('printf("}}");')
  })
  lines.push('printf("}}\\n");', 'return 0;', '}')
  return lines.join('\n')
}

function compileAndRun(source) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-uapi-'))
  try {
    fs.writeFileSync(path.join(dir, 'dump.c'), source)
    execFileSync('gcc', ['-Wall', '-Werror', '-o', path.join(dir, 'dump'), path.join(dir, 'dump.c')])
    return JSON.parse(execFileSync(path.join(dir, 'dump'), { encoding: 'utf8' }))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

export function generate() {
  const parsed = readHeader(fs.readFileSync(header, 'utf8'))
  const values = compileAndRun(dumpProgram(parsed))
  const out = [
    '// Generated from kmod/include/uapi/spillway.h by scripts/gen-uapi.mjs: do not edit.',
    '// `npm run uapi` regenerates it; test/cli/uapi.test.ts fails when it differs from the header.',
    '',
    '/** Every object-like SPILLWAY_* macro of the header, with the value gcc gives it. */',
    'export const HEADER = {',
  ]
  for (const d of parsed.defines) {
    const v = values.defines[d.name]
    out.push(`  ${d.name}: ${d.isString ? `'${v}'` : String(v)},`)
  }
  out.push(
    '} as const',
    '',
    "/** Each struct: its size, and each field's offset, size and type (u64, s32, u64[2], ...). */",
    'export const STRUCTS = {',
  )
  for (const s of parsed.structs) {
    const v = values.structs[s.name]
    out.push(`  ${s.name}: {`, `    size: ${v.size},`, '    fields: {')
    for (const f of s.fields) {
      const [offset, size] = v.fields[f.name]
      out.push(`      ${f.name}: { offset: ${offset}, size: ${size}, type: '${f.type}' },`)
    }
    out.push('    },', '  },')
  }
  out.push('} as const', '')
  return out.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = generate()
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(output) ? fs.readFileSync(output, 'utf8') : ''
    if (current !== text) {
      process.stderr.write(
        `${path.relative(repo, output)} differs from what ${path.relative(repo, header)} gives: run \`npm run uapi\`\n`,
      )
      process.exit(1)
    }
  } else {
    fs.writeFileSync(output, text)
  }
}
