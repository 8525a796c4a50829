// The ids segment of a shipped snapshot (docs/CLUSTER.md, "Take-over and dropping"): every trade id and
// command key the partition's portfolios have a result under, so a new owner answers a resend older
// than the dedup window (and than the recent results the snapshot carries) as a duplicate. Ids only,
// not results: packed, little-endian, each string length-prefixed UTF-8, ids sorted per portfolio:
//
//   u32 portfolios | per portfolio: u16 length, portfolio id | u32 count | count x (u16 length, id)
//
// Bounded by --cluster-snapshot-ids-max per partition (the node stops collecting there and logs it).

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { partitionOf } from './partition.js';

/** Ids a shipped snapshot carries per partition by default (--cluster-snapshot-ids-max). */
export const snapshotIdsMaxDefault = 5_000_000;
/** A trade id or command key is at most this long (the store's key part bound, in UTF-8 bytes). */
const stringBytesMax = 0xffff;

export function encodeIds(byPortfolio: ReadonlyMap<string, readonly string[]>): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let bytes = 4;
  const put = (s: string): void => {
    const b = enc.encode(s);
    parts.push(b);
    bytes += 2 + b.byteLength;
  };
  const counts: number[] = [];
  for (const [portfolio, ids] of byPortfolio) {
    put(portfolio);
    counts.push(ids.length);
    bytes += 4;
    for (const id of [...ids].sort()) put(id);
  }
  const out = new Uint8Array(bytes);
  const v = new DataView(out.buffer);
  v.setUint32(0, byPortfolio.size, true);
  let at = 4;
  let part = 0;
  const write = (): void => {
    const b = parts[part++];
    v.setUint16(at, b.byteLength, true);
    out.set(b, at + 2);
    at += 2 + b.byteLength;
  };
  counts.forEach((count) => {
    write();
    v.setUint32(at, count, true);
    at += 4;
    for (let i = 0; i < count; i++) write();
  });
  return out;
}

/** The ids by portfolio, each portfolio checked to be of the partition; or an error naming the rule. */
export function decodeIds(bytes: Uint8Array, partition: number, partitions: number, idsMax: number): Result<Map<string, string[]>> {
  const bad = (rule: string): Result<never> => fail(ErrorCode.invalid_field, `snapshot ids segment: ${rule}`, 'snapshot');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dec = new TextDecoder('utf-8', { fatal: true });
  let at = 0;
  const need = (n: number): boolean => at + n <= bytes.byteLength;
  const str = (): string | null => {
    if (!need(2)) return null;
    const n = v.getUint16(at, true);
    if (n > stringBytesMax || !need(2 + n)) return null;
    try {
      const s = dec.decode(bytes.subarray(at + 2, at + 2 + n));
      at += 2 + n;
      return s;
    } catch {
      return null;
    }
  };
  if (!need(4)) return bad('shorter than its 4-byte header');
  const portfolios = v.getUint32(0, true);
  at = 4;
  const out = new Map<string, string[]>();
  let total = 0;
  for (let p = 0; p < portfolios; p++) {
    const id = str();
    if (id === null || !need(4)) return bad(`portfolio ${p} runs past the segment's end or is not UTF-8`);
    if (partitionOf(id, partitions) !== partition) return bad(`portfolio ${JSON.stringify(id)} is not of partition ${partition}`);
    const count = v.getUint32(at, true);
    at += 4;
    total += count;
    if (total > idsMax) return bad(`more than ${idsMax} ids (--cluster-snapshot-ids-max)`);
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const s = str();
      if (s === null || s.length === 0) return bad(`id ${i} of ${JSON.stringify(id)} runs past the segment's end, is empty or is not UTF-8`);
      ids.push(s);
    }
    out.set(id, ids);
  }
  if (at !== bytes.byteLength) return bad(`${bytes.byteLength - at} bytes after the last id`);
  return ok(out);
}
