// Proves "clients on any node" (src/cluster/updateRelay.ts, src/cluster/rpc.ts, composed by
// src/cluster/edge.ts) with a real nats-server and two real engines, ownership a fixed assignment
// (test/support/fixedOwnership.ts):
// - a subscriber on node B to a portfolio owned by A gets A's snapshot, then A's updates as the very
//   bytes A's shard wrote (equal, byte for byte, to what a local bytes subscriber on A gets), seq
//   strictly increasing; an object subscriber gets the same figures decoded;
// - snapshot, time travel, events and lots asked on B are answered by A, equal to A's own answers;
// - after an ownership change the subscriber gets a resync: the partition moving to B (B's engine takes
//   over), back to A (relayed again), and to a node that is gone (no answer) then back;
// - bad input: garbage on an update subject, a request that is not JSON, names another partition or an
//   unknown verb: clear errors, logged and counted, nothing delivered; an unknown portfolio is refused;
// - /metrics (EngineMetrics.attachCluster) shows those counts, the relayed updates and the partitions.
// Skipped, loudly, only when nats-server is not installed.

import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import type { EngineMessage } from '../src/engine/api.js';
import type { EngineError } from '../src/errors.js';
import { EdgeStations } from '../src/cluster/edge.js';
import { partitionOf } from '../src/cluster/partition.js';
import { clusterSubjects } from '../src/cluster/subjects.js';
import { ClusterCounters } from '../src/cluster/counters.js';
import { EngineMetrics } from '../src/metrics/engineMetrics.js';
import { Assignment } from './support/fixedOwnership.js';
import { NatsHarness, natsServerInstalled, waitUntil, warnNatsMissing } from './support/nats.js';

warnNatsMissing('test/cluster.relay.test.ts');

const partitions = 16;
const harness = new NatsHarness('relay');
const closers: (() => Promise<unknown>)[] = [];
let a: MtmEngine;
let b: MtmEngine;
let edgeA: EdgeStations;
let edgeB: EdgeStations;
let raw: NatsConnection;
let assignment: Assignment;
const logB: string[] = [];
const logA: string[] = [];
const pa = 'pa';
// Two portfolio ids in distinct partitions, both first owned by A.
let px = '';

class Inbox {
  readonly messages: EngineMessage[] = [];
  readonly listener = (m: EngineMessage): void => {
    // Bytes are a view into a message buffer: keep a copy, as a socket send would.
    this.messages.push(m.kind === 'delta' ? { kind: 'delta', delta: Object.assign(Object.create(Object.getPrototypeOf(m.delta)), m.delta, { bytes: m.delta.bytes.slice() }) } : m);
  };
  snapshots(): Extract<EngineMessage, { kind: 'snapshot' }>[] {
    return this.messages.filter((m): m is Extract<EngineMessage, { kind: 'snapshot' }> => m.kind === 'snapshot');
  }
  deltas(): Extract<EngineMessage, { kind: 'delta' }>[] {
    return this.messages.filter((m): m is Extract<EngineMessage, { kind: 'delta' }> => m.kind === 'delta');
  }
  seqs(): number[] {
    return this.messages.map((m) => (m.kind === 'snapshot' ? m.snapshot.seq : m.kind === 'delta' ? m.delta.seq : m.update.seq));
  }
}

/** A snapshot without the fields that move with the clock between two reads (as_of and the mark ages). */
function timeless<T>(r: T): T {
  return JSON.parse(JSON.stringify(r), (key, value) => (key === 'as_of' || key === 'price_age_ms' ? undefined : value));
}

function strictlyIncreasingBetweenResyncs(inbox: Inbox): void {
  let last = -1;
  for (const m of inbox.messages) {
    const seq = m.kind === 'snapshot' ? m.snapshot.seq : m.kind === 'delta' ? m.delta.seq : m.update.seq;
    if (m.kind === 'snapshot' && (m.resync || last === -1)) last = seq;
    else {
      expect(seq).toBeGreaterThan(last);
      last = seq;
    }
  }
}

