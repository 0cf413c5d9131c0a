// What `spillway install` and `uninstall` do, as a list of steps computed from facts about the host.
// Pure: io/install.ts gathers the facts and performs the steps; --dry-run prints them.

export type Step =
  | { kind: 'file'; path: string; content: string; mode: number; why: string; done: boolean }
  | { kind: 'remove'; path: string; why: string; done: boolean }
  | { kind: 'command'; argv: string[]; why: string; done: boolean }

import { missingHeaders } from './kernel-headers.js'
import type { HeadersFacts } from './kernel-headers.js'

export type InitramfsTool = 'initramfs-tools' | 'dracut' | 'none'

export interface InstallFacts {
  repoDir: string
  version: string
  kernelRelease: string
  /** The command the systemd unit runs, e.g. "/usr/bin/node /opt/spillway/cli/bin/spillway.js". */
  watchCommand: string
  /** pool_mb for modprobe.d; null leaves the module's default. */
  poolMb: number | null
  /**
   * Installed from the Debian package: the module sources are at /usr/src/spillway-VERSION and the
   * udev rule and unit in /usr/lib, all owned by dpkg; install registers them, uninstall leaves them.
   */
  packaged: boolean
  groupExists: boolean
  /** `dkms status` states of spillway/VERSION for the running kernel: added, built, installed. */
  dkmsState: 'absent' | 'added' | 'built' | 'installed'
  /** /usr/src/spillway-VERSION holds the same dkms.conf and sources as the repo. */
  dkmsSourceCurrent: boolean
  initramfs: InitramfsTool
  /** What the running kernel's initramfs image holds: read with lsinitramfs (or lsinitrd). */
  initramfsImage: 'missing' | 'with-module' | 'without-module' | 'unknown'
  /** Current contents of the files the plan writes (undefined: missing). */
  existing: Record<string, string | undefined>
  udevRule: string
  unitTemplate: string
  systemd: boolean
  unitEnabled: boolean
  /** The running kernel's headers, which `dkms build` needs. */
  headers: HeadersFacts
  /** Programs of DEBIAN_PACKAGE that are not installed. */
  missingPrograms: string[]
}

/** The Debian package of each program a plan runs, for the error when one is missing. */
export const DEBIAN_PACKAGE: Record<string, string> = {
  dkms: 'dkms',
  udevadm: 'udev',
  'update-initramfs': 'initramfs-tools',
  dracut: 'dracut',
  systemctl: 'systemd',
  groupadd: 'passwd',
  groupdel: 'passwd',
  modprobe: 'kmod',
}

export interface Blocker {
  problem: string
  fix: string
}

/** Why steps of the plan would fail on this host, found before any step runs. */
export function planBlockers(facts: InstallFacts, steps: Step[]): Blocker[] {
  const blockers: Blocker[] = []
  const pending = steps.filter((s): s is Extract<Step, { kind: 'command' }> => s.kind === 'command' && !s.done)
  for (const program of facts.missingPrograms) {
    const step = pending.find((s) => s.argv[0] === program)
    if (step)
      blockers.push({
        problem: `${program} is not installed, so \`${step.argv.join(' ')}\` can not run`,
        fix: `sudo apt-get install ${DEBIAN_PACKAGE[program] ?? program}`,
      })
  }
  if (!facts.headers.present && pending.some((s) => s.argv[0] === 'dkms' && s.argv[1] === 'build'))
    blockers.push(missingHeaders(facts.headers))
  return blockers
}

export const GROUP = 'spillway'
export const PATHS = {
  udevRule: '/etc/udev/rules.d/60-spillway.rules',
  modprobe: '/etc/modprobe.d/spillway.conf',
  initramfsModules: '/etc/initramfs-tools/modules',
  dracutConf: '/etc/dracut.conf.d/spillway.conf',
  unit: '/etc/systemd/system/spillway-watch.service',
  config: '/etc/spillway/config.json',
} as const

export function dkmsSourceDir(version: string): string {
  return `/usr/src/spillway-${version}`
}

export function modprobeOptions(poolMb: number | null): string {
  const lines = ['# Written by `spillway install`; `spillway install --pool SIZE` rewrites it.']
  lines.push(poolMb === null ? '# pool_mb is left at the module default.' : `options spillway pool_mb=${poolMb}`)
  return lines.join('\n') + '\n'
}

/** /etc/initramfs-tools/modules with a "spillway" line added (or removed), other lines kept. */
export function withModuleLine(current: string | undefined, present: boolean): string {
  const lines = (current ?? '').split('\n')
  if (lines.at(-1) === '') lines.pop()
  const kept = lines.filter((line) => line.trim() !== 'spillway')
  if (present) kept.push('spillway')
  return kept.length ? kept.join('\n') + '\n' : ''
}

