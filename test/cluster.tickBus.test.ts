// Proves the tick bus (src/cluster/tickBus.ts) with a real nats-server and two real engines (shard
// workers from dist/), each node's ownership a fixed assignment (test/support/fixedOwnership.ts):
// - a tick given to node A's feed path reaches the engine of the node whose books hold the symbol (B),
//   and only nodes that hold it: A's engine never learns a symbol it does not hold;
// - a feed publishing straight to NATS on clusterSubjects.ticks(symbol), with the /ws/feed ticks frame
//   (symbol id 0), is applied; the ticks of one symbol given in one turn travel as one frame, in order;
// - a book that starts holding a new symbol gets its ticks (subscription follows the symbol table);
// - bad input: garbage, a register frame, a record naming a symbol id on a tick subject are refused,
//   logged and counted, nothing applied; a bad tick is refused with the engine's code before publishing.
// Skipped, loudly, only when nats-server is not installed.

import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { TickBus, encodeSymbolTicks } from '../src/cluster/tickBus.js';
import { clusterSubjects } from '../src/cluster/subjects.js';
import { partitionOf } from '../src/cluster/partition.js';
import { encodeFeedRegister, encodeFeedTicks } from '../src/protocol/binary.js';
import type { TickInput } from '../src/domain/types.js';
import { Assignment } from './support/fixedOwnership.js';
import { NatsHarness, natsServerInstalled, waitUntil, warnNatsMissing } from './support/nats.js';

warnNatsMissing('test/cluster.tickBus.test.ts');

const partitions = 8;
const harness = new NatsHarness('tick-bus');
const opened: { close(): Promise<void> }[] = [];
let a: MtmEngine;
let b: MtmEngine;
let ncA: NatsConnection;
let ncB: NatsConnection;
let feed: NatsConnection;
let busA: TickBus;
let busB: TickBus;
const logA: string[] = [];
const logB: string[] = [];

async function lastPrice(engine: MtmEngine, portfolio: string, symbol: string): Promise<number | undefined> {
  await engine.drain();
  const snap = await engine.snapshot(portfolio);
  if (!snap.ok) throw new Error(snap.error.message);
  return snap.value.positions.find((p) => p.symbol === symbol)?.last_price;
}

function symbols(engine: MtmEngine): string[] {
  const out: string[] = [];
  for (let id = 0; engine.symbolName(id) !== undefined; id++) out.push(engine.symbolName(id) as string);
  return out;
}

beforeAll(async () => {
  if (!natsServerInstalled) return;
  const server = await harness.startServer();
  a = await createEngine({ workers: 1 });
  opened.push(a);
  b = await createEngine({ workers: 1 });
  opened.push(b);
  ncA = await connect({ servers: server.url });
  ncB = await connect({ servers: server.url });
  feed = await connect({ servers: server.url });
  opened.push({ close: () => ncA.close() }, { close: () => ncB.close() }, { close: () => feed.close() });
  // pa on node a, pb on node b, whatever partitions they hash to.
  const assignment = new Assignment(partitions, (p) => (p === partitionOf('pb', partitions) ? 'b' : 'a'));
  expect(await a.createPortfolio({ id: 'pa', cash: 100_000 })).toMatchObject({ ok: true });
  expect(await a.trade('pa', { trade_id: 'a1', symbol: 'AAPL', side: 'buy', quantity: 10, price: 100 })).toMatchObject({ ok: true });
  expect(await b.createPortfolio({ id: 'pb', cash: 100_000 })).toMatchObject({ ok: true });
  expect(await b.trade('pb', { trade_id: 'b1', symbol: 'MSFT', side: 'buy', quantity: 5, price: 300 })).toMatchObject({ ok: true });
  busA = new TickBus(ncA, a, assignment.view('a'), { subscriptionsRefreshMs: 20, log: (l) => logA.push(l) });
  busB = new TickBus(ncB, b, assignment.view('b'), { subscriptionsRefreshMs: 20, log: (l) => logB.push(l) });
  opened.push(busA, busB);
  busA.start();
  busB.start();
  await ncA.flush();
  await ncB.flush();
});

afterAll(async () => {
  for (const o of opened.reverse()) await o.close().catch(() => undefined);
  await harness.cleanup();
});

