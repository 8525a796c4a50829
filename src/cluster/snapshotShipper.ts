// Shipped partition snapshots (docs/CLUSTER.md, "Snapshots"): an owner puts the books of one
// partition into the JetStream object store (clusterSubjects.snapshotStore), one object per partition
// (snapshotName(p)), with the command-stream sequence the books include in the object's metadata.
// The books are taken between two applies of the partition's consumer (PartitionConsumer.exclusive),
// so they are exactly the state after that sequence. The payload is bytes: the columnar snapshot
// codec's segments (src/shard/snapshotCodec.ts, what a shard snapshot is made of) in one frame:
//
//   u8 kind = 0x53 | u8 version = 2 | u16 count | count x u32 length | the segments back to back
//
// little-endian. Version 2's last segment is the carry segment (carry.ts: the partition's scoped
// corporate actions and the node's instrument definitions, which the purged stream below held);
// version 1 frames (shipped before it) have none and still decode. An object is replaced only by one covering a higher sequence, so a late put of an
// older image (a slow node) does not move the shipped state back.

import type { NatsConnection } from '@nats-io/transport-node';
import { Objm, StorageType, type ObjectStore } from '@nats-io/obj';
import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { clusterSubjects as names } from './subjects.js';

export const snapshotFrameKind = 0x53;
export const snapshotFrameVersion = 2;
/** The frame version before the carry segment (still read). */
export const snapshotFrameVersionNoCarry = 1;
/** Segments in one frame (the codec writes four); a frame claiming more is refused. */
export const snapshotSegmentsMax = 16;
/** Metadata key of the command-stream sequence an object's books include. */
export const streamSeqKey = 'mtm-stream-seq';
export const portfoliosKey = 'mtm-portfolios';
/** Metadata key: '1' when the frame's last segment is the recent results, not a books segment. */
export const resultsKey = 'mtm-results';
/** Metadata key: '1' when the frame holds the ids segment (idsSegment.ts), before the results segment. */
export const idsKey = 'mtm-ids';
/** How long one blob read of a shipped object may take (--cluster-snapshot-read-timeout-ms's default). */
export const snapshotReadTimeoutMsDefault = 5_000;

export interface PartitionImage {
  /** The command-stream sequence of the last message of the partition the books include. */
  seq: number;
  /** The columnar snapshot codec's segments of the partition's books. */
  segments: Uint8Array[];
  portfolios: number;
  /**
   * The partition's recent trade and command results (recentResults.ts encodeRecentResults), shipped as
   * the frame's last segment (metadata mtm-results = 1); null: none (an object shipped before them).
   */
  results: Uint8Array | null;
  /** Every trade id and command key of the partition's portfolios (idsSegment.ts encodeIds); null: none. */
  ids: Uint8Array | null;
  /** The carry segment (carry.ts encodeCarry), the frame's last; null: a version 1 frame (none). */
  carry: Uint8Array | null;
}

export function encodeSnapshotFrame(segments: readonly Uint8Array[], version: number = snapshotFrameVersion): Uint8Array {
  let bytes = 4 + 4 * segments.length;
  for (const s of segments) bytes += s.byteLength;
  const out = new Uint8Array(bytes);
  const v = new DataView(out.buffer);
  v.setUint8(0, snapshotFrameKind);
  v.setUint8(1, version);
  v.setUint16(2, segments.length, true);
  let at = 4 + 4 * segments.length;
  segments.forEach((s, i) => {
    v.setUint32(4 + 4 * i, s.byteLength, true);
    out.set(s, at);
    at += s.byteLength;
  });
  return out;
}

export function decodeSnapshotFrame(bytes: Uint8Array): Result<Uint8Array[]> {
  const bad = (rule: string): Result<never> => fail(ErrorCode.invalid_field, `snapshot object: ${rule}`, 'snapshot');
  if (bytes.byteLength < 4) return bad(`a frame holds at least 4 bytes, got ${bytes.byteLength}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint8(1);
  if (v.getUint8(0) !== snapshotFrameKind || (version !== snapshotFrameVersion && version !== snapshotFrameVersionNoCarry)) return bad(`kind 0x53 version 1 expected (or 2), got 0x${v.getUint8(0).toString(16)} version ${v.getUint8(1)}`);
  const count = v.getUint16(2, true);
  if (count > snapshotSegmentsMax || bytes.byteLength < 4 + 4 * count) return bad(`segment count must be <= ${snapshotSegmentsMax} and fit the frame, got ${count}`);
  const out: Uint8Array[] = [];
  let at = 4 + 4 * count;
  for (let i = 0; i < count; i++) {
    const length = v.getUint32(4 + 4 * i, true);
    if (at + length > bytes.byteLength) return bad(`segment ${i} (${length} bytes) runs past the frame's end`);
    out.push(bytes.subarray(at, at + length));
    at += length;
  }
  if (at !== bytes.byteLength) return bad(`${bytes.byteLength - at} bytes after the last segment`);
  return ok(out);
}

