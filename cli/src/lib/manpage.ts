// spillway(8) and spillway-config(5) in man(7) roff, generated from the commander definitions and
// the settings table, so the pages can not drift from `--help`. Pure: scripts/gen-docs.mjs writes them.
import type { Command, Option } from 'commander'
import type { EventEmitter } from 'node:events'
import { CONFIG_PATH, CONFIG_SETTINGS } from './config-doc.js'

export interface PageMeta {
  version: string
  /** YYYY-MM-DD, for the page footer. */
  date: string
}

/** Escapes text for roff: backslashes, hyphens (so they stay ASCII minus signs), leading dots. */
export function roffText(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((line) => (/^['.]/.test(line) ? `\\&${line}` : line))
    .join('\n')
}

/** A block shown as is (examples, formulas): no filling, no adjusting. */
function verbatim(text: string): string {
  return `.nf\n${roffText(text)}\n.fi`
}

/** The subcommands, depth first, with their full names ("pool set"). */
export function commandTree(program: Command): Array<{ path: string; command: Command }> {
  const out: Array<{ path: string; command: Command }> = []
  const walk = (command: Command, prefix: string): void => {
    for (const sub of command.commands) {
      const path = prefix ? `${prefix} ${sub.name()}` : sub.name()
      out.push({ path, command: sub })
      walk(sub, path)
    }
  }
  walk(program, '')
  return out
}

/** The text that `--help` prints after the option list (examples, exit codes), without outputHelp's side effects. */
export function helpAfter(command: Command): string {
  let text = ''
  // addHelpText('after', ...) registers an 'afterHelp' listener (Command is an EventEmitter at run time).
  const listeners = (command as unknown as EventEmitter).listeners('afterHelp') as Array<
    (context: { error: boolean; command: Command; write: (s: string) => void }) => void
  >
  for (const listener of listeners)
    listener({
      error: false,
      command,
      write: (s: string) => {
        text += s
      },
    })
  return text.trim()
}

function optionLines(options: readonly Option[]): string[] {
  const lines: string[] = []
  for (const option of options) {
    if (option.hidden) continue
    lines.push('.TP', `.B ${roffText(option.flags)}`, roffText(option.description))
  }
  return lines
}

function synopsis(path: string, command: Command): string {
  const args = command.registeredArguments.map((a) => {
    const name = `${a.name()}${a.variadic ? '...' : ''}`
    return a.required ? `<${name}>` : `[${name}]`
  })
  const hasOptions = command.options.some((o) => !o.hidden)
  return [`spillway ${path}`, hasOptions ? '[options]' : '', ...args].filter(Boolean).join(' ')
}

export function spillwayPage(program: Command, meta: PageMeta): string {
  const lines = [
    `.TH SPILLWAY 8 "${meta.date}" "spillway ${meta.version}" "System Administration"`,
    '.SH NAME',
    `spillway \\- ${roffText(program.description())}`,
    '.SH SYNOPSIS',
    '.B spillway',
    '[\\fB\\-\\-debug\\fR] \\fICOMMAND\\fR [\\fIoptions\\fR]',
    '.SH DESCRIPTION',
    'Spillway runs GPU jobs that need more memory than the card has.',
    'The kernel module \\fBspillway.ko\\fR takes a pool of RAM away from userland, so MemAvailable and the OOM',
    'killer see it as used, and hands it out as dma\\-bufs.',
    '\\fBspillway run\\fR starts a CUDA program with \\fIlibspillway\\-cuda.so\\fR preloaded, which spills allocations',
    'that no longer fit in VRAM into that pool.',
    '\\fBspillway watch\\fR (the \\fBspillway\\-watch\\fR service) freezes jobs started with \\fB\\-\\-oom\\-safe\\fR',
    'under memory pressure instead of letting the OOM killer strike.',
    '.PP',
    'An administrator reserves the pool at boot with \\fBspillway install \\-\\-pool\\fR \\fISIZE\\fR',
    '(DKMS, the initramfs, the service) and reboots; members of the group \\fBspillway\\fR may then use',
    '\\fI/dev/spillway\\fR.',
    '.SH OPTIONS',
    ...optionLines(program.options),
    '.TP',
    '.B \\-h, \\-\\-help',
    'show the help of spillway or of a command (\\fBspillway\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR)',
    '.SH COMMANDS',
  ]
  for (const { path, command } of commandTree(program)) {
    lines.push('.SS ' + roffText(synopsis(path, command)), roffText(command.description()))
    for (const arg of command.registeredArguments) {
      if (arg.description) lines.push('.TP', `.I ${roffText(arg.name())}`, roffText(arg.description))
    }
    lines.push(...optionLines(command.options))
    const after = helpAfter(command)
    if (after) lines.push('.PP', verbatim(after))
  }
  lines.push(
    '.SH EXIT STATUS',
    verbatim(helpAfter(program)),
    '.SH FILES',
    '.TP',
    '.I /dev/spillway',
    'the pool: root:spillway, mode 0660 (udev rule \\fI60\\-spillway.rules\\fR)',
    '.TP',
    `.I ${roffText(CONFIG_PATH)}`,
    'settings of \\fBspillway watch\\fR, see \\fBspillway\\-config\\fR(5)',
    '.TP',
    '.I /etc/modprobe.d/spillway.conf',
    'the pool size reserved at boot, written by \\fBspillway install\\fR',
    '.TP',
    '.I /sys/class/misc/spillway/',
    'the pool and the watchdog, readable by everyone',
    '.TP',
    '.I /run/spillway/',
    'the pid of watch and the registry of \\fB\\-\\-oom\\-safe\\fR jobs',
    '.TP',
    '.I /usr/src/spillway\\-VERSION/',
    'the module sources that DKMS builds for each kernel',
    '.SH SEE ALSO',
    '\\fBspillway\\-config\\fR(5), \\fBdkms\\fR(8), \\fBmodprobe\\fR(8), \\fBsystemctl\\fR(1), \\fBupdate\\-initramfs\\fR(8), \\fBnvidia\\-smi\\fR(1)',
    '.PP',
    'The admin guide: \\fI/usr/share/doc/spillway/admin\\-guide.md.gz\\fR.',
  )
  return lines.join('\n') + '\n'
}

export function configPage(meta: PageMeta): string {
  const lines = [
    `.TH SPILLWAY\\-CONFIG 5 "${meta.date}" "spillway ${meta.version}" "File Formats"`,
    '.SH NAME',
    `spillway\\-config \\- settings of spillway watch (${roffText(CONFIG_PATH)})`,
    '.SH DESCRIPTION',
    `\\fBspillway watch\\fR reads \\fI${roffText(CONFIG_PATH)}\\fR when it starts.`,
    'The file holds one JSON object; every setting is optional and a missing file means the defaults below.',
    'A setting that is not known, or a value out of its range, is refused at start with its name (exit status 2).',
    '.SH SETTINGS',
  ]
  for (const setting of CONFIG_SETTINGS) {
    lines.push(
      '.TP',
      `.B ${roffText(setting.key)}\\fR (${roffText(setting.type)}, default \\fB${roffText(JSON.stringify(setting.default))}\\fR)`,
      roffText(setting.description),
    )
  }
  lines.push(
    '.SH EXAMPLE',
    verbatim(
      JSON.stringify(
        {
          watch: {
            killAfterCriticalSeconds: 300,
            psi: { memorySomeWarnMs: 400 },
            hooks: { warn: ['logger -t spillway "memory pressure: $SPILLWAY_LEVEL"'] },
          },
        },
        null,
        2,
      ),
    ),
    '.SH SEE ALSO',
    '\\fBspillway\\fR(8), \\fBsystemd.service\\fR(5)',
  )
  return lines.join('\n') + '\n'
}
