// The journal in front of LMDB: the acknowledging write of the store (docs/STORE.md "The journal").
//
// Why: lmdb-js 3.5.6 (overlappingSync, its Linux default) reports a transaction committed only after
// its fdatasync, so an ack at LMDB's commit waits for an fsync in both modes (docs/BENCHMARKS.md,
// "Trades, fifth session"). The journal is what the default mode's promise ("durable against a
// process crash") needs and no more: each group of appends (one event-loop turn's, see writeQueue.ts)
// is one record appended with ONE write(2) to a segment file opened O_APPEND; once write(2) returned,
// the bytes are the kernel's (page cache), so a kill -9, an OOM kill or a native crash cannot lose
// them. With --sync one fdatasync covers every group written before it started (group commit: while
// one fdatasync runs, the next groups are written and wait for the next one). LMDB keeps committing
// behind (pipelined, writeQueue.ts) and stays the recovery base: the journal is redo-only. Each LMDB
// commit records the last group it holds (meta 'journalGroup'); a segment is deleted once LMDB's
// flushed state covers its last group.
//
// A record: u32 body bytes, u32 CRC-32 of the body, then the body: f64 group, f64 first seq, f64 last
// seq, u32 events, u32 trade results, u32 extra bytes; each event as u32 bytes + its stored value
// (seqs first..last, in order); each trade result as f64 body number, u16 + portfolio id, u16 + trade
// id (UTF-8), u32 bytes + its stored body; the extra part (meta puts and held ticks, rare) as JSON.
// Values are the bytes LMDB stores (lmdb-js's msgpack, self-contained per value), so a redo puts them
// as they are. Little-endian throughout.
//
// Recovery (readJournal, at open, before anything reads LMDB): every record of a group above LMDB's
// 'journalGroup' is handed back in bounded batches (the store redoes each batch in one transaction).
// A torn last record (short, or its CRC does not match) was never acknowledged: the segment is
// truncated before it and the open's log line says so. A bad record anywhere else, or a gap between
// LMDB and the journal, refuses the open: acknowledged data would be missing.