export class SnapshotShipper {
  /** Bytes shipped and objects put (cumulative), and puts skipped because the store already had a newer image. */
  readonly counts = { shipped: 0, bytes: 0, stale: 0, readTimeouts: 0 };

  private constructor(private readonly store: ObjectStore) {}

  /** Opens the snapshot object store, created by the first node with the cluster's replicas. */
  static async open(nc: NatsConnection, replicas: number): Promise<SnapshotShipper> {
    const store = await new Objm(nc).create(names.snapshotStore, { replicas, storage: StorageType.File });
    return new SnapshotShipper(store);
  }

  /** The sequence the partition's shipped object includes (0: none). */
  async shippedSeq(partition: number): Promise<number> {
    const info = await this.store.info(names.snapshotName(partition));
    if (info === null || info.deleted) return 0;
    const seq = Number(info.metadata?.[streamSeqKey]);
    return Number.isSafeInteger(seq) && seq > 0 ? seq : 0;
  }

  /** Puts the image unless the store holds one at the same or a higher sequence (answered false then). */
  async put(partition: number, image: PartitionImage): Promise<boolean> {
    if ((await this.shippedSeq(partition)) >= image.seq) {
      this.counts.stale++;
      return false;
    }
    const segments = [...image.segments];
    if (image.ids !== null) segments.push(image.ids);
    if (image.results !== null) segments.push(image.results);
    if (image.carry !== null) segments.push(image.carry);
    const bytes = encodeSnapshotFrame(segments, image.carry === null ? snapshotFrameVersionNoCarry : snapshotFrameVersion);
    const metadata: Record<string, string> = { [streamSeqKey]: String(image.seq), [portfoliosKey]: String(image.portfolios) };
    if (image.results !== null) metadata[resultsKey] = '1';
    if (image.ids !== null) metadata[idsKey] = '1';
    await this.store.putBlob({ name: names.snapshotName(partition), metadata }, bytes);
    this.counts.shipped++;
    this.counts.bytes += bytes.byteLength;
    return true;
  }

  /**
   * The partition's latest shipped image (null: none), or the error naming what is wrong with it.
   * Bounded: a blob read that overlaps a put replacing the object can wait without end for chunks the
   * put purged (found in test/cluster.snapshots.test.ts), so the read gives up after readTimeoutMs
   * (a retryable error; the reader's consumer is left to the client). The object's info is read again
   * after the blob: an object replaced meanwhile (another nuid) is a retryable error too, since the
   * bytes may belong to a sequence other than the one read first.
   */
  async latest(partition: number, readTimeoutMs = snapshotReadTimeoutMsDefault): Promise<Result<PartitionImage | null>> {
    const name = names.snapshotName(partition);
    const info = await this.store.info(name);
    if (info === null || info.deleted) return ok(null);
    const seq = Number(info.metadata?.[streamSeqKey]);
    const portfolios = Number(info.metadata?.[portfoliosKey]);
    if (!Number.isSafeInteger(seq) || seq < 1) return fail(ErrorCode.invalid_field, `snapshot object ${info.name}: metadata ${streamSeqKey} must be an integer >= 1, got ${JSON.stringify(info.metadata?.[streamSeqKey])}`, streamSeqKey);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), readTimeoutMs);
    });
    const read = this.store.getBlob(name);
    // The read may still fail after the timeout won: nobody waits for it then.
    read.catch(() => undefined);
    const bytes = await Promise.race([read, timedOut]).finally(() => clearTimeout(timer));
    if (bytes === 'timeout') {
      this.counts.readTimeouts++;
      return fail(ErrorCode.partition_unavailable, `snapshot object ${name}: blob read did not finish within ${readTimeoutMs} ms (a put replacing it may have purged its chunks)`, 'snapshot', true);
    }
    const after = await this.store.info(name);
    if (after === null || after.deleted || after.nuid !== info.nuid) return fail(ErrorCode.partition_unavailable, `snapshot object ${name} was replaced while it was read`, 'snapshot', true);
    if (bytes === null) return ok(null);
    const segments = decodeSnapshotFrame(bytes);
    if (!segments.ok) return segments;
    const withCarry = bytes[1] === snapshotFrameVersion && segments.value.length > 0;
    const rest = withCarry ? segments.value.slice(0, -1) : segments.value;
    const withResults = info.metadata?.[resultsKey] === '1' && rest.length > 0;
    const beforeResults = withResults ? rest.slice(0, -1) : rest;
    const withIds = info.metadata?.[idsKey] === '1' && beforeResults.length > 0;
    const books = withIds ? beforeResults.slice(0, -1) : beforeResults;
    return ok({
      seq,
      segments: books,
      portfolios: Number.isSafeInteger(portfolios) ? portfolios : 0,
      results: withResults ? rest[rest.length - 1] : null,
      ids: withIds ? beforeResults[beforeResults.length - 1] : null,
      carry: withCarry ? segments.value[segments.value.length - 1] : null,
    });
  }
}
