// The man pages and the bash completion that the Debian package ships, generated from the commander
// definitions (cli/src/lib/manpage.ts, completion.ts) and the settings table (config-doc.ts).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { buildProgram } from '../../cli/src/program.js'
import { commandTree, configPage, helpAfter, roffText, spillwayPage } from '../../cli/src/lib/manpage.js'
import { bashCompletion } from '../../cli/src/lib/completion.js'
import { CONFIG_SETTINGS, defaultsAsFile } from '../../cli/src/lib/config-doc.js'
import { ConfigError, DEFAULT_CONFIG, parseConfig } from '../../cli/src/lib/config.js'
import { which } from '../../cli/src/io/exec.js'

const meta = { version: '9.8.7', date: '2026-12-05' }
const program = buildProgram()

/** groff's warnings for a page (-ww: all of them), or null without groff. */
function groffWarnings(page: string): string | null {
  if (!which('groff')) return null
  const r = spawnSync('groff', ['-man', '-ww', '-z', '-Tutf8'], { input: page, encoding: 'utf8' })
  return r.stderr
}

t.test('spillway(8) has every command, its options, examples and exit codes', async (t) => {
  const page = spillwayPage(program, meta)
  t.match(page, /^\.TH SPILLWAY 8 "2026-12-05" "spillway 9\.8\.7"/)
  const paths = commandTree(program).map((c) => c.path)
  t.ok(paths.includes('pool set') && paths.includes('install') && paths.includes('run'), 'nested commands are listed', { paths })
  for (const { path: name, command } of commandTree(program)) {
    t.match(page, `.SS ${roffText(`spillway ${name}`)}`, `a section for ${name}`)
    for (const option of command.options) {
      t.equal(
        page.includes(`.B ${roffText(option.flags)}`),
        !option.hidden,
        `${name} ${option.flags}${option.hidden ? ' (hidden: not in the page)' : ''}`,
      )
    }
  }
  const install = commandTree(program).find((c) => c.path === 'install')?.command
  t.match(helpAfter(install!), /Exit codes: 0 installed/, 'the help text after the options is read')
  t.match(page, roffText('sudo spillway install --pool 32G'), 'examples are in the page')
  t.match(page, /\.SH EXIT STATUS\n\.nf\nExit codes: 0 ok, 1 failed/)
  const warnings = groffWarnings(page)
  if (warnings !== null) t.equal(warnings, '', 'groff -ww finds nothing wrong')
})

t.test('roff escapes', async (t) => {
  t.equal(roffText('--pool a\\b'), '\\-\\-pool a\\eb')
  t.equal(roffText(".starts with a dot\n'quote"), "\\&.starts with a dot\n\\&'quote")
})

t.test('spillway-config(5) documents exactly the settings config.ts accepts, with its defaults', async (t) => {
  t.same(parseConfig(defaultsAsFile()), DEFAULT_CONFIG, 'the documented defaults are the defaults')
  // config.ts names the known keys of each object in its error for an unknown one.
  const known = (raw: unknown, where: string): string[] => {
    try {
      parseConfig(raw)
    } catch (error) {
      const list = error instanceof ConfigError ? /\(known: ([^)]*)\)/.exec(error.message)?.[1] : undefined
      if (list) return list.split(', ').map((k) => where + k)
    }
    return []
  }
  const accepted = [
    ...known({ watch: { bogus: 1 } }, 'watch.').filter(
      (k) => !['watch.psi', 'watch.hooks', 'watch.metrics', 'watch.oomAdjust'].includes(k),
    ),
    ...known({ watch: { metrics: { bogus: 1 } } }, 'watch.metrics.'),
    ...known({ watch: { oomAdjust: { bogus: 1 } } }, 'watch.oomAdjust.'),
    ...known({ watch: { psi: { bogus: 1 } } }, 'watch.psi.'),
    ...known({ watch: { hooks: { bogus: [] } } }, 'watch.hooks.'),
  ]
  t.same(CONFIG_SETTINGS.map((s) => s.key).sort(), accepted.sort(), 'one entry per setting')
  const page = configPage(meta)
  for (const s of CONFIG_SETTINGS) t.match(page, `.B ${roffText(s.key)}`)
  t.match(page, /\/etc\/spillway\/config\.json/)
  const example = /\.SH EXAMPLE\n\.nf\n([^]*?)\n\.fi/
    .exec(page)?.[1]
    ?.replace(/\\-/g, '-')
    .replace(/\\e/g, '\\')
    .replace(/^\\&/gm, '')
  t.ok(parseConfig(JSON.parse(example ?? 'null')), 'the example is a valid config file')
  const warnings = groffWarnings(page)
  if (warnings !== null) t.equal(warnings, '', 'groff -ww finds nothing wrong')
})

t.test(
  'bash completion: commands, subcommands, options, and the job after --',
  { skip: which('bash') ? false : 'no bash' },
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-completion-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    const script = path.join(dir, 'spillway')
    fs.writeFileSync(script, bashCompletion(program))
    t.equal(spawnSync('bash', ['-n', script]).status, 0, 'bash -n')
    const complete = (line: string): string[] => {
      const words = line.split(' ')
      const r = spawnSync(
        'bash',
        [
          '-c',
          `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _spillway; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { encoding: 'utf8' },
      )
      return r.stdout.split('\n').filter(Boolean).sort()
    }
    t.same(complete('spillway po'), ['pool'])
    t.same(complete('spillway pool s'), ['set', 'show'])
    t.same(complete('spillway install --'), ['--dry-run', '--force', '--help', '--kernel', '--pool', '--quiet'])
    t.same(complete('spillway --debug pool set --d'), ['--dry-run'], 'options before the command are skipped')
    t.same(complete('spillway install --pool '), [], 'a value: left to the default completion')
    t.ok(complete('spillway run -- ba').includes('bash'), 'after --: command names')
    t.same(complete('spillway run -- bash --'), [], "the job's own arguments are its business")
  },
)
