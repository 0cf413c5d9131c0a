// The UAPI of kmod/include/uapi/spillway.h as TypeScript sees it. The header is the source:
// test/cli/uapi.test.ts compiles a C program against it and compares every value here.

export const DEVICE_NAME = 'spillway'
export const DEVICE_PATH = `/dev/${DEVICE_NAME}`
export const SYSFS_DIR = `/sys/class/misc/${DEVICE_NAME}`

export const ABI_MAJOR = 1
export const ABI_MINOR = 1

export const LEVEL = { ok: 0, warn: 1, critical: 2 } as const
export type LevelName = keyof typeof LEVEL

export const REASON = {
  memAvailable: 1 << 0,
  swapFree: 1 << 1,
  swapRate: 1 << 2,
  oom: 1 << 3,
  recovered: 1 << 4,
} as const
export type ReasonName = keyof typeof REASON

export const EVENT_TYPE = { level: 1, overflow: 2, release: 3, lost: 4 } as const
export type EventTypeName = keyof typeof EVENT_TYPE

export const EVENT_SIZE = 72
export const EVENT_QUEUE_LEN = 256
export const LIST_MAX = 65536

/** Byte offsets of struct spillway_event's fields (little-endian, fixed layout). */
export const EVENT_OFFSETS = {
  seq: 0,
  type: 8,
  level: 12,
  prev_level: 16,
  reason: 20,
  time_ns: 24,
  mem_available: 32,
  swap_free: 40,
  swap_rate: 48,
  pool_free: 56,
  count: 64,
} as const

export const STRUCT_SIZES = {
  spillway_event: 72,
  spillway_version: 32,
  spillway_info: 192,
  spillway_alloc: 40,
  spillway_resize: 40,
  spillway_watermarks: 40,
  spillway_buffer_info: 32,
  spillway_list: 32,
} as const

export function levelName(level: number): LevelName | `unknown(${number})` {
  for (const [name, value] of Object.entries(LEVEL)) if (value === level) return name as LevelName
  return `unknown(${level})`
}

export function parseLevelName(text: string): LevelName | undefined {
  const trimmed = text.trim()
  return trimmed in LEVEL ? (trimmed as LevelName) : undefined
}

export function reasonNames(mask: number): string[] {
  const names: string[] = []
  let rest = mask >>> 0
  for (const [name, bit] of Object.entries(REASON)) {
    if (rest & bit) names.push(name)
    rest &= ~bit
  }
  if (rest) names.push(`unknown(0x${rest.toString(16)})`)
  return names
}
