// Bash completion for spillway, generated from the commander definitions (scripts/gen-docs.mjs
// writes it to /usr/share/bash-completion/completions/spillway in the package). Pure.
import type { Command } from 'commander'
import { commandTree } from './manpage.js'

const words = (command: Command): string[] => {
  const subs = command.commands.map((c) => c.name())
  const options = command.options
    .filter((o) => !o.hidden)
    .flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined))
  return [...subs, ...options, '--help']
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

export function bashCompletion(program: Command): string {
  const tree = [{ path: '', command: program }, ...commandTree(program)]
  const subcommandCases = commandTree(program).map(({ path, command }) => {
    const parent = path.split(' ').slice(0, -1).join(' ')
    return quote(`${parent}:${command.name()}`)
  })
  const valueOptions = tree.flatMap(({ path, command }) =>
    command.options
      .filter((o) => o.required || o.optional)
      .flatMap((o) => [o.short, o.long].filter(Boolean).map((f) => quote(`${path}:${f}`))),
  )
  const wordCases = tree.map(({ path, command }) => `\t${quote(path)}) list=${quote(words(command).join(' '))} ;;`)
  return `# bash completion for spillway(8). Generated from the command definitions by scripts/gen-docs.mjs.
_spillway() {
	local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
	local path="" i w list=""
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=\${COMP_WORDS[i]}
		# After "--" comes the job's command line (spillway run -- CMD ...).
		if [[ $w == -- ]]; then
			if ((i == COMP_CWORD - 1)); then
				mapfile -t COMPREPLY < <(compgen -c -- "$cur")
			fi
			return
		fi
		case "$path:$w" in
		${subcommandCases.join(' | ')})
			path=\${path:+$path }$w ;;
		esac
	done
	# An option that takes a value: leave it to the default (file names).
	case "$path:$prev" in
	${valueOptions.length ? valueOptions.join(' | ') : "''"})
		return ;;
	esac
	case "$path" in
${wordCases.join('\n')}
	esac
	mapfile -t COMPREPLY < <(compgen -W "$list" -- "$cur")
}
complete -o default -F _spillway spillway
`
}
