// Counts the tick records of a version 4 delta record (positions sent with their price and price_ts
// only, src/protocol/delta.ts): tests use it to show the compact records were exercised, not only
// full ones.
import { DELTA_FULL_BYTES, DELTA_TICK_BYTES, DELTA_TICK_RATE_BYTES, DELTA_VERSION, DeltaHead, POSITION_FLAG_FULL, POSITION_FLAG_RATE } from '../../src/protocol/delta.js';

export function tickRecordsOf(bytes: Uint8Array): number {
  if (bytes[DeltaHead.version] !== DELTA_VERSION) return 0;
  const count = bytes[DeltaHead.positionCount] | (bytes[DeltaHead.positionCount + 1] << 8);
  let o = DeltaHead.id + bytes[DeltaHead.idLength];
  let ticks = 0;
  for (let i = 0; i < count; i++) {
    o += 1 + bytes[o];
    const flags = bytes[o];
    if ((flags & POSITION_FLAG_FULL) !== 0) o += DELTA_FULL_BYTES;
    else {
      ticks++;
      o += (flags & POSITION_FLAG_RATE) !== 0 ? DELTA_TICK_RATE_BYTES : DELTA_TICK_BYTES;
    }
  }
  return ticks;
}
