// Proves that a shipped snapshot carries what the purged stream below it held besides the books
// (issue 17; src/cluster/carry.ts, SnapshotShipper's version 2 frame, Takeover.restoreCarry,
// CorporateDesk.carryOf/restoreIn), on a real nats-server -js, a real `mtm serve` owner killed with
// SIGKILL and a real in-process engine (LMDB, shard workers) taking over:
// - an instrument (FUT1, multiplier 50) is defined, a 2-for-1 split of SPL is announced on every
//   partition with its effective time seconds ahead (announced, not applied), and a dividend of DIV
//   whose ex-date step applies on the owner before the ship and whose pay date is after the kill; the
//   owner ships every partition and the stream is purged below each snapshot (only its last message
//   is left); the owner is killed -9 before the split and the payment are due;
// - a node that never held anything takes every partition from the snapshots: it knows FUT1 at
//   multiplier 50 (the definition's stream message is gone), the split and the dividend's next step
//   (pay date, entitled from the holdings at the ex-date the old owner recorded) apply there when due, and
//   every portfolio's cash, quantity, average cost and realized P&L equal the exact oracle
//   (test/oracle/lots.ts, corporate.ts); a FUT1 trade on it books at the multiplier (exact cash);
// - a restart of that engine alone (no NATS) keeps the instrument and the split as applied.
// - trade ids older than the dedup window (a stream created with --cluster-dedup-window-ms 1000, the
//   old trades more than a window before the newest, so the snapshot's recent results leave them out):
//   the snapshot's ids segment carries every id the partition applied; after kill -9 of the owner and a
//   take-over from the snapshots, a resend of each old trade is answered applied: false, with the
//   portfolio as it is now, and the figures still equal the oracle (nothing applied twice).
// - the frame: version 2 carries the segment last, a version 1 frame (shipped before it) still decodes,
//   and a carry or ids segment of the wrong shape is refused naming the rule.
// Skipped, loudly, only when nats-server is not installed (CI installs it). Needs `npm run build`.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { shippedSeq, subjectState } from './support/clusterStream.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { ClusterNode } from '../src/cluster/node.js';
import { partitionOf } from '../src/cluster/partition.js';
import { partitionScope } from '../src/cluster/commandConsumer.js';
import { clusterSubjects as names } from '../src/cluster/subjects.js';
import { decodeSnapshotFrame, encodeSnapshotFrame, snapshotFrameVersionNoCarry } from '../src/cluster/snapshotShipper.js';
import { decodeCarry, encodeCarry } from '../src/cluster/carry.js';
import { decodeIds, encodeIds } from '../src/cluster/idsSegment.js';
import type { Engine } from '../src/engine/api.js';
import type { TradeResult } from '../src/domain/types.js';
import { Dec } from './oracle/ledger.js';
import { OracleBook } from './oracle/lots.js';
import { dividend, split } from './oracle/corporate.js';
import { expectClose } from './oracle/compare.js';
import { ClusterRig, lcg, startingCash, type Trade } from './support/clusterNodes.js';
import { NatsHarness, natsServerInstalled, waitUntil, warnNatsMissing, type NatsServer } from './support/nats.js';

warnNatsMissing('test/cluster.carry.test.ts');

const partitions = 2;
const heartbeatMs = 200;
const ownerTimeoutMs = 1_500;
const harness = new NatsHarness('cluster-carry');
const root = mkdtempSync(join(tmpdir(), 'mtm-cluster-carry-'));
let nats: NatsServer;
let raw: NatsConnection;
const engines: MtmEngine[] = [];
const nodes: ClusterNode[] = [];
const rig = new ClusterRig({ nats: () => [nats.url], root: join(root, 'rig'), partitions, heartbeatMs, ownerTimeoutMs, replyTimeoutMs: 5_000, replicas: 1, extraArgs: ['--cluster-snapshot-ship-interval-ms', '200'] });

