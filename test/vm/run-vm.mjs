#!/usr/bin/env node
// Boots a cached Debian kernel under QEMU with the host's root (read-only, over 9p, under a tmpfs
// overlay) and runs one command in it as root, in the current directory.
//
//   node test/vm/run-vm.mjs --kernel SERIES [--mem MB] [--smp N] [--nvme] [--swap MB]
//                           [--timeout S] [--log FILE] -- COMMAND...
//
// The guest console goes to stdout as it comes. The exit status is COMMAND's; a VM that times out,
// panics or never reports the command's status exits 125 (124 on timeout) after printing why and
// the last console lines. Host variables named SPILLWAY_* are passed into the guest.
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const SERIES = ['6.1', '6.12', '7.2']
const VM_FAILURE = 125
const VM_TIMEOUT = 124
const TAIL_LINES = 40

// Modules the init loads, by name; their dependencies come from modules.dep. Built-in ones are
// skipped, so one list serves every kernel.
const BASE_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay']
const DISK_MODULES = { virtio: ['virtio_blk'], nvme: ['nvme'] }

function usage(message) {
  if (message) process.stderr.write(`run-vm: ${message}\n`)
  process.stderr.write(
    'usage: node test/vm/run-vm.mjs --kernel SERIES [--mem MB (1024)] [--smp N (1)] [--nvme]\n' +
      '         [--swap MB] [--timeout S (600)] [--log FILE] -- COMMAND...\n' +
      `SERIES: ${SERIES.join(', ')}\n`,
  )
  process.exit(2)
}

export function parseArgs(argv) {
  const opts = { mem: 1024, smp: 1, nvme: false, swap: 0, timeout: 600, log: null, kernel: null }
  const positiveInt = (flag, value) => {
    if (!/^[1-9][0-9]*$/.test(value ?? '')) usage(`${flag} needs a positive whole number, got '${value ?? ''}'`)
    return Number(value)
  }
  let i = 0
  for (; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--') {
      i++
      break
    }
    switch (a) {
      case '--kernel':
        opts.kernel = argv[++i]
        break
      case '--mem':
        opts.mem = positiveInt(a, argv[++i])
        break
      case '--smp':
        opts.smp = positiveInt(a, argv[++i])
        break
      case '--nvme':
        opts.nvme = true
        break
      case '--swap':
        opts.swap = positiveInt(a, argv[++i])
        break
      case '--timeout':
        opts.timeout = positiveInt(a, argv[++i])
        break
      case '--log':
        opts.log = argv[++i]
        if (!opts.log) usage('--log needs a file name')
        break
      case '-h':
      case '--help':
        usage()
        break
      default:
        usage(`unknown option '${a}' (the command goes after --)`)
    }
  }
  opts.command = argv.slice(i)
  if (!opts.kernel) usage('--kernel is required')
  if (!SERIES.includes(opts.kernel)) usage(`unknown kernel '${opts.kernel}'`)
  if (opts.command.length === 0) usage('no command given after --')
  return opts
}

const cacheDir = () => process.env.SPILLWAY_CACHE || path.join(os.homedir(), '.cache', 'spillway')

function fetchKernel(series) {
  const r = spawnSync('sh', [path.join(here, 'kernels.sh'), 'fetch', series], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  })
  if (r.status !== 0) throw new Error(`kernels.sh fetch ${series} failed (exit ${r.status})`)
  const dir = r.stdout.trim().split('\n').pop()
  return { dir, release: fs.readFileSync(path.join(dir, 'release'), 'utf8').trim() }
}