async function setUp(engine: MtmEngine, id: string): Promise<void> {
  expect(await engine.createPortfolio({ id, cash: 100_000, cost_basis_method: 'fifo' })).toMatchObject({ ok: true });
  expect(await engine.trade(id, { trade_id: `${id}-1`, symbol: 'AAPL', side: 'buy', quantity: 10, price: 100, ts: 1_000 })).toMatchObject({ ok: true });
  expect(await engine.trade(id, { trade_id: `${id}-2`, symbol: 'AAPL', side: 'buy', quantity: 5, price: 110, ts: 2_000 })).toMatchObject({ ok: true });
}

beforeAll(async () => {
  if (!natsServerInstalled) return;
  const server = await harness.startServer();
  for (let i = 0; px === ''; i++) if (partitionOf(`px${i}`, partitions) !== partitionOf(pa, partitions)) px = `px${i}`;
  assignment = new Assignment(partitions, () => 'a');
  a = await createEngine({ workers: 1 });
  closers.push(() => a.close());
  b = await createEngine({ workers: 1 });
  closers.push(() => b.close());
  await setUp(a, pa);
  // px lives on both engines with the same history, so either can serve it when the partition moves.
  await setUp(a, px);
  await setUp(b, px);
  const ncA = await connect({ servers: server.url });
  const ncB = await connect({ servers: server.url });
  raw = await connect({ servers: server.url });
  closers.push(() => ncA.close(), () => ncB.close(), () => raw.close());
  const relay = { watchRenewMs: 100, watchLeaseMs: 1_000 };
  edgeA = new EdgeStations(ncA, a, assignment.view('a'), { log: (l) => logA.push(l), relay, rpc: { requestTimeoutMs: 1_000 } });
  edgeB = new EdgeStations(ncB, b, assignment.view('b'), { log: (l) => logB.push(l), relay, rpc: { requestTimeoutMs: 1_000 } });
  closers.push(() => edgeA.close(), () => edgeB.close());
  edgeA.start();
  edgeB.start();
  await ncA.flush();
  await ncB.flush();
});

afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await harness.cleanup();
});

