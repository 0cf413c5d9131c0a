// spillway install: DKMS, udev rule, modprobe.d, initramfs, systemd unit, group.
import { Command } from 'commander'
import { CliError, EXIT } from '../errors.js'
import { print, progress, warn } from '../io/console.js'
import { readSecureBoot, DKMS_MOK_PUB } from '../io/doctor-facts.js'
import { gatherInstallFacts, performStep } from '../io/install.js'
import { requireRoot } from '../io/kmod.js'
import { readSizingFacts } from '../io/sizing-facts.js'
import { describeStep, installPlan, planBlockers } from '../lib/install-plan.js'
import type { Step } from '../lib/install-plan.js'
import { MiB } from '../lib/sizes.js'
import { decidePoolSize } from './pool.js'
import { finish, poolArg, repoDir, selfCommand } from './common.js'

export interface InstallContext {
  pool: number | 'auto' | undefined
  force: boolean
  dryRun: boolean
  /** Build and set up the initramfs for this kernel release instead of the running one. */
  kernel?: string
}

export const SECURE_BOOT_NOTE = `Secure Boot is on: the kernel loads only modules signed by a trusted key. DKMS signs the
modules it builds with its own key (${DKMS_MOK_PUB}, created on the first build). Enroll it once:
  sudo mokutil --import ${DKMS_MOK_PUB}     # choose a one-time password
  reboot, choose "Enroll MOK" in the blue MOK manager, enter the password
Until then, loading spillway fails with "Key was rejected by service".`

export function apply(steps: Step[], dryRun: boolean): number {
  let changed = 0
  for (const step of steps) {
    if (dryRun) {
      print(describeStep(step))
      continue
    }
    if (step.done) continue
    progress(describeStep(step).split('\n')[0] ?? '')
    performStep(step)
    changed++
  }
  return changed
}

export async function installAction(ctx: InstallContext): Promise<number> {
  let poolMb: number | null = null
  if (ctx.pool !== undefined) poolMb = Math.ceil(decidePoolSize(ctx.pool, ctx.force, await readSizingFacts()).bytes / MiB)
  const facts = gatherInstallFacts(repoDir(), selfCommand().join(' '), poolMb, ctx.kernel)
  const steps = installPlan(facts)
  const secureBoot = readSecureBoot() === 'enabled'
  const blockers = planBlockers(facts, steps)
  if (ctx.dryRun) {
    print(`spillway ${facts.version} for kernel ${facts.kernelRelease}; steps (--dry-run changes nothing):`)
    apply(steps, true)
    if (secureBoot) print('\n' + SECURE_BOOT_NOTE)
    for (const b of blockers) print(`\nwould fail: ${b.problem}\n  what to do: ${b.fix}`)
    return blockers.length ? EXIT.failed : EXIT.ok
  }
  requireRoot('install')
  // Refused before the first step: a half-done install helps no one.
  if (blockers.length) {
    throw new CliError(blockers.map((b) => b.problem).join('; '), blockers.map((b) => b.fix).join('; '), EXIT.failed)
  }
  if (secureBoot) warn(SECURE_BOOT_NOTE)
  const changed = apply(steps, false)
  print(
    changed === 0
      ? 'spillway is already installed; nothing changed'
      : `spillway installed (${changed} steps); the pool is reserved at the next boot, or now with \`sudo spillway load\``,
  )
  return 0
}

export function installCommand(action = installAction): Command {
  return new Command('install')
    .description(
      'install for boot: DKMS module, udev rule, modprobe.d pool size, initramfs loading, systemd unit, group (needs root)',
    )
    .option('--pool <size|auto>', 'pool reserved at boot (written to /etc/modprobe.d/spillway.conf)', poolArg)
    .option('--force', 'allow a pool that leaves less than the safe floor of RAM')
    .option('--dry-run', 'print every file and command, change nothing')
    .option(
      '--kernel <release>',
      'build the module and the initramfs for this kernel instead of the running one (an image in a chroot)',
    )
    .addHelpText(
      'after',
      `
Idempotent: finished steps are skipped, so running it again after a failure or an upgrade is safe.

Examples:
  spillway install --dry-run --pool auto
  sudo spillway install --pool 32G
  chroot /mnt spillway install --pool 8G --kernel 6.12.57+deb13-amd64   # an image being built

Exit codes: 0 installed (or already), 1 a step failed or would fail (the message names it and\nwhat to do; --dry-run too), 4 not root,
5 unsafe pool without --force.`,
    )
    .action(async (o: { pool?: number | 'auto'; force?: boolean; dryRun?: boolean; kernel?: string }) =>
      finish(
        await action({
          pool: o.pool,
          force: o.force === true,
          dryRun: o.dryRun === true,
          ...(o.kernel ? { kernel: o.kernel } : {}),
        }),
      ),
    )
}