// modules.dep lines look like "kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz ...".
function readModuleIndex(moddir) {
  const norm = (n) => n.replace(/-/g, '_')
  const nameOf = (p) => norm(path.basename(p).replace(/\.ko(\.xz|\.zst|\.gz)?$/, ''))
  const files = new Map()
  const deps = new Map()
  for (const line of fs.readFileSync(path.join(moddir, 'modules.dep'), 'utf8').split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line)
    if (!m) continue
    files.set(nameOf(m[1]), m[1])
    deps.set(nameOf(m[1]), m[2].split(/\s+/).filter(Boolean).map(nameOf))
  }
  const builtin = new Set(fs.readFileSync(path.join(moddir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map(nameOf))
  const aliases = new Map()
  for (const line of fs.readFileSync(path.join(moddir, 'modules.alias'), 'utf8').split('\n')) {
    const m = /^alias (\S+) (\S+)$/.exec(line)
    if (m) aliases.set(norm(m[1]), [...(aliases.get(norm(m[1])) ?? []), norm(m[2])])
  }
  // softdep "pre:" modules (6.1's crc_t10dif wants a crct10dif provider): optional, generic ones.
  const softdeps = new Map()
  const softFile = path.join(moddir, 'modules.softdep')
  if (fs.existsSync(softFile)) {
    for (const line of fs.readFileSync(softFile, 'utf8').split('\n')) {
      const m = /^softdep (\S+) pre: (.*)$/.exec(line)
      if (!m) continue
      const pre = m[2]
        .split(/\s+/)
        .filter(Boolean)
        .flatMap((n) => {
          if (files.has(norm(n))) return [norm(n)]
          return (aliases.get(norm(n)) ?? []).filter((a) => a.endsWith('_generic') && files.has(a))
        })
      softdeps.set(norm(m[1]), pre)
    }
  }
  return { files, deps, builtin, softdeps, norm }
}

// The modules to insmod for @wanted, dependencies first; built-in ones are left out.
function loadOrder(index, wanted) {
  const order = []
  const visit = (name, required) => {
    name = index.norm(name)
    if (order.includes(name) || index.builtin.has(name)) return
    if (!index.files.has(name)) {
      if (required) throw new Error(`module ${name} is neither built in nor in modules.dep`)
      return
    }
    for (const d of index.softdeps.get(name) ?? []) visit(d, false)
    for (const d of index.deps.get(name)) visit(d, true)
    order.push(name)
  }
  for (const w of wanted) visit(w, true)
  return order
}

const INIT = `#!/bin/busybox sh
# spillway VM init: load the 9p stack, mount the host's root under a tmpfs overlay, run the job.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
arg() { for w in $(cat /proc/cmdline); do case $w in "spillway.$1="*) echo "\${w#*=}" ;; esac; done; }
# The serial port drains slowly under TCG and power-off discards what is still queued, so the init
# waits after its last line: the host stops the VM when it has read the exit line.
stop() { sleep "$1"; poweroff -f; sleep 5; reboot -f; }
fail() { echo "spillway-init: error: $*"; stop 10; }
load() {
	for m in $(cat "/modules/$1.list"); do
		insmod "/modules/$m.ko" || fail "insmod $m failed"
	done
}
load base
disk=$(arg disk)
[ -n "$disk" ] && load "$disk"
mkdir -p /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host ||
	fail "mounting the host's root over 9p failed"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot ||
	fail "mounting the overlay failed"
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
# What udev or systemd adds to devtmpfs on a booted system; bash's <(...) (in dkms) needs /dev/fd.
ln -s /proc/self/fd /newroot/dev/fd
ln -s /proc/self/fd/0 /newroot/dev/stdin
ln -s /proc/self/fd/1 /newroot/dev/stdout
ln -s /proc/self/fd/2 /newroot/dev/stderr
# /tmp stays the overlay's, not a fresh tmpfs: the repository may be a clone under the host's /tmp
# (CI clones anywhere). Writes still land in the tmpfs upper layer, never on the host.
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mount -t debugfs debugfs /newroot/sys/kernel/debug 2>/dev/null
job=$(arg job)
cp "/host$job" /newroot/run/spillway-job.sh || fail "no job script at $job"
swapdev=$(arg swapdev)
if [ -n "$swapdev" ]; then
	i=0
	while [ ! -b "$swapdev" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	mkswap "$swapdev" >/dev/null && swapon "$swapdev" || fail "swap on $swapdev failed"
fi
echo "spillway-init: $(cut -d' ' -f1 /proc/uptime)s: running the command"
chroot /newroot /bin/sh /run/spillway-job.sh
code=$?
echo "SPILLWAY-VM-EXIT $(arg nonce) $code"
stop 60
`

function sha256(...parts) {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest('hex')
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'buffer' })
  if (r.status !== 0) {
    throw new Error(`${what} failed (exit ${r.status}): ${r.stderr?.toString().trim() || r.error?.message}`)
  }
  return r.stdout
}

