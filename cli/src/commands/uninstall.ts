// spillway uninstall: undoes install.
import { Command } from 'commander'
import { print } from '../io/console.js'
import { gatherInstallFacts } from '../io/install.js'
import { moduleLoaded, requireRoot } from '../io/kmod.js'
import { uninstallPlan } from '../lib/install-plan.js'
import { apply } from './install.js'
import { finish, repoDir, selfCommand } from './common.js'

export interface UninstallContext {
  dryRun: boolean
  purge: boolean
}

export async function uninstallAction(ctx: UninstallContext): Promise<number> {
  const facts = gatherInstallFacts(repoDir(), selfCommand().join(' '), null)
  const steps = uninstallPlan({ ...facts, moduleLoaded: moduleLoaded(), purge: ctx.purge })
  if (ctx.dryRun) {
    print(`removing spillway ${facts.version}; steps (--dry-run changes nothing):`)
    apply(steps, true)
    return 0
  }
  requireRoot('uninstall')
  const changed = apply(steps, false)
  print(
    changed === 0
      ? 'spillway is not installed; nothing changed'
      : `spillway uninstalled (${changed} steps)${ctx.purge ? '' : '; the spillway group and /etc/spillway are kept (--purge removes them)'}`,
  )
  return 0
}

export function uninstallCommand(action = uninstallAction): Command {
  return new Command('uninstall')
    .description('undo install: stop the daemon, unload, remove the DKMS module and the files (needs root)')
    .option('--purge', 'also remove /etc/spillway/config.json and the spillway group')
    .option('--dry-run', 'print every file and command, change nothing')
    .addHelpText(
      'after',
      `
Examples:
  spillway uninstall --dry-run
  sudo spillway uninstall --purge

Exit codes: 0 removed (or nothing installed), 1 a step failed, 4 not root, 6 buffers in use.`,
    )
    .action(async (o: { dryRun?: boolean; purge?: boolean }) =>
      finish(await action({ dryRun: o.dryRun === true, purge: o.purge === true })),
    )
}
