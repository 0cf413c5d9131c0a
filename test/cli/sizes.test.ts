import t from 'tap'
import { GiB, MiB, formatSize, parseSize } from '../../cli/src/lib/sizes.js'
import { POOL_ALIGN, autoPoolSize, checkPoolSize, osReserve, safeFloor } from '../../cli/src/lib/sizing.js'
import { moduleParams, explainLoadFailure } from '../../cli/src/lib/module-params.js'

t.test('parseSize', async (t) => {
  const cases: [string, number][] = [
    ['4096', 4096],
    ['8G', 8 * GiB],
    ['8g', 8 * GiB],
    ['512MiB', 512 * MiB],
    ['512M', 512 * MiB],
    ['1.5GiB', 1.5 * GiB],
    ['2 GB', 2 * GiB],
    ['64k', 64 * 1024],
    ['1T', 1024 * GiB],
    ['100B', 100],
    [' 3M ', 3 * MiB],
  ]
  for (const [text, bytes] of cases) t.equal(parseSize(text), bytes, text)
  for (const bad of ['', 'G', '8X', '-1G', '8 G B', 'iB', '5iB', '1e3', '0x10', '8G8']) {
    t.throws(() => parseSize(bad), { name: 'SizeError' }, `"${bad}" is refused`)
  }
  t.throws(() => parseSize('99999999T'), /too large/)
  try {
    parseSize('8X')
  } catch (error) {
    t.match((error as Error).message, /"8X" is not a size; .*8G, 512MiB/, 'the message shows examples')
  }
})

t.test('parseSize rules: negative, limits, the unit of a bare number', async (t) => {
  t.throws(() => parseSize('-5G'), { name: 'SizeError', message: '"-5G": a size can not be negative' })
  t.throws(() => parseSize(' - 1'), /can not be negative/)
  const min = { bytes: 1, why: 'zero means nothing' }
  t.throws(() => parseSize('0', { min }), { message: '"0" is too small: zero means nothing' })
  t.equal(parseSize('1', { min }), 1)
  t.equal(parseSize('0'), 0, 'without a rule 0 is a size')
  t.throws(() => parseSize('65G', { max: 64 * GiB }), { message: '"65G" is too large: at most 64 GiB' })
  t.equal(parseSize('768', { bareUnit: MiB }), 768 * MiB, "a bare number in the rule's unit")
  t.equal(parseSize('768B', { bareUnit: MiB }), 768, 'an explicit B is still bytes')
  t.equal(parseSize('2G', { bareUnit: MiB }), 2 * GiB)
})

t.test('formatSize', async (t) => {
  t.equal(formatSize(0), '0 B')
  t.equal(formatSize(1023), '1023 B')
  t.equal(formatSize(1536 * MiB), '1.5 GiB')
  t.equal(formatSize(8 * GiB), '8 GiB')
  t.equal(formatSize(2047), '2 KiB')
  t.equal(formatSize(5 * 1024 * GiB), '5 TiB')
})

t.test('reserve and floor follow the documented formula', async (t) => {
  t.equal(osReserve(1 * GiB), 512 * MiB, '1 GiB VM: half of RAM')
  t.equal(osReserve(8 * GiB), 4 * GiB, '8 GiB: the 4 GiB minimum')
  t.equal(osReserve(64 * GiB), 16 * GiB, '64 GiB: a quarter')
  t.equal(safeFloor(1 * GiB), 256 * MiB, '1 GiB VM: a quarter of RAM')
  t.equal(safeFloor(16 * GiB), 2 * GiB, '16 GiB: the 2 GiB minimum')
  t.equal(safeFloor(64 * GiB), 6.4 * GiB, '64 GiB: a tenth')
})

t.test('autoPoolSize', async (t) => {
  const gpu = autoPoolSize({ ramBytes: 64 * GiB, vramBytes: 16 * GiB })
  t.equal(gpu.poolBytes, 32 * GiB, '64 GiB RAM, 16 GiB VRAM: twice the VRAM')
  t.match(gpu.why, /twice the VRAM/)
  const capped = autoPoolSize({ ramBytes: 64 * GiB, vramBytes: 80 * GiB })
  t.equal(capped.poolBytes, 48 * GiB, 'an 80 GiB card on 64 GiB RAM: RAM minus the reserve')
  t.match(capped.why, /minus the OS reserve/)
  const none = autoPoolSize({ ramBytes: 32 * GiB, vramBytes: 0 })
  t.equal(none.poolBytes, 8 * GiB, 'no GPU: a quarter of RAM')
  const small = autoPoolSize({ ramBytes: 1 * GiB, vramBytes: 0 })
  t.equal(small.poolBytes, 256 * MiB, '1 GiB VM without a GPU: 256 MiB')
  const odd = autoPoolSize({ ramBytes: 25276514304, vramBytes: 0 })
  t.equal(odd.poolBytes % (256 * MiB), 0, 'rounded down to 256 MiB')
  t.ok(odd.poolBytes <= 25276514304 / 4)
})

t.test('checkPoolSize', async (t) => {
  t.same(checkPoolSize(8 * GiB, 64 * GiB), { ok: true, alignedBytes: 8 * GiB })
  t.equal(checkPoolSize(1, 64 * GiB).alignedBytes, POOL_ALIGN, 'rounded up to 2 MiB')
  const bad = checkPoolSize(60 * GiB, 64 * GiB)
  t.equal(bad.ok, false)
  t.match(bad.problem, /leaves 4 GiB of 64 GiB RAM .* below the safe floor of 6.4 GiB/)
  t.equal(checkPoolSize(800 * MiB, 1 * GiB).ok, false, 'a 1 GiB VM keeps 256 MiB')
  t.equal(checkPoolSize(768 * MiB, 1 * GiB).ok, true, 'exactly the floor is allowed')
})

t.test('module parameters are in MiB, rounded up', async (t) => {
  t.same(moduleParams({}), [])
  t.same(
    moduleParams({
      poolBytes: 512 * MiB,
      floorBytes: 1,
      warnBytes: 2 * GiB,
      criticalBytes: GiB,
      userLimitBytes: 3 * MiB,
      watchdogMs: 100,
      testIoctls: true,
    }),
    [
      'pool_mb=512',
      'pool_floor_mb=1',
      'user_limit_mb=3',
      'watermark_warn_mb=2048',
      'watermark_critical_mb=1024',
      'watchdog_ms=100',
      'test_ioctls=1',
    ],
  )
})

t.test('load failures are explained', async (t) => {
  t.match(explainLoadFailure('insmod: ERROR: could not insert module spillway.ko: Key was rejected by service'), {
    message: /not signed/,
    hint: /mokutil --import/,
  })
  t.match(explainLoadFailure('insmod: ERROR: could not insert module x: Invalid module format'), { message: /another kernel/ })
  t.match(explainLoadFailure('insmod: ERROR: could not insert module x: File exists'), { message: /already loaded/ })
  t.match(explainLoadFailure('insmod: ERROR: could not insert module x: Cannot allocate memory'), { hint: /smaller pool/ })
  t.equal(explainLoadFailure('something else'), undefined)
})
