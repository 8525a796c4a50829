// Columnar shard snapshots: each shard's books as a few raw segments (encoded and decoded by the
// shards, src/shard/snapshotCodec.ts; never decoded here), grouped in generations. The generation
// pointer in meta names the one recovery reads; it is written in the same transaction as, and after,
// every segment of its generation, and the previous generation's segments are removed in that same
// transaction, so a pointer never names a missing segment and a torn generation is never read.
// Keys: [generation, shard, segment index]. Only the newest generation is kept (time travel reads the
// per-portfolio history in snapshots.ts).

import type { Database, Key } from 'lmdb';
import { assert } from '../assert.js';
import type { ShardSnapshotPointer, ShardSnapshotWrite } from './pointer.js';
import type { Batch, QueueTable, WriteQueue } from './writeQueue.js';

export type { ShardSnapshotPointer, ShardSnapshotWrite } from './pointer.js';

export const shardSnapshotPointerKey = 'shardSnapshot';

export class ShardSnapshots implements QueueTable {
  /** The newest pointer, committed or queued: the next generation removes its segments. */
  private pointer: ShardSnapshotPointer | null;

  constructor(
    private readonly queue: WriteQueue,
    private readonly meta: Database<unknown, Key>,
    private readonly segments: Database<Uint8Array, Key>,
  ) {
    this.pointer = (meta.get(shardSnapshotPointerKey) as ShardSnapshotPointer | undefined) ?? null;
  }

  /** Inside the flush's batch, after every other table: segments, then the pointer, then the old generation's removal. */
  write(b: Batch): void {
    for (const g of b.segments) this.segments.put(g.key, g.bin);
    if (b.pointer !== null) this.meta.put(shardSnapshotPointerKey, b.pointer);
    for (const k of b.segmentRemovals) this.segments.remove(k);
  }

  /** Enqueues a generation; resolves when it is durable with its pointer. */
  writeGeneration(snapshot: ShardSnapshotWrite): Promise<void> {
    if (this.queue.failure !== null) return this.queue.rejected();
    const shards = snapshot.shards.length;
    assert(shards > 0 && snapshot.covered.length === shards, 'one covered seq per shard');
    const segments = snapshot.shards[0].length;
    assert(snapshot.shards.every((s) => s.length === segments), 'every shard writes the same segments');
    const previous = this.pointer;
    const pointer: ShardSnapshotPointer = { generation: (previous?.generation ?? 0) + 1, shards, segments, covered: snapshot.covered.slice(), as_of: snapshot.as_of, clean: snapshot.clean };
    const q = this.queue.queued;
    snapshot.shards.forEach((segs, shard) => segs.forEach((bin, i) => q.segments.push({ key: [pointer.generation, shard, i], bin })));
    if (previous !== null) {
      for (let shard = 0; shard < previous.shards; shard++) for (let i = 0; i < previous.segments; i++) q.segmentRemovals.push([previous.generation, shard, i]);
    }
    q.pointer = pointer;
    q.writes++;
    this.pointer = pointer;
    this.queue.scheduleFlush();
    return this.queue.queuedDone();
  }

  /** True once per clean generation: the caller's boot uses its exact seqs; the flag is cleared in the next commit. */
  consumeClean(): boolean {
    if (this.pointer?.clean !== true) return false;
    this.pointer = { ...this.pointer, clean: false };
    this.queue.queued.pointer = this.pointer;
    this.queue.scheduleFlush();
    return true;
  }

  /** The committed pointer, or undefined when no columnar snapshot was ever written. */
  committedPointer(): ShardSnapshotPointer | undefined {
    return (this.meta.get(shardSnapshotPointerKey) as ShardSnapshotPointer | undefined) ?? undefined;
  }

  /** The raw bytes of one shard's segments of a generation (only those of `only`: the others empty), each in its own ArrayBuffer (transferable). */
  read(pointer: ShardSnapshotPointer, shard: number, only?: readonly number[]): Uint8Array[] {
    return readShardSegments(this.segments, pointer, shard, only);
  }
}

/** One shard's segments of a generation from the `shardSnapshots` db (any thread's handle on it); only: those, the others empty. */
export function readShardSegments(segments: Database<Uint8Array, Key>, pointer: ShardSnapshotPointer, shard: number, only?: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < pointer.segments; i++) {
    if (only !== undefined && !only.includes(i)) {
      out.push(new Uint8Array(0));
      continue;
    }
    const bin = segments.getBinary([pointer.generation, shard, i]);
    assert(bin !== undefined, `snapshot generation ${pointer.generation} lacks segment ${i} of shard ${shard}`);
    // Its own ArrayBuffer, so it can be transferred to a worker (a pooled Buffer cannot).
    out.push(bin.byteOffset === 0 && bin.byteLength === bin.buffer.byteLength ? bin : new Uint8Array(bin));
  }
  return out;
}
