// Proves shipped partition snapshots (src/cluster/snapshotShipper.ts, ClusterNode.shipSnapshot) with a
// real nats-server -js, a real engine (two shard workers, LMDB) and a real ClusterNode in process:
// - an owner ships one object per partition to the mtm_snapshots object store; its metadata names the
//   command-stream sequence it covers, which equals the partition's stream cursor and the stream's
//   last message on that partition's subject; its books are exactly the partition's portfolios, and
//   their cash and positions equal the exact oracle (test/oracle/) replaying the acknowledged trades;
// - shipping again with nothing applied since puts nothing (the store already covers that sequence);
// - a clean stop ships a last snapshot of every partition whose cursor moved (release before drop);
// - on --cluster-snapshot-ship-interval-ms an owner ships what it applied without being asked, and a
//   put of an image older than the stored one is refused (the shipped state never moves back);
// - a frame that is not a snapshot frame is refused with an error naming the rule.
// Skipped, loudly, only when nats-server is not installed (CI installs it).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { ClusterNode } from '../src/cluster/node.js';
import { partitionOf } from '../src/cluster/partition.js';
import { clusterSubjects as names } from '../src/cluster/subjects.js';
import { decodeSnapshotFrame, encodeSnapshotFrame, SnapshotShipper, streamSeqKey } from '../src/cluster/snapshotShipper.js';
import { decodeSnapshot, type RestoredBook } from '../src/shard/snapshotCodec.js';
import type { TradeResult } from '../src/domain/types.js';
import { Ledger } from './oracle/ledger.js';
import { expectClose } from './oracle/compare.js';
import { NatsHarness, natsServerInstalled, waitUntil, warnNatsMissing, type NatsServer } from './support/nats.js';

warnNatsMissing('test/cluster.snapshots.test.ts');

const partitions = 4;
const harness = new NatsHarness('cluster-snapshots');
const root = mkdtempSync(join(tmpdir(), 'mtm-cluster-snapshots-'));
let nats: NatsServer;
let raw: NatsConnection;
const engines: MtmEngine[] = [];
const nodes: ClusterNode[] = [];

beforeAll(async () => {
  if (!natsServerInstalled) return;
  nats = await harness.startServer();
  raw = await connect({ servers: nats.url });
}, 30_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
  await Promise.all(engines.map((e) => e.close().catch(() => undefined)));
  await raw?.close().catch(() => undefined);
  await harness.cleanup();
  rmSync(root, { recursive: true, force: true });
}, 60_000);