describe.skipIf(!natsServerInstalled)('the tick bus', () => {
  it('subscribes the symbols each node holds', () => {
    expect(busA.subscribedSymbols()).toEqual(['AAPL']);
    expect(busB.subscribedSymbols()).toEqual(['MSFT']);
  });

  it('takes a feed tick on any node to the node that holds the symbol, and only there', async () => {
    expect(busA.ingestTick('MSFT', 310, 1_000)).toBeNull();
    expect(busA.ingestTick('AAPL', 105, 1_000)).toBeNull();
    await waitUntil('B applied the MSFT tick', () => busB.counters.ticksReceived === 1, 5_000);
    await waitUntil('A applied the AAPL tick', () => busA.counters.ticksReceived === 1, 5_000);
    expect(await lastPrice(b, 'pb', 'MSFT')).toBe(310);
    expect(await lastPrice(a, 'pa', 'AAPL')).toBe(105);
    expect(symbols(a)).not.toContain('MSFT');
    expect(symbols(b)).not.toContain('AAPL');
    expect(busA.counters.ticksPublished).toBe(2);
  });

  it('applies a feed publishing straight to NATS, one frame per symbol per turn, in order', async () => {
    feed.publish(clusterSubjects.ticks('AAPL'), encodeSymbolTicks([106, 2_000, 100]));
    await waitUntil('A applied the direct tick', () => busA.counters.ticksReceived === 2, 5_000);
    expect(await lastPrice(a, 'pa', 'AAPL')).toBe(106);

    const framesBefore = busB.counters.framesPublished;
    for (const [price, ts] of [[107, 3_000], [108, 3_001], [109, 3_002]]) expect(busB.ingestTick('AAPL', price, ts, 1)).toBeNull();
    await waitUntil('A applied the three ticks', () => busA.counters.ticksReceived === 5, 5_000);
    expect(busB.counters.framesPublished).toBe(framesBefore + 1);
    expect(await lastPrice(a, 'pa', 'AAPL')).toBe(109);
  });

  it('follows a book that starts holding a new symbol', async () => {
    expect(await b.trade('pb', { trade_id: 'b2', symbol: 'AAPL', side: 'buy', quantity: 1, price: 109 })).toMatchObject({ ok: true });
    await waitUntil('B subscribed AAPL', () => busB.subscribedSymbols().includes('AAPL'), 5_000);
    await ncB.flush();
    expect(busA.ingestTick('AAPL', 111, 4_000)).toBeNull();
    await waitUntil('B applied the AAPL tick', () => busB.counters.ticksReceived === 2, 5_000);
    expect(await lastPrice(b, 'pb', 'AAPL')).toBe(111);
    expect(await lastPrice(a, 'pa', 'AAPL')).toBe(111);
  });

  it('refuses bad frames and bad ticks, counted and logged, nothing applied', async () => {
    const subject = clusterSubjects.ticks('AAPL');
    const badFramesBefore = busA.counters.badFrames;
    feed.publish(subject, new Uint8Array([1, 2, 3]));
    feed.publish(subject, encodeFeedRegister(['AAPL']));
    feed.publish(subject, encodeFeedTicks([{ symbolId: 3, price: 1, ts: 5_000, size: NaN }]));
    await feed.flush();
    await waitUntil('A counted three bad frames', () => busA.counters.badFrames === badFramesBefore + 3, 5_000);
    expect(logA.some((l) => l.includes('symbol id 3, must be 0'))).toBe(true);
    expect(logA.some((l) => l.includes('a register frame'))).toBe(true);
    expect(await lastPrice(a, 'pa', 'AAPL')).toBe(111);

    const publishedBefore = busA.counters.ticksPublished;
    expect(busA.ingestTick('AAPL', -1, 6_000)).toBe('invalid_price');
    expect(busA.ingestTick('AAPL', NaN, 6_000)).toBe('invalid_price');
    expect(busA.ingestTick('no such symbol!', 1, 6_000)).toBe('invalid_symbol');
    expect(busA.ingestTick('AAPL', 1, -5)).toBe('invalid_timestamp');
    expect(busA.ingestTick('AAPL', 1, 6_000, Infinity)).toBe('invalid_quantity');
    expect(busA.ingestTicks([{ symbol: 'AAPL', price: 0, ts: 6_000 }, { symbol: 'AAPL', price: 112, ts: 6_000 }])).toEqual({
      accepted: 1,
      rejected: [{ index: 0, code: 'invalid_price' }],
      held: 0,
    });
    // The in-process boundary takes anything: what is not a tick is refused with the engine's codes.
    const junk = [null, { symbol: 5, price: 1 }, { symbol: 'AAPL', price: 1, ts: 'now' }, { symbol: 'AAPL', price: 1, ts: 1, size: 'big' }] as unknown as TickInput[];
    expect(busA.ingestTicks(junk)).toEqual({
      accepted: 0,
      rejected: [
        { index: 0, code: 'invalid_field' },
        { index: 1, code: 'invalid_field' },
        { index: 2, code: 'invalid_timestamp' },
        { index: 3, code: 'invalid_quantity' },
      ],
      held: 0,
    });
    expect(busA.ingestTicks('x' as unknown as TickInput[])).toEqual({ accepted: 0, rejected: [{ index: -1, code: 'invalid_field' }], held: 0 });
    await waitUntil('the one good tick arrived', () => busA.counters.ticksReceived === 7, 5_000);
    expect(busA.counters.ticksPublished).toBe(publishedBefore + 1);
    expect(busA.counters.ticksRefused).toBe(10);
    expect(await lastPrice(a, 'pa', 'AAPL')).toBe(112);
  });
});