/** Two portfolios in every partition (the first ids of the form cy-<n> that hash there). */
const portfolios: string[] = [];
for (let n = 0; portfolios.length < 2 * partitions; n++) {
  const id = `cy-${n}`;
  if (portfolios.filter((x) => partitionOf(x, partitions) === partitionOf(id, partitions)).length < 2) portfolios.push(id);
}

beforeAll(async () => {
  if (!natsServerInstalled) return;
  nats = await harness.startServer();
  raw = await connect({ servers: nats.url });
}, 30_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
  await Promise.all(engines.map((e) => e.close().catch(() => undefined)));
  await rig.close();
  await raw?.close().catch(() => undefined);
  await harness.cleanup();
  rmSync(root, { recursive: true, force: true });
}, 60_000);

type Figures = { cash: number; positions: { symbol: string; quantity: number; avg_cost: number; realized_pnl: number }[] };

/** Cash and every position of the portfolio, as the engine answers them, equal the oracle's book. */
async function expectOracle(engine: Pick<Engine, 'snapshot'>, id: string, want: OracleBook, where: string): Promise<void> {
  const got = await engine.snapshot(id);
  if (!got.ok) throw new Error(`${where}: ${id}: ${got.error.message}`);
  const s = got.value as unknown as Figures;
  expectClose(s.cash, want.cash, `${where} ${id}.cash`);
  for (const [symbol, held] of want.positions) {
    const pos = s.positions.find((p) => p.symbol === symbol);
    expect(pos, `${where} ${id} ${symbol}`).toBeDefined();
    expectClose(pos!.quantity, held.position.qty, `${where} ${id}.${symbol}.quantity`);
    expectClose(pos!.avg_cost, held.position.avg, `${where} ${id}.${symbol}.avg_cost`);
    expectClose(pos!.realized_pnl, held.position.realized, `${where} ${id}.${symbol}.realized_pnl`);
  }
}