function decompress(file) {
  if (file.endsWith('.xz')) return run('xz', ['-dc', file], `xz -d ${file}`)
  if (file.endsWith('.zst')) return run('zstd', ['-dcq', file], `zstd -d ${file}`)
  if (file.endsWith('.gz')) return run('gzip', ['-dc', file], `gzip -d ${file}`)
  return fs.readFileSync(file)
}

const BUSYBOX = '/bin/busybox'

// Builds (or finds in the cache) the initramfs for one kernel; keyed by a hash of its contents.
export function initramfsFor(series, kernel) {
  const moddir = path.join(kernel.dir, 'lib', 'modules', kernel.release)
  const index = readModuleIndex(moddir)
  const lists = { base: loadOrder(index, BASE_MODULES) }
  for (const [disk, wanted] of Object.entries(DISK_MODULES)) {
    lists[disk] = loadOrder(index, wanted).filter((m) => !lists.base.includes(m))
  }
  if (!fs.existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing (Debian package busybox-static)`)
  const busybox = fs.readFileSync(BUSYBOX)
  const modules = [...new Set(Object.values(lists).flat())]
  const key = sha256(
    INIT,
    busybox,
    JSON.stringify(lists),
    kernel.release,
    ...modules.map((m) => `${m}:${sha256(fs.readFileSync(path.join(moddir, index.files.get(m))))}`),
  )
  const dir = path.join(cacheDir(), 'initramfs')
  const file = path.join(dir, `${series}-${key.slice(0, 16)}.cpio.gz`)
  if (fs.existsSync(file)) return file
  fs.mkdirSync(dir, { recursive: true })
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-initramfs-'))
  try {
    for (const d of ['bin', 'dev', 'proc', 'sys', 'modules']) fs.mkdirSync(path.join(tmp, d))
    fs.writeFileSync(path.join(tmp, 'bin', 'busybox'), busybox, { mode: 0o755 })
    fs.writeFileSync(path.join(tmp, 'init'), INIT, { mode: 0o755 })
    for (const m of modules)
      fs.writeFileSync(path.join(tmp, 'modules', `${m}.ko`), decompress(path.join(moddir, index.files.get(m))))
    for (const [name, list] of Object.entries(lists))
      fs.writeFileSync(path.join(tmp, 'modules', `${name}.list`), list.join('\n') + '\n')
    const part = `${file}.${process.pid}.tmp`
    const r = spawnSync('sh', ['-c', `find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 > '${part}'`], {
      cwd: tmp,
      stdio: ['ignore', 'inherit', 'pipe'],
    })
    if (r.status !== 0) throw new Error(`making the initramfs failed: ${r.stderr}`)
    fs.renameSync(part, file)
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  return file
}

const shQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`

function jobScript(opts) {
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    TERM: 'dumb',
    LANG: 'C.UTF-8',
    USER: 'root',
    LOGNAME: 'root',
  }
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('SPILLWAY_')) env[k] = v
  env.SPILLWAY_VM = '1'
  env.SPILLWAY_KERNEL = opts.kernel
  const exports = Object.entries(env)
    .map(([k, v]) => `export ${k}=${shQuote(v)}`)
    .join('\n')
  const cwd = shQuote(process.cwd())
  const cdFailed = shQuote(`run-vm: the guest can not enter ${process.cwd()} (is it readable by root over 9p?)`)
  return `${exports}\ncd ${cwd} || { echo ${cdFailed}; exit 126; }\n${opts.command.map(shQuote).join(' ')}\n`
}