import { closeSync, fdatasync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { assert } from '../assert.js';

/**
 * What the journal reads of a write-queue batch (writeQueue.ts Batch; declared here so the two files do
 * not import each other): the lists appends fill, and how much of each the journal holds already.
 */
export interface JournalSource {
  events: readonly { seq: number }[];
  eventBins: readonly Uint8Array[];
  trades: readonly { n: number; key: [string, string]; bin: Uint8Array }[];
  meta: readonly [string, unknown][];
  heldTicks: readonly [string, unknown][];
  jEvents: number;
  jTrades: number;
  jMeta: number;
  jHeld: number;
}

export const journalDirName = 'journal';
const segmentSuffix = '.jnl';
const headerBytes = 8;
const bodyFixedBytes = 3 * 8 + 3 * 4;

/** One record as read back for a redo. */
export interface JournalRecord {
  group: number;
  firstSeq: number;
  lastSeq: number;
  /** Stored event values, seqs firstSeq..lastSeq. */
  events: Uint8Array[];
  trades: { n: number; key: [string, string]; bin: Uint8Array }[];
  meta: [string, unknown][];
  /** Held ticks set (a record, heldTicks.ts) or cleared (null), by symbol. */
  held: [string, unknown][];
}

interface Segment {
  file: string;
  firstGroup: number;
  lastGroup: number;
  bytes: number;
}

export interface JournalLimits {
  /** A segment is closed and a new one started once it holds this many bytes. */
  segmentBytesMax: number;
  /** Records handed to one redo transaction at open (bounded memory and transaction size). */
  redoBytesPerBatchMax: number;
}

/** What the open found: the segments left, the last group, and what a torn tail cost. */
export interface JournalScan {
  segments: Segment[];
  lastGroup: number;
  /** Records above LMDB's group, redone. */
  redone: { records: number; events: number; trades: number };
  /** A torn last record, cut off (never acknowledged). */
  truncated: { file: string; offset: number; bytes: number } | null;
}

/** One acknowledgement the journal gives: a group's record durable, or a mark (a barrier). */
export interface JournalAck {
  done: { resolve(): void; reject(error: Error): void };
  /** The group's last seq (0: none) and its events + trade results (0 for a mark). */
  lastSeq: number;
  writes: number;
  events: number;
  /** performance.now() when the group was cut. */
  started: number;
  /** The write-queue batch the group's appends are in (its owner's; the journal never reads it). */
  batch: object | null;
  mark: boolean;
  group: number;
}

export class JournalCorrupt extends Error {
  override name = 'JournalCorrupt';
}

const segmentName = (firstGroup: number): string => String(firstGroup).padStart(16, '0') + segmentSuffix;

/**
 * Reads every segment of `dir` (created if missing) in group order and hands the records of groups
 * above `afterGroup` to `redo`, a batch of at most redoBytesPerBatchMax at a time, in order. Truncates a
 * torn last record. Throws JournalCorrupt when acknowledged data would be lost.
 */
export function readJournal(dir: string, afterGroup: number, redoBytesPerBatchMax: number, redo: (records: JournalRecord[]) => void): JournalScan {
  mkdirSync(dir, { recursive: true });
  const names = readdirSync(dir)
    .filter((n) => n.endsWith(segmentSuffix))
    .sort();
  const scan: JournalScan = { segments: [], lastGroup: afterGroup, redone: { records: 0, events: 0, trades: 0 }, truncated: null };
  let batch: JournalRecord[] = [];
  let batchBytes = 0;
  let expected = -1;
  for (let s = 0; s < names.length; s++) {
    const file = join(dir, names[s]);
    const buf = readFileSync(file);
    const segment: Segment = { file, firstGroup: Number(names[s].slice(0, -segmentSuffix.length)), lastGroup: 0, bytes: 0 };
    segment.lastGroup = segment.firstGroup - 1;
    let off = 0;
    while (off < buf.length) {
      const record = off + headerBytes <= buf.length ? readRecord(buf, off) : null;
      if (record === null) {
        // Torn: the last write of the last segment, cut short (its length runs past the end, or it
        // ends the file, or only zeros follow: a power loss). Anything else is damage.
        if (s !== names.length - 1 || !tornAt(buf, off)) throw new JournalCorrupt(`journal segment '${file}' has a bad record at byte ${off} with data after it: acknowledged trades would be lost; restore the data directory from a backup`);
        truncateSync(file, off);
        scan.truncated = { file, offset: off, bytes: buf.length - off };
        break;
      }
      const { rec, bytes } = record;
      if (expected !== -1 && rec.group !== expected) throw new JournalCorrupt(`journal segment '${file}' jumps from group ${expected - 1} to ${rec.group}`);
      expected = rec.group + 1;
      segment.lastGroup = rec.group;
      scan.lastGroup = Math.max(scan.lastGroup, rec.group);
      off += bytes;
      if (rec.group <= afterGroup) continue;
      if (rec.group !== afterGroup + 1 && scan.redone.records === 0) throw new JournalCorrupt(`the journal's first group after LMDB's last (${afterGroup}) is ${rec.group}: groups in between are missing`);
      batch.push(rec);
      batchBytes += bytes;
      scan.redone.records++;
      scan.redone.events += rec.events.length;
      scan.redone.trades += rec.trades.length;
      if (batchBytes >= redoBytesPerBatchMax) {
        redo(batch);
        batch = [];
        batchBytes = 0;
      }
    }
    segment.bytes = off;
    if (off === 0) rmSync(file, { force: true });
    else scan.segments.push(segment);
  }
  if (batch.length > 0) redo(batch);
  return scan;
}

/** Whether a bad record at off can be a torn last write: it reaches the end of the file, or only zeros follow. */
function tornAt(buf: Buffer, off: number): boolean {
  if (off + headerBytes > buf.length || off + headerBytes + buf.readUInt32LE(off) >= buf.length) return true;
  for (let i = off; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** The record at off, or null when it is short or its CRC does not match (a torn write). */
function readRecord(buf: Buffer, off: number): { rec: JournalRecord; bytes: number } | null {
  const bodyBytes = buf.readUInt32LE(off);
  const end = off + headerBytes + bodyBytes;
  if (bodyBytes < bodyFixedBytes || end > buf.length) return null;
  const body = buf.subarray(off + headerBytes, end);
  if (crc32(body) !== buf.readUInt32LE(off + 4)) return null;
  let p = 0;
  const group = body.readDoubleLE(p);
  const firstSeq = body.readDoubleLE(p + 8);
  const lastSeq = body.readDoubleLE(p + 16);
  const nEvents = body.readUInt32LE(p + 24);
  const nTrades = body.readUInt32LE(p + 28);
  const extraBytes = body.readUInt32LE(p + 32);
  p += bodyFixedBytes;
  const events: Uint8Array[] = new Array(nEvents);
  for (let i = 0; i < nEvents; i++) {
    const n = body.readUInt32LE(p);
    events[i] = body.subarray(p + 4, p + 4 + n);
    p += 4 + n;
  }
  const trades: JournalRecord['trades'] = new Array(nTrades);
  for (let i = 0; i < nTrades; i++) {
    const n = body.readDoubleLE(p);
    const pl = body.readUInt16LE(p + 8);
    const portfolio = body.toString('utf8', p + 10, p + 10 + pl);
    p += 10 + pl;
    const tl = body.readUInt16LE(p);
    const trade = body.toString('utf8', p + 2, p + 2 + tl);
    p += 2 + tl;
    const bl = body.readUInt32LE(p);
    trades[i] = { n, key: [portfolio, trade], bin: body.subarray(p + 4, p + 4 + bl) };
    p += 4 + bl;
  }
  let meta: JournalRecord['meta'] = [];
  let held: JournalRecord['held'] = [];
  if (extraBytes > 0) {
    const extra = JSON.parse(body.toString('utf8', p, p + extraBytes)) as { m: JournalRecord['meta']; h: JournalRecord['held'] };
    meta = extra.m;
    held = extra.h;
    p += extraBytes;
  }
  if (p !== body.length) return null;
  return { rec: { group, firstSeq, lastSeq, events, trades, meta, held }, bytes: end - off };
}

/**
 * The journal's writer: owns the current segment's descriptor, the segments LMDB does not cover yet,
 * the groups waiting for an fdatasync (--sync) and the byte counts of the lag.
 */
export class Journal {
  private fd = -1;
  private current: Segment | null = null;
  /** Closed segments, oldest first (the ones the open found included): deleted once LMDB covers them. */
  private readonly closed: Segment[] = [];
  /** The last group written. */
  lastGroup: number;
  /** Bytes written since open, and the part of them LMDB has committed (the lag is the difference). */
  bytesWritten = 0;
  private bytesCommitted = 0;
  /** --sync: groups written and waiting for an fdatasync, oldest first. */
  private readonly unsyncedGroups: JournalAck[] = [];
  private syncing = false;
  /** Descriptors of closed segments whose fdatasync is still running (closed after it). */
  private readonly closeAfterSync: number[] = [];
  private failure: Error | null = null;
  /** A reused buffer one record is encoded in (grown to the largest group, never shrunk). */
  private scratch = Buffer.allocUnsafe(64 * 1024);
  syncsTotal = 0;
  recordsTotal = 0;

  constructor(
    private readonly dir: string,
    private readonly sync: boolean,
    private readonly segmentBytesMax: number,
    scan: JournalScan,
    /** A group (or a mark) became durable: acknowledge it (writeQueue.ts). */
    private readonly onDurable: (ack: JournalAck) => void,
    /** An fdatasync failed after its write succeeded (--sync). */
    private readonly onFailed: (err: Error) => void,
  ) {
    this.lastGroup = scan.lastGroup;
    for (const s of scan.segments) this.closed.push(s);
  }

  /** Bytes written that LMDB has not committed yet (back-pressure: journalLagBytesMax). */
  lagBytes(): number {
    return this.bytesWritten - this.bytesCommitted;
  }

  /** Groups written and waiting for their fdatasync (--sync). */
  unsynced(): number {
    return this.unsyncedGroups.length;
  }

  segments(): number {
    return this.closed.length + (this.current === null ? 0 : 1);
  }

  /**
   * Writes what the batch gained since its last record (events, trade results, meta and held ticks
   * from b's journaled marks on) as ONE record with one write(2). Default mode: `ack` is acknowledged
   * (onDurable) before this returns; --sync: after the fdatasync that covers it. Returns the error when
   * the write failed (nothing of it is acknowledged; a partial record is a torn tail the next open cuts off).
   */
  write(b: JournalSource, ack: JournalAck): Error | null {
    if (this.failure !== null) return this.failure;
    const group = this.lastGroup + 1;
    const nEvents = b.events.length - b.jEvents;
    const nTrades = b.trades.length - b.jTrades;
    const firstSeq = nEvents > 0 ? b.events[b.jEvents].seq : 0;
    const lastSeq = nEvents > 0 ? b.events[b.events.length - 1].seq : 0;
    let extra = '';
    if (b.meta.length > b.jMeta || b.heldTicks.length > b.jHeld) extra = JSON.stringify({ m: b.meta.slice(b.jMeta), h: b.heldTicks.slice(b.jHeld) });
    const extraBytes = extra.length === 0 ? 0 : Buffer.byteLength(extra);
    let size = headerBytes + bodyFixedBytes + extraBytes;
    for (let i = b.jEvents; i < b.events.length; i++) size += 4 + b.eventBins[i].length;
    for (let i = b.jTrades; i < b.trades.length; i++) {
      const t = b.trades[i];
      size += 8 + 2 + Buffer.byteLength(t.key[0]) + 2 + Buffer.byteLength(t.key[1]) + 4 + t.bin.length;
    }
    if (this.scratch.length < size) this.scratch = Buffer.allocUnsafe(Math.max(size, this.scratch.length * 2));
    const buf = this.scratch;
    let p = headerBytes;
    buf.writeDoubleLE(group, p);
    buf.writeDoubleLE(firstSeq, p + 8);
    buf.writeDoubleLE(lastSeq, p + 16);
    buf.writeUInt32LE(nEvents, p + 24);
    buf.writeUInt32LE(nTrades, p + 28);
    buf.writeUInt32LE(extraBytes, p + 32);
    p += bodyFixedBytes;
    for (let i = b.jEvents; i < b.events.length; i++) {
      assert(b.events[i].seq === firstSeq + (i - b.jEvents), 'a journal record holds contiguous seqs');
      const bin = b.eventBins[i];
      buf.writeUInt32LE(bin.length, p);
      buf.set(bin, p + 4);
      p += 4 + bin.length;
    }
    for (let i = b.jTrades; i < b.trades.length; i++) {
      const t = b.trades[i];
      buf.writeDoubleLE(t.n, p);
      const pl = buf.write(t.key[0], p + 10, 'utf8');
      buf.writeUInt16LE(pl, p + 8);
      p += 10 + pl;
      const tl = buf.write(t.key[1], p + 2, 'utf8');
      buf.writeUInt16LE(tl, p);
      p += 2 + tl;
      buf.writeUInt32LE(t.bin.length, p);
      buf.set(t.bin, p + 4);
      p += 4 + t.bin.length;
    }
    if (extraBytes > 0) p += buf.write(extra, p, 'utf8');
    assert(p === size, 'journal record size');
    buf.writeUInt32LE(size - headerBytes, 0);
    buf.writeUInt32LE(crc32(buf.subarray(headerBytes, size)), 4);
    try {
      this.segmentFor(group, size);
      let written = 0;
      // One write(2); a short one (a file size limit, a full disk) is retried once for the rest,
      // which then fails with the reason.
      while (written < size) written += writeSync(this.fd, buf, written, size - written);
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      return this.failure;
    }
    const seg = this.current as Segment;
    seg.bytes += size;
    seg.lastGroup = group;
    this.lastGroup = group;
    this.bytesWritten += size;
    this.recordsTotal++;
    ack.group = group;
    ack.lastSeq = lastSeq;
    if (!this.sync) this.onDurable(ack);
    else {
      this.unsyncedGroups.push(ack);
      this.startSync();
    }
    return null;
  }

  /** Acknowledges `ack` once everything written so far is durable (a barrier). */
  mark(ack: JournalAck): void {
    ack.group = this.lastGroup;
    if (this.failure !== null) ack.done.reject(this.failure);
    else if (!this.sync || this.unsyncedGroups.length === 0) this.onDurable(ack);
    else this.unsyncedGroups.push(ack);
  }

  /** The segment the next record goes to: a new one when the current one is full (or none is open). */
  private segmentFor(group: number, size: number): void {
    if (this.current !== null && (this.current.bytes === 0 || this.current.bytes + size <= this.segmentBytesMax)) return;
    if (this.current !== null) {
      const old = this.fd;
      // --sync: the groups of the old segment are covered by its own fdatasync, here, once a segment.
      if (this.sync) fdatasyncSync(old);
      if (this.syncing) this.closeAfterSync.push(old);
      else closeSync(old);
      this.closed.push(this.current);
    }
    const file = join(this.dir, segmentName(group));
    this.fd = openSync(file, 'a');
    this.current = { file, firstGroup: group, lastGroup: group - 1, bytes: 0 };
    // The new file's name must survive a power loss too: its directory entry is synced once.
    if (this.sync) {
      const d = openSync(this.dir, 'r');
      try {
        fsyncSync(d);
      } finally {
        closeSync(d);
      }
    }
  }

  /** Group commit: one fdatasync covers every group written before it starts. */
  private startSync(): void {
    if (this.syncing || this.unsyncedGroups.length === 0 || this.failure !== null) return;
    this.syncing = true;
    const through = this.lastGroup;
    fdatasync(this.fd, (err) => {
      this.syncing = false;
      this.syncsTotal++;
      for (const fd of this.closeAfterSync.splice(0)) closeSync(fd);
      if (err !== null) {
        this.fail(err);
        this.onFailed(err);
        return;
      }
      let n = 0;
      while (n < this.unsyncedGroups.length && this.unsyncedGroups[n].group <= through) n++;
      for (const g of this.unsyncedGroups.splice(0, n)) this.onDurable(g);
      this.startSync();
    });
  }

  /** The store failed: no group waiting for its fdatasync is acknowledged any more. */
  fail(err: Error): void {
    if (this.failure === null) this.failure = err;
    for (const g of this.unsyncedGroups.splice(0)) g.done.reject(err);
  }

  /** LMDB committed every group through `group` (its bytes through `bytes` of bytesWritten). */
  committed(bytes: number): void {
    this.bytesCommitted = Math.max(this.bytesCommitted, bytes);
  }

  /** LMDB's flushed state covers every group through `group`: the segments entirely below it go. */
  covered(group: number): void {
    while (this.closed.length > 0 && this.closed[0].lastGroup <= group) {
      const s = this.closed.shift() as Segment;
      rmSync(s.file, { force: true });
    }
  }

  /**
   * Closes the segment. `removeAll`: LMDB holds and has flushed everything (a clean close), so the next
   * open has nothing to read.
   */
  close(removeAll: boolean): void {
    // An fdatasync still running on it (a failed store does not wait for it) closes it when done.
    if (this.fd >= 0) {
      if (this.syncing) this.closeAfterSync.push(this.fd);
      else closeSync(this.fd);
    }
    this.fd = -1;
    this.failure ??= new Error('journal closed');
    if (!removeAll) return;
    if (this.current !== null) this.closed.push(this.current);
    this.current = null;
    this.covered(this.lastGroup);
  }
}

/** The journal directory of a data directory, and whether it holds any segment (for the open's log line). */
export function journalDir(path: string): string {
  return join(path, journalDirName);
}

export function journalBytesOnDisk(dir: string): number {
  let n = 0;
  try {
    for (const name of readdirSync(dir)) if (name.endsWith(segmentSuffix)) n += statSync(join(dir, name)).size;
  } catch {
    return 0;
  }
  return n;
}
