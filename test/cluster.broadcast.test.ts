// Proves corporate actions and instrument definitions in cluster mode (src/cluster/broadcast.ts,
// docs/CLUSTER.md "Corporate actions and instruments"), with real processes: one nats-server -js and
// three `mtm serve --nats ...` engine nodes over 6 partitions (two each).
// - A split entered on one node is published to every partition's stream and applied by each owner
//   to its own partition's portfolios only: every portfolio (in every partition) has exactly one
//   SplitApplied in its owner's log, and its cash, quantity, average cost and realized P&L equal the
//   exact oracle (test/oracle/lots.ts, corporate.ts) of its trades before, the split, its trades after.
// - The same action again is answered created: false and changes nothing; another body under the same
//   action_id is refused; the list answers it from any node (applied on the answering node's partitions).
// - kill -9 of an owner after the split: the partitions taken over are replayed by their new owner,
//   which applies the split at the same point of each stream (the oracle again, one SplitApplied each).
// - An instrument definition entered on one node reaches every node (each applies it with its
//   partitions' streams); a trade books at its multiplier; the same definition again is changed:
//   false; a new multiplier is refused (cluster_unsupported); a contract_adjustment is refused.
// Skipped, loudly, only when nats-server is not installed (CI installs it).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../src/cluster/partition.js';
import { ClusterRig, lcg, startingCash, type Trade } from './support/clusterNodes.js';
import { NatsHarness, natsServerInstalled, waitUntil, warnNatsMissing, type NatsServer } from './support/nats.js';
import { Dec } from './oracle/ledger.js';
import { OracleBook } from './oracle/lots.js';
import { split } from './oracle/corporate.js';
import { expectClose } from './oracle/compare.js';

warnNatsMissing('test/cluster.broadcast.test.ts');

const partitions = 6;
const harness = new NatsHarness('cluster-broadcast');
const root = mkdtempSync(join(tmpdir(), 'mtm-cluster-broadcast-'));
let nats: NatsServer;
const rig = new ClusterRig({ nats: () => [nats.url], root, partitions, heartbeatMs: 200, ownerTimeoutMs: 1_500, replyTimeoutMs: 4_000, replicas: 1 });

/** Two portfolios in every partition (the first ids of the form bc-<n> that hash there). */
const portfolios: string[] = [];
for (let n = 0; portfolios.length < 2 * partitions; n++) {
  const id = `bc-${n}`;
  if (portfolios.filter((x) => partitionOf(x, partitions) === partitionOf(id, partitions)).length < 2) portfolios.push(id);
}

beforeAll(async () => {
  if (!natsServerInstalled) return;
  nats = await harness.startServer();
  await Promise.all([rig.node('n1'), rig.node('n2'), rig.node('n3')]);
  await waitUntil('every partition owned, two per node', async () => {
    const owners = await rig.kvOwners();
    return (await rig.everyPartitionOwnedByLive()) && rig.live().every((n) => owners.filter((o) => o === n.id).length === 2);
  }, 20_000);
}, 60_000);

afterAll(async () => {
  await rig.close();
  await harness.cleanup();
  rmSync(root, { recursive: true, force: true });
}, 60_000);

/** The oracle: each portfolio's book, following its trades and the split in the order they were applied. */
const books = new Map<string, OracleBook>();

async function trade(id: string, t: Trade, random: () => number): Promise<void> {
  const r = await rig.sendTrade(random, id, t);
  expect(r.applied, `${id} ${t.trade_id}`).toBe(true);
  books.get(id)!.trade(t.symbol, 'USD', { id: t.trade_id, side: t.side, quantity: t.quantity, price: t.price, ts: 0 });
}

async function events(id: string, type: string): Promise<{ type: string }[]> {
  const owner = await rig.ownerNode(id);
  const r = await rig.http(owner.url, 'GET', `/api/v1/portfolios/${id}/events?type=${type}&limit=1000`);
  expect(r.status).toBe(200);
  return r.body.events as { type: string }[];
}

/** Cash and every position of the portfolio on its owner equal the oracle's book. */
async function expectOracle(id: string): Promise<number> {
  const owner = await rig.ownerNode(id);
  const got = await rig.http(owner.url, 'GET', `/api/v1/portfolios/${id}`);
  expect(got.status).toBe(200);
  const want = books.get(id)!;
  expectClose(got.body.cash, want.cash, `${id}.cash`);
  let compared = 0;
  for (const [symbol, held] of want.positions) {
    const pos = (got.body.positions as { symbol: string; quantity: number; avg_cost: number; realized_pnl: number }[]).find((p) => p.symbol === symbol);
    expect(pos, `${id} ${symbol}`).toBeDefined();
    expectClose(pos!.quantity, held.position.qty, `${id}.${symbol}.quantity`);
    expectClose(pos!.avg_cost, held.position.avg, `${id}.${symbol}.avg_cost`);
    expectClose(pos!.realized_pnl, held.position.realized, `${id}.${symbol}.realized_pnl`);
    compared++;
  }
  return compared;
}

