// The guest side of `spillway vm`: a shell script run as root inside the throwaway VM.

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

export interface VmScriptOptions {
  spillway: string[]
  modulePath: string
  poolMb: number
  memMb: number
  demo: boolean
  command: string[]
}

/**
 * Loads the module, shows status, then runs the user's command, or with demo: starts watch and an
 * --oom-safe job, drives memory pressure with a hog, and shows the events and what watch did.
 */
export function vmScript(o: VmScriptOptions): string {
  const sw = o.spillway.map(q).join(' ')
  // Watermarks high enough that a hog of 37 % of the VM's memory crosses both (measured with
  // 1024 MiB: about 680 MiB available after a 128 MiB pool), yet leaves the OOM killer idle.
  const warnMb = Math.round(o.memMb * 0.54)
  const criticalMb = Math.round(o.memMb * 0.39)
  const hogMb = Math.round(o.memMb * 0.37)
  const lines = [
    'set -e',
    // So that a command such as `spillway status` works in the guest.
    `spillway() { ${sw} "$@"; }`,
    `${sw} load --module ${q(o.modulePath)} --pool ${o.poolMb}M --warn ${warnMb}M --critical ${criticalMb}M --watchdog-ms 100 --force`,
    `${sw} status`,
  ]
  if (o.demo) {
    lines.push(
      '[ -f /sys/fs/cgroup/cgroup.controllers ] || mount -t cgroup2 none /sys/fs/cgroup',
      'echo "== starting spillway watch (one line per event below) =="',
      `${sw} watch --no-psi > /tmp/watch.log 2>&1 &`,
      'watch_pid=$!',
      'sleep 2',
      'echo "== an --oom-safe job that counts to 8, one step a second =="',
      `${sw} run --oom-safe -- sh -c 'for i in 1 2 3 4 5 6 7 8; do echo "job: step $i"; sleep 1; done' &`,
      'job=$!',
      'sleep 2',
      `echo "== a memory hog takes ${hogMb} MiB for 4 s =="`,
      `node -e 'const a=[];for(let i=0;i<${hogMb};i++)a.push(Buffer.alloc(1<<20,1));setTimeout(()=>{},4000)' || true`,
      'wait $job',
      'sleep 1',
      'kill $watch_pid; wait $watch_pid || true',
      'echo "== what watch logged =="',
      'cat /tmp/watch.log',
    )
  }
  if (o.command.length) lines.push(o.command.map(q).join(' '))
  lines.push(`${sw} unload`)
  return lines.join('\n') + '\n'
}
