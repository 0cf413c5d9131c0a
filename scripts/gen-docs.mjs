#!/usr/bin/env node
// Writes spillway.8, spillway-config.5 and the bash completion, generated from the built CLI's
// command definitions (run `npm run build` first), into DIR.
//   node scripts/gen-docs.mjs DIR
import fs from 'node:fs'
import path from 'node:path'
import { buildProgram, VERSION } from '../cli/dist/program.js'
import { configPage, spillwayPage } from '../cli/dist/lib/manpage.js'
import { bashCompletion } from '../cli/dist/lib/completion.js'

const dir = process.argv[2]
if (!dir) {
  process.stderr.write('usage: node scripts/gen-docs.mjs DIR\n')
  process.exit(2)
}
// The date of the last commit (reproducible builds), else SOURCE_DATE_EPOCH, else today.
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? Date.now() / 1000)
const meta = { version: VERSION, date: new Date(epoch * 1000).toISOString().slice(0, 10) }
const program = buildProgram()
fs.mkdirSync(dir, { recursive: true })
fs.writeFileSync(path.join(dir, 'spillway.8'), spillwayPage(program, meta))
fs.writeFileSync(path.join(dir, 'spillway-config.5'), configPage(meta))
fs.writeFileSync(path.join(dir, 'spillway.bash-completion'), bashCompletion(program))
