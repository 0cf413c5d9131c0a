// The UAPI of kmod/include/uapi/spillway.h with TypeScript names. Every value comes from
// uapi.generated.ts, which scripts/gen-uapi.mjs writes from the header itself; this file only names
// them. test/cli/uapi.test.ts checks that the header has no level, reason or event type unnamed here.
import { HEADER as H, STRUCTS } from './uapi.generated.js'

export { HEADER, STRUCTS } from './uapi.generated.js'

export const DEVICE_NAME = H.SPILLWAY_DEVICE_NAME
export const DEVICE_PATH = `/dev/${DEVICE_NAME}`
/** A buffer's mapping shows in /proc/PID/maps as /dmabuf:<this><id> (ABI 1.2). */
export const DMABUF_NAME_PREFIX = H.SPILLWAY_DMABUF_NAME_PREFIX
export const SYSFS_DIR = `/sys/class/misc/${DEVICE_NAME}`

export const ABI_MAJOR = H.SPILLWAY_ABI_MAJOR
export const ABI_MINOR = H.SPILLWAY_ABI_MINOR

/** The header numbers the levels "in increasing order of danger": the value is also the rank. */
export const LEVEL = { ok: H.SPILLWAY_LEVEL_OK, warn: H.SPILLWAY_LEVEL_WARN, critical: H.SPILLWAY_LEVEL_CRITICAL } as const
export type LevelName = keyof typeof LEVEL

/** The level names, least dangerous first. */
export const LEVEL_NAMES: readonly LevelName[] = (Object.keys(LEVEL) as LevelName[]).sort((a, b) => LEVEL[a] - LEVEL[b])

export const REASON = {
  memAvailable: H.SPILLWAY_REASON_MEM_AVAILABLE,
  swapFree: H.SPILLWAY_REASON_SWAP_FREE,
  swapRate: H.SPILLWAY_REASON_SWAP_RATE,
  oom: H.SPILLWAY_REASON_OOM,
  recovered: H.SPILLWAY_REASON_RECOVERED,
} as const
export type ReasonName = keyof typeof REASON

export const EVENT_TYPE = {
  level: H.SPILLWAY_EVENT_LEVEL,
  overflow: H.SPILLWAY_EVENT_OVERFLOW,
  release: H.SPILLWAY_EVENT_RELEASE,
  lost: H.SPILLWAY_EVENT_LOST,
} as const
export type EventTypeName = keyof typeof EVENT_TYPE

export const EVENT_SIZE = H.SPILLWAY_EVENT_SIZE
export const EVENT_QUEUE_LEN = H.SPILLWAY_EVENT_QUEUE_LEN
export const LIST_MAX = H.SPILLWAY_LIST_MAX

type EventField = keyof typeof STRUCTS.spillway_event.fields

/** Byte offsets of struct spillway_event's fields (little-endian, fixed layout). */
export const EVENT_OFFSETS = Object.fromEntries(
  Object.entries(STRUCTS.spillway_event.fields).map(([name, field]) => [name, field.offset]),
) as Record<EventField, number>

export type StructName = keyof typeof STRUCTS

export const STRUCT_SIZES = Object.fromEntries(Object.entries(STRUCTS).map(([name, s]) => [name, s.size])) as Record<
  StructName,
  number
>

export function levelName(level: number): LevelName | `unknown(${number})` {
  for (const [name, value] of Object.entries(LEVEL)) if (value === level) return name as LevelName
  return `unknown(${level})`
}

/** A level's name from its number, for places that must act on one: unknown numbers count as ok. */
export function knownLevel(level: number): LevelName {
  const name = levelName(level)
  return name in LEVEL ? (name as LevelName) : 'ok'
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