export function renderUnit(template: string, watchCommand: string, repoDir: string): string {
  return template.replaceAll('@SPILLWAY@', watchCommand).replaceAll('@REPO@', repoDir)
}

function file(facts: InstallFacts, path: string, content: string, why: string, mode = 0o644): Step {
  return { kind: 'file', path, content, mode, why, done: facts.existing[path] === content }
}

export function installPlan(facts: InstallFacts): Step[] {
  const src = dkmsSourceDir(facts.version)
  const module = ['-m', 'spillway', '-v', facts.version]
  const dkmsRank = { absent: 0, added: 1, built: 2, installed: 3 }[facts.dkmsState]
  const steps: Step[] = [
    {
      kind: 'command',
      argv: ['groupadd', '--system', GROUP],
      why: 'the group whose members may use /dev/spillway',
      done: facts.groupExists,
    },
  ]
  if (!facts.packaged) {
    steps.push(
      // A changed source tree must be re-added, so a stale copy is removed from DKMS first.
      {
        kind: 'command',
        argv: ['dkms', 'remove', ...module, '--all'],
        why: 'drop the older build of these sources from DKMS',
        done: facts.dkmsSourceCurrent || dkmsRank === 0,
      },
      {
        kind: 'command',
        argv: ['rm', '-rf', src],
        why: 'drop the older copy of the sources',
        done: facts.dkmsSourceCurrent || facts.existing[`${src}/dkms.conf`] === undefined,
      },
      {
        kind: 'command',
        argv: ['mkdir', '-p', src],
        why: 'DKMS builds from /usr/src/NAME-VERSION',
        done: facts.dkmsSourceCurrent,
      },
      {
        kind: 'command',
        argv: ['cp', '-a', `${facts.repoDir}/dkms.conf`, `${facts.repoDir}/kmod`, `${src}/`],
        why: 'the module sources and dkms.conf',
        done: facts.dkmsSourceCurrent,
      },
    )
  }
  const fresh = !facts.dkmsSourceCurrent
  steps.push(
    {
      kind: 'command',
      argv: ['dkms', 'add', ...module],
      why: 'register the sources (AUTOINSTALL rebuilds them for new kernels)',
      done: !fresh && dkmsRank >= 1,
    },
    {
      kind: 'command',
      argv: ['dkms', 'build', ...module, '-k', facts.kernelRelease],
      why: `build spillway.ko for ${facts.kernelRelease}`,
      done: !fresh && dkmsRank >= 2,
    },
    {
      kind: 'command',
      argv: ['dkms', 'install', ...module, '-k', facts.kernelRelease],
      why: 'install it under /lib/modules and run depmod',
      done: !fresh && dkmsRank >= 3,
    },
  )
  if (!facts.packaged) {
    steps.push(file(facts, PATHS.udevRule, facts.udevRule, '/dev/spillway owned by group spillway, mode 0660'), {
      kind: 'command',
      argv: ['udevadm', 'control', '--reload'],
      why: 'make udev read the rule',
      done: facts.existing[PATHS.udevRule] === facts.udevRule,
    })
  }
  steps.push(file(facts, PATHS.modprobe, modprobeOptions(facts.poolMb), 'the pool size the module reserves when it loads'))
  if (facts.initramfs === 'initramfs-tools') {
    const content = withModuleLine(facts.existing[PATHS.initramfsModules], true)
    steps.push(file(facts, PATHS.initramfsModules, content, 'load spillway from the initramfs, before memory fragments'))
  } else if (facts.initramfs === 'dracut') {
    steps.push(
      file(
        facts,
        PATHS.dracutConf,
        'add_drivers+=" spillway "\ninstall_items+=" /etc/modprobe.d/spillway.conf "\n',
        'load spillway from the initramfs, before memory fragments',
      ),
    )
  }
  // The image is rebuilt when a file it copies changed, or when it lacks the module (a rebuild that
  // failed or was skipped before).
  const bootFilesDone = steps.filter((s) => s.kind === 'file' && s.path !== PATHS.udevRule).every((s) => s.done)
  const imageDone = bootFilesDone && dkmsRank >= 3 && facts.initramfsImage === 'with-module'
  if (facts.initramfs === 'initramfs-tools') {
    steps.push({
      kind: 'command',
      argv: ['update-initramfs', '-u', '-k', facts.kernelRelease],
      why: 'rebuild the initramfs with the module and its options',
      done: imageDone,
    })
  } else if (facts.initramfs === 'dracut') {
    steps.push({
      kind: 'command',
      argv: ['dracut', '-f', '--kver', facts.kernelRelease],
      why: 'rebuild the initramfs with the module and its options',
      done: imageDone,
    })
  }
  if (facts.systemd && !facts.packaged) {
    const unit = renderUnit(facts.unitTemplate, facts.watchCommand, facts.repoDir)
    steps.push(file(facts, PATHS.unit, unit, 'the watch daemon: freezes registered jobs at critical pressure'), {
      kind: 'command',
      argv: ['systemctl', 'daemon-reload'],
      why: 'make systemd read the unit',
      done: facts.existing[PATHS.unit] === unit,
    })
  }
  if (facts.systemd) {
    steps.push({
      kind: 'command',
      argv: ['systemctl', 'enable', 'spillway-watch.service'],
      why: 'start the daemon at boot',
      done: facts.unitEnabled,
    })
  }
  return steps
}

