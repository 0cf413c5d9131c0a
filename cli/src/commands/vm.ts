// spillway vm: try the module and the daemon in a throwaway QEMU VM (the test harness's run-vm.mjs).
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { Command, Option } from 'commander'
import { CliError, EXIT } from '../errors.js'
import { progress } from '../io/console.js'
import { vmScript } from '../lib/vm-script.js'
import { GiB, MiB } from '../lib/sizes.js'
import { finish, repoDir, selfCommand, sizeParser } from './common.js'

export const VM_KERNELS = ['6.1', '6.12', '7.2'] as const

export interface VmContext {
  kernel: string
  memMb: number
  demo: boolean
  command: string[]
}

function buildModuleFor(series: string, root: string): string {
  const outdir = path.join(root, 'test/vm/build', `kmod-${series}`)
  progress(`building spillway.ko for ${series} (the first run also downloads the kernel: a few minutes)`)
  const result = spawnSync('sh', [path.join(root, 'test/vm/build-kmod.sh'), series, outdir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  })
  if (result.status !== 0) {
    const tail = (result.stderr ?? '').trim().split('\n').slice(-3).join(' / ')
    throw new CliError(
      `building the module for ${series} failed: ${tail}`,
      'run `sh test/vm/build-kmod.sh ' + series + ' /tmp/kmod` to see the whole log',
      EXIT.failed,
    )
  }
  return path.join(outdir, 'spillway.ko')
}

const memSize = sizeParser({ bareUnit: MiB, min: { bytes: 512 * MiB, why: 'the guest needs at least 512 MiB' }, max: 64 * GiB })

export async function vmAction(ctx: VmContext): Promise<number> {
  const root = repoDir()
  const runVm = path.join(root, 'test/vm/run-vm.mjs')
  if (!fs.existsSync(runVm)) {
    throw new CliError(
      '`spillway vm` needs the test harness (test/vm/run-vm.mjs), which this installation lacks',
      'run it from a spillway git checkout',
      EXIT.failed,
    )
  }
  const ko = buildModuleFor(ctx.kernel, root)
  const script = vmScript({
    spillway: selfCommand(),
    modulePath: ko,
    poolMb: Math.max(64, Math.round(ctx.memMb / 8)),
    memMb: ctx.memMb,
    demo: ctx.demo,
    command: ctx.command,
  })
  progress(`booting Debian ${ctx.kernel} in QEMU with ${ctx.memMb} MiB (TCG: about 10 s to boot)`)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runVm, '--kernel', ctx.kernel, '--mem', String(ctx.memMb), '--', 'sh', '-c', script], {
      cwd: root,
      stdio: 'inherit',
    })
    child.once('error', reject)
    child.once('exit', (code) => resolve(code ?? 1))
  })
}

export function vmCommand(action = vmAction): Command {
  return new Command('vm')
    .description('boot a throwaway QEMU VM with the module loaded, to try the pool and the daemon without touching this kernel')
    .addOption(new Option('--kernel <series>', 'Debian kernel series').choices([...VM_KERNELS]).default('6.1'))
    .option(
      '--mem <size>',
      'guest memory, e.g. 2G (a bare number is MiB, as for qemu -m)',
      (v) => Math.floor(memSize(v) / MiB),
      1024,
    )
    .option('--demo', 'drive memory pressure and show the events and how watch freezes and thaws a job')
    .argument('[command...]', 'a command to run in the VM after loading (after --)')
    .addHelpText(
      'after',
      `
Needs qemu-system-x86 and busybox-static; downloads the Debian kernel into ~/.cache/spillway once.

Examples:
  spillway vm --demo
  spillway vm --kernel 6.12 -- spillway status --json
  spillway vm --mem 2G -- sh -c 'cat /sys/class/misc/spillway/pool_bytes'

Exit codes: the guest command's exit code; 124 the VM timed out, 125 the VM failed; 1 build failed.`,
    )
    .action(async (command: string[], o: { kernel: string; mem: number; demo?: boolean }) =>
      finish(await action({ kernel: o.kernel, memMb: o.mem, demo: o.demo === true, command })),
    )
}