// Removes what a serial console adds: carriage returns and terminal escape sequences.
const cleanConsole = (s) => s.replace(/\r/g, '').replace(/\x1b(\[[0-9;?]*[A-Za-z]|[()][A-Z0-9]|[=>cDEHM78])/g, '')

export async function runVm(opts) {
  const t0 = Date.now()
  const kernel = fetchKernel(opts.kernel)
  const initrd = initramfsFor(opts.kernel, kernel)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spillway-vm-'))
  const nonce = randomBytes(6).toString('hex')
  const jobFile = path.join(tmp, 'job.sh')
  fs.writeFileSync(jobFile, jobScript(opts))
  const accel = process.env.SPILLWAY_VM_ACCEL || 'tcg'
  const args = [
    '-accel',
    accel,
    '-m',
    String(opts.mem),
    '-smp',
    String(opts.smp),
    '-nographic',
    '-no-reboot',
    '-net',
    'none',
    '-kernel',
    path.join(kernel.dir, 'vmlinuz'),
    '-initrd',
    initrd,
    '-virtfs',
    'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
  ]
  // watchdog_thresh=60: under TCG on a shared 2-core host a vCPU can go without host CPU for tens
  // of seconds, and the soft-lockup detector (20 s by default) then names whatever ran there (seen
  // once: kcompactd on 6.1, 2026-12-06). A lockup must now last 120 s to be reported; the tests'
  // own timeouts catch hangs.
  const append = [
    'console=ttyS0',
    'loglevel=5',
    'panic=-1',
    'watchdog_thresh=60',
    'rdinit=/init',
    `spillway.job=${jobFile}`,
    `spillway.nonce=${nonce}`,
  ]
  const disk = opts.nvme ? 'nvme' : opts.swap ? 'virtio' : null
  if (disk) {
    const img = path.join(tmp, 'disk.img')
    fs.writeFileSync(img, '')
    fs.truncateSync(img, (opts.swap || 1024) * 1024 * 1024)
    if (disk === 'nvme') {
      args.push('-drive', `file=${img},if=none,id=nvm0,format=raw`, '-device', 'nvme,serial=spillway0,drive=nvm0')
    } else {
      args.push('-drive', `file=${img},if=virtio,format=raw`)
    }
    append.push(`spillway.disk=${disk}`)
    if (opts.swap) append.push(`spillway.swapdev=${disk === 'nvme' ? '/dev/nvme0n1' : '/dev/vda'}`)
  }
  args.push('-append', append.join(' '))

  const log = opts.log ? fs.createWriteStream(opts.log) : null
  const lines = []
  let exitCode = null
  let commandStartMs = null
  let vmStart = null
  let timer = null
  let timedOut = false
  let stopping = false
  const marker = new RegExp(`^SPILLWAY-VM-EXIT ${nonce} (\\d+)$`)
  const slots = Number(process.env.SPILLWAY_VM_SLOTS) || os.availableParallelism()
  const slotDir = path.join(os.tmpdir(), 'spillway-vm-slots')
  fs.mkdirSync(slotDir, { recursive: true })
  // Every run-vm on this machine shares SPILLWAY_VM_SLOTS (default: one per CPU) so that test files
  // running at once do not overload the host: vm-slot.sh takes a free slot lock, then execs qemu,
  // which keeps the lock open until it exits.
  const qemu = spawn('sh', [path.join(here, 'vm-slot.sh'), String(slots), slotDir, 'qemu-system-x86_64', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const emit = (line) => {
    if (opts.echo !== false) process.stdout.write(`${line}\n`)
    log?.write(`${line}\n`)
    lines.push(line)
  }
  const onLine = (line) => {
    if (vmStart === null && /^run-vm-slot \d+$/.test(line)) {
      vmStart = Date.now()
      timer = setTimeout(() => {
        timedOut = true
        qemu.kill('SIGKILL')
      }, opts.timeout * 1000)
      return
    }
    if (stopping && /^qemu-system-x86_64: terminating on signal/.test(line)) return
    emit(line)
    const m = marker.exec(line)
    if (m) {
      // Everything the command printed came before this line: the guest can go.
      exitCode = Number(m[1])
      stopping = true
      qemu.kill('SIGTERM')
    } else if (line.startsWith('spillway-init: error: ')) {
      stopping = true
      qemu.kill('SIGTERM')
    }
    if (commandStartMs === null && line.startsWith('spillway-init:') && line.includes('running the command')) {
      commandStartMs = Date.now() - vmStart
    }
  }
  // The serial port delivers a byte or a few at a time: clean and handle whole lines only, so that
  // escape sequences split across chunks are still recognised.
  const partial = { stdout: '', stderr: '' }
  const reader = (name) => (buf) => {
    const parts = (partial[name] + buf.toString('utf8')).split('\n')
    partial[name] = parts.pop()
    for (const raw of parts) onLine(cleanConsole(raw))
  }
  qemu.stdout.on('data', reader('stdout'))
  qemu.stderr.on('data', reader('stderr'))
  // Interrupted: stop the guest and remove the temp dir before leaving.
  const onSignal = (signal) => {
    qemu.kill('SIGKILL')
    fs.rmSync(tmp, { recursive: true, force: true })
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const qemuStatus = await new Promise((resolve) => {
    qemu.on('error', (err) => resolve(`could not start qemu-system-x86_64: ${err.message}`))
    qemu.on('close', (code, signal) => resolve(signal ? `signal ${signal}` : code))
  })
  clearTimeout(timer)
  process.removeListener('SIGINT', onSignal)
  process.removeListener('SIGTERM', onSignal)
  for (const rest of Object.values(partial)) if (rest) onLine(cleanConsole(rest))
  await new Promise((resolve) => (log ? log.end(resolve) : resolve()))
  fs.rmSync(tmp, { recursive: true, force: true })

  const output = lines.join('\n')
  const end = Date.now()
  const totalMs = end - (vmStart ?? end)
  const waitMs = (vmStart ?? end) - t0
  let failure = null
  if (timedOut) failure = `the VM did not finish within ${opts.timeout} s (--timeout)`
  else if (exitCode === null) {
    const panic = lines.find((l) => /Kernel panic/.test(l))
    const initError = lines.find((l) => l.startsWith('spillway-init: error: '))
    failure = panic
      ? `the guest kernel panicked: ${panic.trim()}`
      : initError
        ? `the guest's init failed: ${initError.slice('spillway-init: error: '.length)}`
        : typeof qemuStatus === 'string' && qemuStatus.startsWith('could not')
          ? qemuStatus
          : `the VM stopped (qemu exit ${qemuStatus}) without reporting the command's exit status`
  }
  return {
    code: failure ? (timedOut ? VM_TIMEOUT : VM_FAILURE) : exitCode,
    failure,
    output,
    lines,
    totalMs,
    commandStartMs,
    waitMs,
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  let result
  try {
    result = await runVm(opts)
  } catch (err) {
    process.stderr.write(`run-vm: ${err.message}\n`)
    process.exit(VM_FAILURE)
  }
  if (result.failure) {
    process.stderr.write(`run-vm: ${opts.kernel}: ${result.failure}. Last ${TAIL_LINES} console lines:\n`)
    process.stderr.write(result.lines.slice(-TAIL_LINES).join('\n') + '\n')
  }
  const boot = result.commandStartMs === null ? '?' : (result.commandStartMs / 1000).toFixed(1)
  const waited = result.waitMs >= 500 ? `, after ${(result.waitMs / 1000).toFixed(1)} s of setup and waiting for a VM slot` : ''
  process.stderr.write(
    `run-vm: ${opts.kernel}: command started at ${boot} s, total ${(result.totalMs / 1000).toFixed(1)} s${waited}, exit ${result.code}\n`,
  )
  process.exit(result.code)
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main()