describe.skipIf(!natsServerInstalled)('corporate actions and instruments across the partitions of three nodes', () => {
  it('a split entered on one node is applied by every owner to its partition, at one point of each stream, and again at that point by a node taking a partition over', async () => {
    const random = lcg(41);
    await rig.createPortfolios(portfolios, random);
    for (const id of portfolios) books.set(id, new OracleBook('USD', 'average', startingCash));
    for (const [i, id] of portfolios.entries()) {
      await trade(id, { trade_id: `${id}-b1`, symbol: 'SPL', side: 'buy', quantity: 3 + i, price: 101.37 }, random);
      await trade(id, { trade_id: `${id}-b2`, symbol: 'SPL', side: 'buy', quantity: 2, price: 98.5 }, random);
      await trade(id, { trade_id: `${id}-o1`, symbol: 'OTH', side: 'buy', quantity: 1, price: 10 }, random);
    }
    const action = { action_id: 'spl-2-for-1', type: 'split', symbol: 'SPL', from: 1, to: 2 };
    const [x, y] = rig.live();
    const entered = await rig.http(x.url, 'POST', '/api/v1/corporate-actions', action);
    expect(entered.status, JSON.stringify(entered.body)).toBe(201);
    expect(entered.body.action_id).toBe('spl-2-for-1');
    await waitUntil('every portfolio split on its owner', async () => (await Promise.all(portfolios.map(async (id) => (await events(id, 'SplitApplied')).length))).every((n) => n === 1), 15_000, 100);
    for (const id of portfolios) {
      const b = books.get(id)!;
      const held = b.positions.get('SPL')!;
      held.position = split('average', held.position, 1, 2).position;
    }
    // The same action again (another node): nothing new; another body under its id: refused.
    const again = await rig.http(y.url, 'POST', '/api/v1/corporate-actions', action);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    const clash = await rig.http(y.url, 'POST', '/api/v1/corporate-actions', { ...action, to: 3 });
    expect(clash.status).toBe(400);
    expect(clash.body.error.field).toBe('action_id');
    const listed = await rig.http(y.url, 'GET', '/api/v1/corporate-actions');
    expect(listed.status).toBe(200);
    const row = (listed.body.actions as { action_id: string; status: string; steps: { step: string }[] }[]).find((a) => a.action_id === 'spl-2-for-1');
    expect(row?.status).toBe('applied');
    expect(row?.steps.map((s) => s.step)).toEqual(['split']);

    for (const [i, id] of portfolios.entries()) {
      await trade(id, { trade_id: `${id}-a1`, symbol: 'SPL', side: i % 2 === 0 ? 'sell' : 'buy', quantity: 1 + (i % 3), price: 51.25 }, random);
    }
    let compared = 0;
    for (const id of portfolios) compared += await expectOracle(id);
    expect(compared).toBe(2 * portfolios.length);

    // kill -9 of a node: its partitions are replayed by their new owners, split at the same point.
    const victim = rig.live()[2];
    const owners = await rig.kvOwners();
    const moved = portfolios.filter((id) => owners[partitionOf(id, partitions)] === victim.id);
    expect(moved.length).toBe(4);
    await victim.kill9();
    await waitUntil('every partition owned by a live node', () => rig.everyPartitionOwnedByLive(), 10_000, 20);
    for (const id of moved) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          expect((await events(id, 'SplitApplied')).length, `${id}: one split on its new owner`).toBe(1);
          await expectOracle(id);
          break;
        } catch (e) {
          if (Date.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  }, 90_000);

  it('an instrument definition reaches every node; trades book at its multiplier; the same again is no change; a new multiplier and a contract adjustment are refused', async () => {
    const [x, y] = rig.live();
    const def = { asset_class: 'future', currency: 'USD', multiplier: 50, description: 'index future' };
    const put = await rig.http(x.url, 'PUT', '/api/v1/instruments/FUT1', def);
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.multiplier).toBe(50);
    for (const n of rig.live()) {
      await waitUntil(`${n.id} knows FUT1`, async () => (await rig.http(n.url, 'GET', '/api/v1/instruments/FUT1')).status === 200, 10_000, 50);
      expect((await rig.http(n.url, 'GET', '/api/v1/instruments/FUT1')).body.multiplier).toBe(50);
    }
    const id = portfolios[1];
    const before = (await rig.http((await rig.ownerNode(id)).url, 'GET', `/api/v1/portfolios/${id}`)).body.cash as number;
    expect((await rig.sendTrade(lcg(7), id, { trade_id: 'fut-1', symbol: 'FUT1', side: 'buy', quantity: 2, price: 4_000.25 })).applied).toBe(true);
    const after = (await rig.http((await rig.ownerNode(id)).url, 'GET', `/api/v1/portfolios/${id}`)).body.cash as number;
    expectClose(after, new Dec(before).minus(new Dec(2).times('4000.25').times(50)), `${id}.cash after a FUT1 trade`);

    const same = await rig.http(y.url, 'PUT', '/api/v1/instruments/FUT1', def);
    expect(same.status).toBe(200);
    const moved = await rig.http(y.url, 'PUT', '/api/v1/instruments/FUT1', { ...def, multiplier: 25 });
    expect(moved.status).toBe(501);
    expect(moved.body.error).toMatchObject({ code: 'cluster_unsupported', field: 'multiplier' });
    const described = await rig.http(y.url, 'PUT', '/api/v1/instruments/FUT1', { ...def, description: 'front month' });
    expect(described.status).toBe(200);
    for (const n of rig.live()) {
      await waitUntil(`${n.id} has the new description`, async () => (await rig.http(n.url, 'GET', '/api/v1/instruments/FUT1')).body.description === 'front month', 10_000, 50);
    }
    const adjust = await rig.http(x.url, 'POST', '/api/v1/corporate-actions', { action_id: 'adj-1', type: 'contract_adjustment', symbol: 'FUT1', multiplier: 100 });
    expect(adjust.status).toBe(501);
    expect(adjust.body.error.code).toBe('cluster_unsupported');
  }, 60_000);
});