describe.skipIf(!natsServerInstalled)('a shipped snapshot carries corporate actions and instrument definitions', () => {
  it('a split announced before the snapshot applies on the node that takes over from it after kill -9; an instrument defined before it gives the multiplier there', async () => {
    const a = await rig.node('cy-a');
    await waitUntil('cy-a owns every partition', async () => (await rig.kvOwners()).every((o) => o === 'cy-a'), 15_000);
    const random = lcg(17);
    await rig.createPortfolios(portfolios, random);
    const books = new Map(portfolios.map((id) => [id, new OracleBook('USD', 'average', startingCash)]));
    const trade = async (id: string, t: Trade): Promise<void> => {
      expect((await rig.sendTrade(random, id, t)).applied, `${id} ${t.trade_id}`).toBe(true);
      books.get(id)!.trade(t.symbol, 'USD', { id: t.trade_id, side: t.side, quantity: t.quantity, price: t.price, ts: 0 });
    };
    for (const [i, id] of portfolios.entries()) {
      await trade(id, { trade_id: `${id}-b1`, symbol: 'SPL', side: 'buy', quantity: 3 + i, price: 101.37 });
      await trade(id, { trade_id: `${id}-b2`, symbol: 'SPL', side: 'buy', quantity: 2, price: 98.5 });
      await trade(id, { trade_id: `${id}-d1`, symbol: 'DIV', side: 'buy', quantity: 5 + i, price: 20 });
    }
    const def = { asset_class: 'future', currency: 'USD', multiplier: 50, description: 'index future' };
    const put = await rig.http(a.url, 'PUT', '/api/v1/instruments/FUT1', def);
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    // Due a few seconds from now: announced on every partition, shipped pending, applied only after the take-over.
    const effectiveTs = Date.now() + 10_000;
    const entered = await rig.http(a.url, 'POST', '/api/v1/corporate-actions', { action_id: 'cy-split', type: 'split', symbol: 'SPL', from: 1, to: 2, effective_ts: effectiveTs });
    expect(entered.status, JSON.stringify(entered.body)).toBe(201);
    const div = await rig.http(a.url, 'POST', '/api/v1/corporate-actions', { action_id: 'cy-div', type: 'dividend', symbol: 'DIV', amount_per_share: 0.37, ex_ts: Date.now() + 1_500, pay_ts: effectiveTs });
    expect(div.status, JSON.stringify(div.body)).toBe(201);
    const stepsOnA = async (): Promise<string[]> => {
      const listed = await rig.http(a.url, 'GET', '/api/v1/corporate-actions');
      const row = (listed.body.actions as { action_id: string; steps: { step: string }[] }[]).find((x) => x.action_id === 'cy-div');
      return row?.steps.map((s) => s.step) ?? [];
    };
    await waitUntil('the dividend\'s ex-date step applied on cy-a in every partition', async () => (await stepsOnA()).length === 1, 8_000, 100);
    await waitUntil(
      'cy-a shipped every partition past the announcement and purged the stream below each snapshot',
      async () => {
        for (let p = 0; p < partitions; p++) {
          const s = await subjectState(raw, p);
          if (s.messages !== 1 || (await shippedSeq(raw, p)) !== s.last) return false;
        }
        return true;
      },
      6_000,
      100,
    );
    expect(Date.now()).toBeLessThan(effectiveTs);
    await a.kill9();

    const engine = await createEngine({ dataDir: join(root, 'cy-b'), workers: 2, snapshotIntervalMs: 3_600_000 });
    engines.push(engine);
    const b = await ClusterNode.start(engine, { nats: nats.url, nodeId: 'cy-b', partitions, heartbeatMs, ownerTimeoutMs, snapshotShipIntervalMs: 0, log: () => undefined });
    nodes.push(b);
    await waitUntil('cy-b owns every partition', () => b.stats().owned === partitions, 20_000);
    expect(b.takeover.counts.fromSnapshot).toBe(partitions);
    expect(b.takeover.counts.actionsCarried).toBe(2 * partitions);
    // The definition's stream message is purged: FUT1 came with the snapshots.
    const fut = engine.instrument('FUT1');
    expect(fut.ok && fut.value.multiplier).toBe(50);
    const scopes = Array.from({ length: partitions }, (_, p) => partitionScope(p, partitions).name);
    expect(engine.corporateActionIn('cy-split', scopes)?.status).toBe('pending');
    expect(engine.corporateActionIn('cy-div', scopes)).toMatchObject({ status: 'pending', steps: [{ step: 'ex_date' }] });

    await waitUntil('the split applied on cy-b in every partition', () => engine.corporateActionIn('cy-split', scopes)?.status === 'applied', 20_000, 100);
    expect(engine.corporateActionIn('cy-split', scopes)?.steps.map((s) => s.step)).toEqual(['split']);
    await waitUntil('the dividend paid on cy-b in every partition', () => engine.corporateActionIn('cy-div', scopes)?.status === 'applied', 20_000, 100);
    expect(engine.corporateActionIn('cy-div', scopes)?.steps.map((s) => s.step)).toEqual(['ex_date', 'pay_date']);
    for (const [i, id] of portfolios.entries()) {
      const held = books.get(id)!.positions.get('SPL')!;
      held.position = split('average', held.position, 1, 2).position;
      books.get(id)!.cash = books.get(id)!.cash.plus(dividend(5 + i, 0.37, 1).amount);
      await expectOracle(engine, id, books.get(id)!, 'cy-b after the split');
    }
    const api = b.routed(engine);
    const id = portfolios[1];
    const before = (await engine.snapshot(id)) as { ok: true; value: unknown };
    const r = await api.trade(id, { trade_id: 'cy-fut-1', symbol: 'FUT1', side: 'buy', quantity: 2, price: 4_000.25 });
    expect(r.ok && (r.value as TradeResult).applied, JSON.stringify(r)).toBe(true);
    const after = (await engine.snapshot(id)) as { ok: true; value: unknown };
    expectClose((after.value as Figures).cash, new Dec((before.value as Figures).cash).minus(new Dec(2).times('4000.25').times(50)), `${id}.cash after a FUT1 trade`);

    // The local store has them: the engine alone (no NATS) restarts with the instrument and the action.
    await b.stop();
    await engine.close();
    const again = await createEngine({ dataDir: join(root, 'cy-b'), workers: 2, snapshotIntervalMs: 3_600_000 });
    engines.push(again);
    const kept = again.instrument('FUT1');
    expect(kept.ok && kept.value.multiplier).toBe(50);
    expect(again.corporateActionIn('cy-split', scopes)?.status).toBe('applied');
    for (const pid of portfolios.filter((x) => x !== id)) await expectOracle(again, pid, books.get(pid)!, 'cy-b restarted');
    await again.close();
  }, 60_000);
});