describe.skipIf(!natsServerInstalled)('clients on any node', () => {
  it("relays the owner's update bytes unchanged, after the owner's snapshot", async () => {
    const remoteBytes = new Inbox();
    const remoteObjects = new Inbox();
    const local = new Inbox();
    const subLocal = a.subscribe(pa, local.listener, { bytes: true });
    const subBytes = edgeB.relay.subscribe(pa, remoteBytes.listener, { bytes: true });
    const subObjects = edgeB.relay.subscribe(pa, remoteObjects.listener);
    expect(subLocal.ok && subBytes.ok && subObjects.ok).toBe(true);
    await waitUntil('both remote snapshots arrived', () => remoteBytes.snapshots().length === 1 && remoteObjects.snapshots().length === 1, 5_000);
    await waitUntil('the local snapshot arrived', () => local.snapshots().length === 1, 5_000);
    expect(remoteBytes.snapshots()[0].resync).toBe(false);
    expect(remoteBytes.snapshots()[0].snapshot.positions.map((p) => [p.symbol, p.quantity])).toEqual([['AAPL', 15]]);

    for (let i = 0; i < 5; i++) {
      expect(a.ingestTick('AAPL', 120 + i, 10_000 + i)).toBeNull();
      await a.drain();
    }
    expect(await a.trade(pa, { trade_id: 'pa-3', symbol: 'AAPL', side: 'sell', quantity: 3, price: 125, ts: 20_000 })).toMatchObject({ ok: true });
    await a.drain();
    await waitUntil('B relayed every delta A delivered locally', () => local.deltas().length > 0 && remoteBytes.deltas().length === local.deltas().length, 5_000);
    expect(remoteBytes.deltas().map((m) => Buffer.from(m.delta.bytes).toString('hex'))).toEqual(local.deltas().map((m) => Buffer.from(m.delta.bytes).toString('hex')));
    strictlyIncreasingBetweenResyncs(remoteBytes);
    await waitUntil('the object subscriber got as many updates', () => remoteObjects.messages.length === remoteBytes.messages.length, 5_000);
    const lastUpdate = remoteObjects.messages.at(-1) as Extract<EngineMessage, { kind: 'update' }>;
    expect(lastUpdate.kind).toBe('update');
    const owner = await a.snapshot(pa);
    expect(owner.ok && lastUpdate.update.positions[0].quantity).toBe(12);
    expect(owner.ok && lastUpdate.update.equity).toBe(owner.ok ? owner.value.equity : NaN);
    expect(edgeA.counters.relay.messagesPublished).toBeGreaterThan(0);
    expect(edgeA.counters.relay.remoteWatches).toBe(1);
    expect(edgeB.counters.relay.relayedPortfolios).toBe(1);
    if (subLocal.ok) subLocal.value();
    if (subBytes.ok) subBytes.value();
    if (subObjects.ok) subObjects.value();
    expect(edgeB.relay.relayedPortfolios()).toEqual([]);
  });

  it('routes snapshot, time travel, events and lots to the owner', async () => {
    const r = edgeB.router;
    const [snap, own] = [await r.snapshot(pa, { lots: true }), await a.snapshot(pa, { lots: true })];
    expect(timeless(snap)).toEqual(timeless(own));
    expect(timeless(await r.snapshotAt(pa, 1_500))).toEqual(timeless(await a.snapshotAt(pa, 1_500)));
    const events = await r.queryEvents(pa, { limit: 100 });
    // As the wire carries them (JSON: a -0 in the owner's objects arrives as 0, as over HTTP).
    expect(events).toEqual(timeless(await a.queryEvents({ portfolio_id: pa, limit: 100 })));
    expect(events.ok && events.value.filter((e) => e.type === 'TradeExecuted').length).toBe(3);
    const lots = await r.lots(pa, 'AAPL');
    expect(lots).toEqual(await a.lots(pa, 'AAPL'));
    expect(lots.ok && lots.value.lots.map((l) => l.quantity)).toEqual([7, 5]);
    expect(edgeA.counters.rpc.served).toBeGreaterThanOrEqual(4);
    expect(await r.snapshot('nobody-has-this')).toMatchObject({ ok: false, error: { code: 'portfolio_not_found' } });
  });

  it('resyncs the subscriber when the partition changes owner', async () => {
    const p = partitionOf(px, partitions);
    const inbox = new Inbox();
    const sub = edgeB.relay.subscribe(px, inbox.listener, { bytes: true });
    expect(sub.ok).toBe(true);
    await waitUntil('the first snapshot', () => inbox.snapshots().length === 1, 5_000).catch((e) => {
      throw new Error(`${(e as Error).message}\n${logB.join('\n')}\n${logA.join('\n')}`);
    });

    assignment.move(p, 'b');
    await waitUntil('a resync from B itself', () => inbox.snapshots().length === 2, 5_000);
    expect(inbox.snapshots()[1].resync).toBe(true);
    expect(edgeB.relay.relayedPortfolios()).toEqual([]);
    expect(b.ingestTick('AAPL', 130, 30_000)).toBeNull();
    await b.drain();
    await waitUntil("B's own delta", () => inbox.deltas().some((d) => d.delta.seq > inbox.snapshots()[1].snapshot.seq), 5_000);

    assignment.move(p, 'a');
    await waitUntil('a resync relayed from A', () => inbox.snapshots().length === 3, 5_000);
    expect(inbox.snapshots()[2].resync).toBe(true);
    expect(edgeB.relay.relayedPortfolios()).toEqual([px]);

    // To a node that is gone: nobody answers; when A serves again the subscriber resyncs once more.
    const unanswered = edgeB.counters.rpc.unanswered;
    assignment.move(p, 'c');
    await waitUntil('a renewal found no owner', () => edgeB.counters.rpc.unanswered > unanswered, 5_000);
    assignment.move(p, 'a');
    await waitUntil('a resync after the outage', () => inbox.snapshots().length === 4, 5_000);
    expect(inbox.snapshots()[3].resync).toBe(true);
    expect(a.ingestTick('AAPL', 131, 40_000)).toBeNull();
    await a.drain();
    await waitUntil("A's delta relayed", () => inbox.deltas().some((d) => d.delta.seq > inbox.snapshots()[3].snapshot.seq), 5_000);
    strictlyIncreasingBetweenResyncs(inbox);
    if (sub.ok) sub.value();
  });

  it('refuses bad input with clear errors, counted and logged', async () => {
    const p = partitionOf(pa, partitions);
    const inbox = new Inbox();
    const sub = edgeB.relay.subscribe(pa, inbox.listener, { bytes: true });
    await waitUntil('snapshot', () => inbox.snapshots().length === 1, 5_000);
    const before = edgeB.counters.relay.badMessages;
    raw.publish(clusterSubjects.updates(p), new Uint8Array([2, 3, 0, 0, 1, 0, 0, 0, 9]));
    raw.publish(clusterSubjects.updates(p), new TextEncoder().encode('hello'));
    await raw.flush();
    await waitUntil('two bad update messages counted', () => edgeB.counters.relay.badMessages === before + 2, 5_000);
    expect(inbox.messages).toHaveLength(1);
    expect(logB.some((l) => l.includes('refused a message on partition'))).toBe(true);

    const ask = async (subject: string, body: string): Promise<any> => JSON.parse(new TextDecoder().decode((await raw.request(subject, new TextEncoder().encode(body), { timeout: 2_000 })).data));
    const bad = edgeA.counters.rpc.badRequests;
    expect(await ask(clusterSubjects.rpc(p, 'snapshot'), 'not json')).toMatchObject({ ok: false, error: { code: 'invalid_json' } });
    expect(await ask(clusterSubjects.rpc(p, 'snapshot'), '{"portfolio_id": 5}')).toMatchObject({ ok: false, error: { code: 'invalid_field', field: 'portfolio_id' } });
    expect(await ask(clusterSubjects.rpc(p, 'snapshot'), JSON.stringify({ portfolio_id: px }))).toMatchObject({ ok: false, error: { code: 'invalid_field', message: expect.stringContaining(`not ${p}`) } });
    expect(await ask(clusterSubjects.rpc(p, 'drop'), JSON.stringify({ portfolio_id: pa }))).toMatchObject({ ok: false, error: { code: 'unknown_op', field: 'verb' } });
    expect(edgeA.counters.rpc.badRequests).toBe(bad + 4);

    const errors: EngineError[] = [];
    const ghost = edgeB.relay.subscribe('ghost', () => undefined, { onError: (e) => errors.push(e) });
    expect(ghost.ok).toBe(true);
    await waitUntil('the unknown portfolio is refused', () => errors.length === 1, 5_000);
    expect(errors[0].code).toBe('portfolio_not_found');
    expect(edgeB.relay.relayedPortfolios()).toEqual([pa]);
    if (sub.ok) sub.value();
  });

  it('shows the cluster counts on /metrics', async () => {
    const scrape = async (engine: MtmEngine, edge: EdgeStations, cluster: ClusterCounters): Promise<string> => {
      const metrics = new EngineMetrics({ engine, uwsBinary: 'test' });
      try {
        metrics.attachCluster({ readings: () => edge.readings(cluster) });
        return (await metrics.scrape()).body;
      } finally {
        metrics.close();
      }
    };
    const countersA = new ClusterCounters(partitions);
    countersA.fencedWrites = 3;
    countersA.consumerPending[0] = 4;
    const textA = await scrape(a, edgeA, countersA);
    expect(textA).toContain(`mtm_cluster_partitions_owned ${partitions}\n`);
    expect(textA).toContain('mtm_cluster_partitions_unowned 0\n');
    expect(textA).toContain('mtm_cluster_consumer_lag_messages 4\n');
    expect(textA).toContain('mtm_cluster_fenced_writes_total 3\n');
    expect(textA).toContain('mtm_cluster_bad_input_total{source="rpc"} 4\n');
    const textB = await scrape(b, edgeB, new ClusterCounters(partitions));
    expect(textB).toContain('mtm_cluster_partitions_owned 0\n');
    expect(textB).toContain('mtm_cluster_bad_input_total{source="updates"} 2\n');
    expect(textB).toContain('mtm_cluster_bad_input_total{source="commands"} 0\n');
    expect(textB).toContain(`mtm_cluster_updates_relayed_total ${edgeB.counters.relay.recordsRelayed}\n`);
    expect(edgeB.counters.relay.recordsRelayed).toBeGreaterThan(0);
  });
});
