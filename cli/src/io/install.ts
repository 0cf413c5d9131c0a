// Facts for the install plan, and performing its steps.
import fs from 'node:fs'
import path from 'node:path'
import { CliError, EXIT } from '../errors.js'
import { DEBIAN_PACKAGE, dkmsSourceDir, PATHS } from '../lib/install-plan.js'
import type { InitramfsTool, InstallFacts, Step } from '../lib/install-plan.js'
import { progress } from './console.js'
import { exec, which } from './exec.js'
import { readHeadersFacts } from './kernel-headers.js'
import { kernelRelease, readText, systemdRunning } from './system.js'

function parseDkmsVersion(conf: string | undefined, file: string): string {
  const match = conf === undefined ? null : /^PACKAGE_VERSION="?([^"\s]+)"?/m.exec(conf)
  if (!match?.[1]) throw new CliError(`${file} has no PACKAGE_VERSION`, 'fix dkms.conf', EXIT.failed)
  return match[1]
}

/**
 * Whether spillway runs from the Debian package: /usr/lib/spillway has no dkms.conf or kmod/, and the
 * package put the module sources at /usr/src/spillway-VERSION (VERSION from package.json).
 */
export function packagedSources(repoDir: string): string | undefined {
  if (fs.existsSync(path.join(repoDir, 'dkms.conf'))) return undefined
  const pkg = readText(path.join(repoDir, 'package.json'))
  const version = pkg === undefined ? undefined : (JSON.parse(pkg) as { version?: string }).version
  return version !== undefined && fs.existsSync(`${dkmsSourceDir(version)}/dkms.conf`) ? dkmsSourceDir(version) : undefined
}

/** PACKAGE_VERSION from dkms.conf (the DKMS version must match it): the checkout's, or the package's. */
export function dkmsVersion(repoDir: string): string {
  const packaged = packagedSources(repoDir)
  const file = path.join(packaged ?? repoDir, 'dkms.conf')
  const conf = readText(file)
  if (!conf)
    throw new CliError(
      `${repoDir}/dkms.conf is missing`,
      'install from a complete spillway checkout or the Debian package',
      EXIT.failed,
    )
  return parseDkmsVersion(conf, file)
}

function dkmsState(version: string, release: string): InstallFacts['dkmsState'] {
  if (!which('dkms')) return 'absent'
  const out = exec(['dkms', 'status', '-m', 'spillway', '-v', version]).stdout
  const lines = out.split('\n').filter((l) => l.includes(`spillway/${version}`) || l.includes(`spillway, ${version}`))
  if (lines.some((l) => l.includes(release) && /installed/.test(l))) return 'installed'
  if (lines.some((l) => l.includes(release) && /built/.test(l))) return 'built'
  if (lines.length > 0) return 'added'
  return 'absent'
}

/** Every file under dir, relative, sorted (for comparing the DKMS copy with the repo). */
function listTree(dir: string): string[] {
  try {
    return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort()
  } catch {
    return []
  }
}

function sameTree(a: string, b: string): boolean {
  const files = listTree(a).filter((f) => !/\.(o|ko|mod|cmd|mod\.c|order|symvers)$/.test(f) && !f.includes('/.'))
  return files.length > 0 && files.every((f) => readText(path.join(a, f)) === readText(path.join(b, f)))
}

function initramfsTool(): InitramfsTool {
  if (which('update-initramfs') && fs.existsSync('/etc/initramfs-tools')) return 'initramfs-tools'
  if (which('dracut')) return 'dracut'
  return 'none'
}

/** Whether the running kernel's initramfs holds spillway.ko (lists it, about 4 s under TCG). */
function initramfsImage(tool: InitramfsTool, release: string): InstallFacts['initramfsImage'] {
  let argv: string[]
  if (tool === 'initramfs-tools') {
    const image = `/boot/initrd.img-${release}`
    if (!fs.existsSync(image)) return 'missing'
    argv = ['lsinitramfs', image]
  } else if (tool === 'dracut') {
    argv = ['lsinitrd', '--kver', release]
  } else return 'unknown'
  if (!which(argv[0] ?? '')) return 'unknown'
  const listing = exec(argv, { timeoutMs: 120_000 })
  if (listing.status !== 0) return tool === 'dracut' ? 'missing' : 'unknown'
  return /\/spillway\.ko(\.[a-z]+)?$/m.test(listing.stdout) ? 'with-module' : 'without-module'
}