describe.skipIf(!natsServerInstalled)('a shipped snapshot carries every trade id of its partition', () => {
  it('a resend older than the dedup window, after a take-over from the snapshot, is answered as a duplicate and not applied twice', async () => {
    const jsm = await jetstreamManager(raw);
    for (const s of [names.commandStream, `KV_${names.ownershipBucket}`, `KV_${names.clusterBucket}`, `OBJ_${names.snapshotStore}`]) await jsm.streams.delete(s).catch(() => undefined);
    const rig2 = new ClusterRig({ nats: () => [nats.url], root: join(root, 'rig2'), partitions, heartbeatMs, ownerTimeoutMs, replyTimeoutMs: 5_000, replicas: 1, extraArgs: ['--cluster-snapshot-ship-interval-ms', '200', '--cluster-dedup-window-ms', '1000'] });
    try {
      await rig2.node('cz-a');
      await waitUntil('cz-a owns every partition', async () => (await rig2.kvOwners()).every((o) => o === 'cz-a'), 15_000);
      const random = lcg(23);
      const ids = portfolios.map((id) => id.replace('cy-', 'cz-'));
      await rig2.createPortfolios(ids, random);
      const books = new Map(ids.map((id) => [id, new OracleBook('USD', 'average', startingCash)]));
      const old: [string, Trade][] = [];
      const trade = async (id: string, t: Trade): Promise<void> => {
        expect((await rig2.sendTrade(random, id, t)).applied, `${id} ${t.trade_id}`).toBe(true);
        books.get(id)!.trade(t.symbol, 'USD', { id: t.trade_id, side: t.side, quantity: t.quantity, price: t.price, ts: 0 });
      };
      for (const [i, id] of ids.entries()) {
        const t: Trade = { trade_id: `${id}-old`, symbol: 'OLD', side: 'buy', quantity: 4 + i, price: 12.34 };
        await trade(id, t);
        old.push([id, t]);
      }
      // Past the dedup window: the newest trades' results are the only ones the snapshot's results carry.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      for (const id of ids) await trade(id, { trade_id: `${id}-new`, symbol: 'NEW', side: 'buy', quantity: 3, price: 45.6 });
      await waitUntil(
        'cz-a shipped every partition and purged the stream below each snapshot',
        async () => {
          for (let p = 0; p < partitions; p++) {
            const s = await subjectState(raw, p);
            if (s.messages !== 1 || (await shippedSeq(raw, p)) !== s.last) return false;
          }
          return true;
        },
        10_000,
        100,
      );
      await rig2.live()[0].kill9();

      const engine = await createEngine({ dataDir: join(root, 'cz-b'), workers: 2, snapshotIntervalMs: 3_600_000 });
      engines.push(engine);
      const b = await ClusterNode.start(engine, { nats: nats.url, nodeId: 'cz-b', partitions, heartbeatMs, ownerTimeoutMs, snapshotShipIntervalMs: 0, log: () => undefined });
      nodes.push(b);
      await waitUntil('cz-b owns every partition', () => b.stats().owned === partitions, 20_000);
      expect(b.takeover.counts.fromSnapshot).toBe(partitions);
      const api = b.routed(engine);
      for (const [id, t] of old) {
        const r = await api.trade(id, t);
        expect(r.ok, JSON.stringify(r)).toBe(true);
        const v = (r as { ok: true; value: TradeResult }).value;
        expect(v.applied, `${t.trade_id} resent to cz-b`).toBe(false);
        expectClose(v.position.quantity, books.get(id)!.positions.get('OLD')!.position.qty, `${t.trade_id} answered position`);
        expectClose(v.totals.cash, books.get(id)!.cash, `${t.trade_id} answered cash`);
      }
      for (const id of ids) await expectOracle(engine, id, books.get(id)!, 'cz-b after the old resends');
      // The old trades (and the portfolios' creation commands) were carried as ids only.
      expect(b.takeover.counts.idsCarried).toBeGreaterThanOrEqual(old.length);
    } finally {
      await rig2.close();
    }
  }, 60_000);
});

