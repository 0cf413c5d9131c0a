// Decoding of struct spillway_event records read() from /dev/spillway.
import { EVENT_OFFSETS as OFF, EVENT_SIZE, EVENT_TYPE, levelName, reasonNames } from './uapi.js'
import type { EventTypeName, LevelName } from './uapi.js'

export interface SpillwayEvent {
  seq: number
  type: EventTypeName | `unknown(${number})`
  level: LevelName | `unknown(${number})`
  prevLevel: LevelName | `unknown(${number})`
  reasons: string[]
  /** CLOCK_MONOTONIC time of the sample, milliseconds (ns precision is not kept). */
  monotonicMs: number
  memAvailable: number
  swapFree: number
  swapRate: number
  poolFree: number
  /** OVERFLOW: records lost; RELEASE: bytes released; otherwise 0. */
  count: number
}

function eventTypeName(type: number): SpillwayEvent['type'] {
  for (const [name, value] of Object.entries(EVENT_TYPE)) if (value === type) return name as EventTypeName
  return `unknown(${type})`
}

function u64(buf: Buffer, offset: number): number {
  return Number(buf.readBigUInt64LE(offset))
}

export function decodeEvent(buf: Buffer, offset = 0): SpillwayEvent {
  if (buf.length - offset < EVENT_SIZE) {
    throw new RangeError(`an event record is ${EVENT_SIZE} bytes; got ${buf.length - offset}`)
  }
  const at = (field: number) => offset + field
  return {
    seq: u64(buf, at(OFF.seq)),
    type: eventTypeName(buf.readUInt32LE(at(OFF.type))),
    level: levelName(buf.readUInt32LE(at(OFF.level))),
    prevLevel: levelName(buf.readUInt32LE(at(OFF.prev_level))),
    reasons: reasonNames(buf.readUInt32LE(at(OFF.reason))),
    monotonicMs: Number(buf.readBigUInt64LE(at(OFF.time_ns))) / 1e6,
    memAvailable: u64(buf, at(OFF.mem_available)),
    swapFree: u64(buf, at(OFF.swap_free)),
    swapRate: u64(buf, at(OFF.swap_rate)),
    poolFree: u64(buf, at(OFF.pool_free)),
    count: u64(buf, at(OFF.count)),
  }
}

/** Decodes every whole record of a read(); the kernel never returns a partial one. */
export function decodeEvents(buf: Buffer, length = buf.length): SpillwayEvent[] {
  if (length % EVENT_SIZE !== 0) {
    throw new RangeError(`read returned ${length} bytes, not a multiple of the ${EVENT_SIZE}-byte record`)
  }
  const events: SpillwayEvent[] = []
  for (let offset = 0; offset < length; offset += EVENT_SIZE) events.push(decodeEvent(buf, offset))
  return events
}
