// The data directory read from another thread of the engine's process: a shard worker reads its own
// columnar snapshot and the log after it at recovery (src/shard/tail.ts), instead of the main thread
// reading, routing and copying every value to it. lmdb-js shares one LMDB environment between the
// threads of a process (opening the path again in a worker attaches to it), and LMDB readers never
// block the writer, so this handle only reads: it is opened read-only, used for one recovery and
// closed. The main thread stays the only writer (store.ts); nothing here writes, ever.

import { open, type Database, type Key, type RootDatabase } from 'lmdb';
import type { StoredEvent } from '../domain/types.js';
import { databasesMax } from './limits.js';
import type { ShardSnapshotPointer } from './pointer.js';
import { readShardSegments, shardSnapshotPointerKey } from './shardSnapshots.js';

/** A stored value as lmdb-js read it: bytes[0, size) of its reused read buffer (eventViewsAfter). */
export interface RawValue {
  bytes: Uint8Array;
  size: number;
}

/**
 * lmdb-js's encoder hook for a db handle that reads values as views: with an encoder that says it
 * needs no stable buffer, lmdb-js hands decode() its own read buffer, uncopied, and the value's size.
 * Writes never go through this handle.
 */
export function rawValueEncoder(): { encode(v: unknown): never; decode(bytes: Uint8Array, size: number): RawValue; needsStableBuffer: false } {
  const view: RawValue = { bytes: new Uint8Array(0), size: 0 };
  return {
    encode: () => {
      throw new Error('the events view handle is read only');
    },
    decode: (bytes, size) => {
      view.bytes = bytes;
      view.size = size;
      return view;
    },
    needsStableBuffer: false,
  };
}

/** What a recovering shard reads; src/shard/tail.ts declares the same shape (it imports nothing from here). */
export interface LogReader {
  /** The log after `afterSeq`, each value ONE reused view of lmdb-js's read buffer, valid until the next read. */
  eventViewsAfter(afterSeq: number): Iterable<{ key: Key; value: RawValue }>;
  /** A value as the store decodes it (the same per-db msgpack encoder). */
  decodeEvent(bytes: Uint8Array): StoredEvent;
  /** The committed generation pointer of the columnar snapshots, or undefined. */
  shardSnapshotPointer(): ShardSnapshotPointer | undefined;
  /** One shard's raw segments of a generation, each in its own ArrayBuffer. */
  shardSnapshotSegments(pointer: ShardSnapshotPointer, shard: number): Uint8Array[];
  close(): void;
}

export function openLogReader(path: string): LogReader {
  // noSubdir: false as the store opens it (a dotted directory name is still a directory).
  const root: RootDatabase = open({ path, noSubdir: false, maxDbs: databasesMax, readOnly: true, cache: false });
  const meta = root.openDB<unknown, Key>('meta', {});
  const events = root.openDB<StoredEvent, Key>('events', {});
  const views = root.openDB<RawValue, Key>('events', { encoder: rawValueEncoder() } as never);
  const segments = root.openDB<Uint8Array, Key>('shardSnapshots', { encoding: 'binary' });
  const decoder = (events as unknown as { decoder: { decode(b: Uint8Array): StoredEvent } }).decoder;
  return {
    eventViewsAfter: (afterSeq) => views.getRange({ start: afterSeq, exclusiveStart: true }),
    decodeEvent: (bytes) => decoder.decode(bytes),
    shardSnapshotPointer: () => (meta.get(shardSnapshotPointerKey) as ShardSnapshotPointer | undefined) ?? undefined,
    shardSnapshotSegments: (pointer, shard) => readShardSegments(segments as Database<Uint8Array, Key>, pointer, shard),
    close: () => void root.close(),
  };
}