export function uninstallPlan(facts: InstallFacts & { moduleLoaded: boolean; purge: boolean }): Step[] {
  const steps: Step[] = []
  const remove = (path: string, why: string): Step => ({ kind: 'remove', path, why, done: facts.existing[path] === undefined })
  if (facts.systemd) {
    steps.push(
      // stop and disable are two steps: `disable --now` needs a running systemd even to disable.
      // The package's unit stays installed; its being enabled is what install added.
      {
        kind: 'command',
        argv: ['systemctl', 'stop', 'spillway-watch.service'],
        why: 'stop the daemon (it thaws the jobs it froze)',
        done: facts.packaged ? !facts.unitEnabled : facts.existing[PATHS.unit] === undefined,
      },
      {
        kind: 'command',
        argv: ['systemctl', 'disable', 'spillway-watch.service'],
        why: 'do not start it at boot',
        done: !facts.unitEnabled,
      },
      remove(PATHS.unit, 'the unit file'),
      {
        kind: 'command',
        argv: ['systemctl', 'daemon-reload'],
        why: 'forget the unit',
        done: facts.existing[PATHS.unit] === undefined,
      },
    )
  }
  if (facts.moduleLoaded) {
    steps.push({
      kind: 'command',
      argv: ['modprobe', '-r', 'spillway'],
      why: 'unload the module (refused while buffers are in use)',
      done: false,
    })
  }
  const imageClean = facts.initramfsImage === 'missing' || facts.initramfsImage === 'without-module'
  steps.push({
    kind: 'command',
    argv: ['dkms', 'remove', '-m', 'spillway', '-v', facts.version, '--all'],
    why: 'remove every DKMS build',
    done: facts.dkmsState === 'absent',
  })
  if (!facts.packaged) {
    steps.push({
      kind: 'command',
      argv: ['rm', '-rf', dkmsSourceDir(facts.version)],
      why: 'the DKMS copy of the sources',
      done: facts.existing[`${dkmsSourceDir(facts.version)}/dkms.conf`] === undefined,
    })
  }
  steps.push(remove(PATHS.udevRule, 'the udev rule'), remove(PATHS.modprobe, 'the module options'))
  if (facts.initramfs === 'initramfs-tools') {
    const current = facts.existing[PATHS.initramfsModules]
    const content = withModuleLine(current, false)
    steps.push({
      kind: 'file',
      path: PATHS.initramfsModules,
      content,
      mode: 0o644,
      why: 'stop loading spillway from the initramfs',
      done: current === undefined || current === content,
    })
    steps.push({
      kind: 'command',
      argv: ['update-initramfs', '-u', '-k', facts.kernelRelease],
      why: 'rebuild the initramfs without the module',
      done: imageClean,
    })
  } else if (facts.initramfs === 'dracut') {
    steps.push(remove(PATHS.dracutConf, 'stop loading spillway from the initramfs'))
    steps.push({
      kind: 'command',
      argv: ['dracut', '-f', '--kver', facts.kernelRelease],
      why: 'rebuild the initramfs without the module',
      done: imageClean,
    })
  }
  if (facts.purge) {
    steps.push(remove(PATHS.config, 'the watch configuration'))
    // The package's group goes with `apt purge spillway` (its udev rule names the group).
    if (!facts.packaged)
      steps.push({ kind: 'command', argv: ['groupdel', GROUP], why: 'the spillway group', done: !facts.groupExists })
  }
  return steps
}

/** How --dry-run and the log show a step. */
export function describeStep(step: Step): string {
  const state = step.done ? ' (already done)' : ''
  switch (step.kind) {
    case 'file':
      return (
        `write ${step.path} (mode ${step.mode.toString(8)}): ${step.why}${state}\n` +
        step.content
          .split('\n')
          .filter((l, i, all) => i < all.length - 1 || l !== '')
          .map((l) => `    | ${l}`)
          .join('\n')
      )
    case 'remove':
      return `remove ${step.path}: ${step.why}${state}`
    case 'command':
      return `run ${step.argv.join(' ')}: ${step.why}${state}`
  }
}