/** Deterministic trades: seed 29, a small linear congruential generator. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    return x / 2 ** 32;
  };
}

async function shipped(partition: number): Promise<{ seq: number; books: RestoredBook[] }> {
  const store = await new Objm(raw).open(names.snapshotStore);
  const info = await store.info(names.snapshotName(partition));
  expect(info).not.toBeNull();
  const bytes = await store.getBlob(names.snapshotName(partition));
  expect(bytes).not.toBeNull();
  const segments = decodeSnapshotFrame(bytes!);
  if (!segments.ok) throw new Error(segments.error.message);
  const books: RestoredBook[] = [];
  decodeSnapshot(segments.value, () => true, (b) => books.push(b));
  return { seq: Number(info!.metadata?.[streamSeqKey]), books };
}

async function lastStreamSeq(partition: number): Promise<number> {
  const jsm = await jetstreamManager(raw);
  const m = await jsm.streams.getMessage(names.commandStream, { last_by_subj: names.command(partition) });
  return m?.seq ?? 0;
}

function expectBooksEqualOracle(books: RestoredBook[], ledger: Ledger, partition: number): void {
  for (const b of books) {
    expect(partitionOf(b.state.id, partitions)).toBe(partition);
    const want = ledger.portfolio(b.state.id);
    expectClose(b.state.cash, want.cash, `${b.state.id} cash`);
    const open = want.positions.filter((p) => !p.quantity.isZero());
    expect(Object.keys(b.state.positions).filter((s) => b.state.positions[s].units !== 0).sort()).toEqual(open.map((p) => p.symbol).sort());
    for (const p of open) {
      const got = b.state.positions[p.symbol];
      expectClose(got.units / 1e8, p.quantity, `${b.state.id} ${p.symbol} quantity`);
      expectClose(got.avg_cost, p.avg_cost, `${b.state.id} ${p.symbol} avg_cost`);
    }
  }
}

describe.skipIf(!natsServerInstalled)('shipped partition snapshots', () => {
  it('ships each partition at its stream cursor; books equal the oracle; nothing new ships twice; a clean stop ships the last state', async () => {
    const engine = await createEngine({ dataDir: join(root, 'a'), workers: 2, snapshotIntervalMs: 3_600_000 });
    engines.push(engine);
    const log: string[] = [];
    const node = await ClusterNode.start(engine, { nats: nats.url, nodeId: 'snap-a', partitions, heartbeatMs: 200, ownerTimeoutMs: 1_500, snapshotShipIntervalMs: 0, log: (l) => log.push(l) });
    nodes.push(node);
    await waitUntil('every partition owned', () => node.stats().owned === partitions, 15_000);
    const api = node.routed(engine);
    const ledger = new Ledger();
    const ids = Array.from({ length: 8 }, (_, i) => `snap-pf${i}`);
    for (const id of ids) {
      expect(await api.createPortfolio({ id, cash: 100_000 })).toMatchObject({ ok: true });
      ledger.createPortfolio(id, 100_000);
    }
    const next = lcg(29);
    const symbols = ['AAA', 'BBB', 'CCC'];
    for (let i = 0; i < 40; i++) {
      const id = ids[Math.floor(next() * ids.length)];
      const trade = { trade_id: `snap-t${i}`, symbol: symbols[Math.floor(next() * symbols.length)], side: next() < 0.7 ? ('buy' as const) : ('sell' as const), quantity: 1 + Math.floor(next() * 20), price: Math.round((10 + next() * 90) * 100) / 100, fee: 0.25 };
      const r = await api.trade(id, trade);
      expect(r.ok && (r.value as TradeResult).applied).toBe(true);
      ledger.trade(id, trade);
    }

    const used = [...new Set(ids.map((id) => partitionOf(id, partitions)))];
    for (const p of used) {
      const seq = await node.shipSnapshot(p);
      expect(seq).toBe(engine.streamCursor(p));
      expect(seq).toBe(await lastStreamSeq(p));
      const s = await shipped(p);
      expect(s.seq).toBe(seq);
      expect(s.books.map((b) => b.state.id).sort()).toEqual(ids.filter((id) => partitionOf(id, partitions) === p).sort());
      expectBooksEqualOracle(s.books, ledger, p);
      // Nothing applied since: this sequence is shipped already.
      expect(await node.shipSnapshot(p)).toBeNull();
    }
    expect(used.length).toBeGreaterThan(1);
    expect(node.shipper.counts.shipped).toBe(used.length);

    // One more trade, then a clean stop: the release ships it before dropping the partition.
    const last = { trade_id: 'snap-last', symbol: 'AAA', side: 'buy' as const, quantity: 3, price: 42.5, fee: 0 };
    expect(await api.trade(ids[0], last)).toMatchObject({ ok: true });
    ledger.trade(ids[0], last);
    const p0 = partitionOf(ids[0], partitions);
    const before = (await shipped(p0)).seq;
    await node.stop();
    const after = await shipped(p0);
    expect(after.seq).toBe(await lastStreamSeq(p0));
    expect(after.seq).toBeGreaterThan(before);
    expectBooksEqualOracle(after.books, ledger, p0);
  }, 60_000);

  it('ships on the schedule without being asked; an older image never replaces a newer one', async () => {
    const engine = await createEngine({ dataDir: join(root, 'b'), workers: 1, snapshotIntervalMs: 3_600_000 });
    engines.push(engine);
    const node = await ClusterNode.start(engine, { nats: nats.url, nodeId: 'snap-b', partitions, heartbeatMs: 200, ownerTimeoutMs: 1_500, snapshotShipIntervalMs: 200, log: () => undefined });
    nodes.push(node);
    await waitUntil('every partition owned', () => node.stats().owned === partitions, 15_000);
    const api = node.routed(engine);
    const id = 'snap-timer-1';
    const p = partitionOf(id, partitions);
    expect(await api.createPortfolio({ id, cash: 5_000 })).toMatchObject({ ok: true });
    const trade = { trade_id: 'snap-timer-t1', symbol: 'DDD', side: 'buy' as const, quantity: 7, price: 12.34, fee: 1 };
    expect(await api.trade(id, trade)).toMatchObject({ ok: true });
    const ledger = new Ledger();
    ledger.createPortfolio(id, 5_000);
    ledger.trade(id, trade);
    const want = await lastStreamSeq(p);
    // The probe reads the object's info only: a blob read while a put replaces the object can wait
    // for chunks the put purged (the object store client's reader); once the sequence is there nothing
    // moves the cursor, so nothing is put again and the blob read below is safe.
    const store = await new Objm(raw).open(names.snapshotStore);
    await waitUntil('the schedule shipped the last trade', async () => Number((await store.info(names.snapshotName(p)))?.metadata?.[streamSeqKey]) === want, 10_000, 50);
    const s = await shipped(p);
    expect(s.books.map((b) => b.state.id)).toContain(id);
    expectBooksEqualOracle(s.books.filter((b) => b.state.id === id), ledger, p);

    const other = await SnapshotShipper.open(raw, 1);
    expect(await other.put(p, { seq: want - 1, segments: [], portfolios: 0 })).toBe(false);
    expect(other.counts.stale).toBe(1);
    expect((await shipped(p)).seq).toBe(want);
    await node.stop();
  }, 60_000);

  it('refuses a frame that is not a snapshot frame, naming the rule', () => {
    const good = encodeSnapshotFrame([new Uint8Array([1, 2, 3]), new Uint8Array(0)]);
    const back = decodeSnapshotFrame(good);
    expect(back.ok && back.value.map((s) => [...s])).toEqual([[1, 2, 3], []]);
    const wrongKind = decodeSnapshotFrame(new Uint8Array([0x11, 1, 0, 0]));
    expect(wrongKind.ok ? '' : wrongKind.error.message).toMatch(/kind 0x53 version 1 expected/);
    const short = good.slice(0, good.length - 1);
    const cut = decodeSnapshotFrame(short);
    expect(cut.ok ? '' : cut.error.message).toMatch(/runs past the frame's end/);
    const trailing = decodeSnapshotFrame(new Uint8Array([...good, 9]));
    expect(trailing.ok ? '' : trailing.error.message).toMatch(/1 bytes after the last segment/);
  });
});
