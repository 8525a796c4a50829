// Key and value rules shared by the store's tables: what may be part of a key, and the per-db
// msgpack encoders values are pre-encoded with.

import { assert } from '../assert.js';

/** lmdb-js gives each db its own msgpack encoder; the tables pre-encode values with it. */
export interface Encoder {
  encode(value: unknown): Uint8Array;
}

export function encoderOf(db: object): Encoder {
  const encoder = (db as { encoder?: Encoder }).encoder;
  assert(encoder !== undefined && typeof encoder.encode === 'function', 'lmdb-js db without a value encoder');
  return encoder;
}

/** Longest string (UTF-8 bytes) used as part of a key: two of them fit the 1978-byte LMDB key limit. */
export const keyPartBytesMax = 512;

export function keyPart(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= keyPartBytesMax && Buffer.byteLength(value) <= keyPartBytesMax && !value.includes('\u0000');
}

export function assertKeyPart(value: unknown, what: string): void {
  // A bad key would throw inside a flush and fail the whole batch; catch the caller's bug here.
  assert(keyPart(value), `${what} must be a non-empty string of <= ${keyPartBytesMax} UTF-8 bytes without NUL`);
}