function groupExists(name: string): boolean {
  return (readText('/etc/group') ?? '').split('\n').some((line) => line.startsWith(`${name}:`))
}

/** kernel: the release to build and boot for (default: the running one; another for an image built in a chroot). */
export function gatherInstallFacts(repoDir: string, watchCommand: string, poolMb: number | null, kernel?: string): InstallFacts {
  const version = dkmsVersion(repoDir)
  const release = kernel ?? kernelRelease()
  if (kernel !== undefined && !fs.existsSync(`/lib/modules/${kernel}`)) {
    const installed = (() => {
      try {
        return fs.readdirSync('/lib/modules').join(', ')
      } catch {
        return 'none'
      }
    })()
    throw new CliError(
      `--kernel ${kernel}: /lib/modules/${kernel} does not exist (installed: ${installed})`,
      'name an installed kernel release, as in /lib/modules',
      EXIT.usage,
    )
  }
  const src = dkmsSourceDir(version)
  // The Debian package ships the sources in /usr/src, the udev rule and the unit in /usr/lib: install only registers them.
  const packaged = packagedSources(repoDir) !== undefined
  const template = (file: string): string => {
    if (packaged) return ''
    const text = readText(path.join(repoDir, file))
    if (!text)
      throw new CliError(
        `${repoDir}/${file} is missing`,
        'install from a complete spillway checkout or the Debian package',
        EXIT.failed,
      )
    return text
  }
  const udevRule = template('udev/60-spillway.rules')
  const unitTemplate = template('systemd/spillway-watch.service')
  const existing: Record<string, string | undefined> = {}
  for (const file of [...Object.values(PATHS), `${src}/dkms.conf`]) existing[file] = readText(file)
  const systemd = systemdRunning()
  const initramfs = initramfsTool()
  return {
    repoDir,
    version,
    kernelRelease: release,
    watchCommand,
    poolMb,
    packaged,
    groupExists: groupExists('spillway'),
    dkmsState: dkmsState(version, release),
    dkmsSourceCurrent:
      packaged ||
      (readText(`${src}/dkms.conf`) === readText(path.join(repoDir, 'dkms.conf')) &&
        sameTree(path.join(repoDir, 'kmod'), path.join(src, 'kmod'))),
    initramfs,
    initramfsImage: initramfsImage(initramfs, release),
    existing,
    udevRule,
    unitTemplate,
    systemd,
    unitEnabled: systemd && exec(['systemctl', 'is-enabled', '--quiet', 'spillway-watch.service']).status === 0,
    headers: readHeadersFacts(release),
    missingPrograms: Object.keys(DEBIAN_PACKAGE).filter((program) => !which(program)),
  }
}

export function performStep(step: Step): void {
  switch (step.kind) {
    case 'file':
      fs.mkdirSync(path.dirname(step.path), { recursive: true })
      fs.writeFileSync(step.path, step.content, { mode: step.mode })
      fs.chmodSync(step.path, step.mode)
      return
    case 'remove':
      fs.rmSync(step.path, { force: true })
      return
    case 'command': {
      const [program] = step.argv
      if (program && !which(program)) {
        throw new CliError(
          `${program} is not installed, so \`${step.argv.join(' ')}\` can not run`,
          `apt-get install ${DEBIAN_PACKAGE[program] ?? program}, then run the command again`,
          EXIT.failed,
        )
      }
      progress(`running ${step.argv.join(' ')}`)
      const result = exec(step.argv, { timeoutMs: 1_800_000 })
      if (result.status !== 0) {
        const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-4).join(' / ')
        throw new CliError(
          `\`${step.argv.join(' ')}\` failed (exit ${result.status}): ${tail}`,
          'fix the cause above and run the command again: finished steps are skipped',
          EXIT.failed,
        )
      }
    }
  }
}