describe('the carry and ids segments and the frame versions', () => {
  it('round-trips the carried state and the ids, still decodes a version 1 frame, and refuses a malformed segment naming the rule', () => {
    const carry = encodeCarry({
      actions: [{ record: { input: '{}', action: { action_id: 'x', type: 'split', symbol: 'S', from: 1, to: 2, effective_ts: 5 }, announced_ts: 1 }, steps: [], outcome: null }],
      instruments: [{ symbol: 'F', asset_class: 'future', currency: 'USD', multiplier: 50 }],
    });
    const back = decodeCarry(carry);
    expect(back.ok && back.value.actions[0].record.action.action_id).toBe('x');
    expect(back.ok && back.value.instruments[0].multiplier).toBe(50);
    const v2 = decodeSnapshotFrame(encodeSnapshotFrame([new Uint8Array([1]), carry]));
    expect(v2.ok && v2.value.length).toBe(2);
    const v1 = decodeSnapshotFrame(encodeSnapshotFrame([new Uint8Array([1, 2])], snapshotFrameVersionNoCarry));
    expect(v1.ok && v1.value.map((x) => [...x])).toEqual([[1, 2]]);
    const v3 = decodeSnapshotFrame(new Uint8Array([0x53, 3, 0, 0]));
    expect(v3.ok ? '' : v3.error.message).toMatch(/version 1 expected \(or 2\), got 0x53 version 3/);
    const notJson = decodeCarry(new TextEncoder().encode('{'));
    expect(notJson.ok ? '' : notJson.error.message).toMatch(/carry segment: must be UTF-8 JSON/);
    const noSteps = decodeCarry(new TextEncoder().encode(JSON.stringify({ v: 1, actions: [{ record: { input: '', action: { action_id: 'x', type: 'split' }, announced_ts: 1 }, outcome: null }], instruments: [] })));
    expect(noSteps.ok ? '' : noSteps.error.message).toMatch(/actions\[0\] must be/);
    // The ids segment: sorted per portfolio, length-prefixed UTF-8; bounded; a foreign portfolio refused.
    const p0 = portfolios.find((x) => partitionOf(x, partitions) === 0)!;
    const packed = encodeIds(new Map([[p0, ['t-2', 't-1', 'é-3']]]));
    const ids = decodeIds(packed, 0, partitions, 10);
    expect(ids.ok && ids.value.get(p0)).toEqual(['t-1', 't-2', 'é-3']);
    const over = decodeIds(packed, 0, partitions, 2);
    expect(over.ok ? '' : over.error.message).toMatch(/more than 2 ids \(--cluster-snapshot-ids-max\)/);
    const foreign = decodeIds(packed, 1, partitions, 10);
    expect(foreign.ok ? '' : foreign.error.message).toMatch(/is not of partition 1/);
    const cut = decodeIds(packed.subarray(0, packed.byteLength - 1), 0, partitions, 10);
    expect(cut.ok ? '' : cut.error.message).toMatch(/runs past the segment's end/);
  });
});
