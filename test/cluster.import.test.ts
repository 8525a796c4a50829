// Proves POST /api/v1/trades/import in cluster mode (docs/CLUSTER.md), with real processes: one
// nats-server -js and two `mtm serve --nats ...` engine nodes. The receiving node's import sends each
// trade through its partition's stream (the routed engine's importTrades, cluster/node.ts), so trades of
// portfolios owned by either node are booked by their owner, answered in input order, and a trade id
// repeated in the file is answered duplicate and booked once.
// Skipped, loudly, only when nats-server is not installed (CI installs it).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../src/cluster/partition.js';
import { ClusterRig, lcg } from './support/clusterNodes.js';
import { NatsHarness, natsServerInstalled, waitUntil, warnNatsMissing, type NatsServer } from './support/nats.js';

warnNatsMissing('test/cluster.import.test.ts');

const partitions = 4;
const harness = new NatsHarness('cluster-import');
const root = mkdtempSync(join(tmpdir(), 'mtm-cluster-import-'));
let nats: NatsServer;
const rig = new ClusterRig({ nats: () => [nats.url], root, partitions, heartbeatMs: 200, ownerTimeoutMs: 3_000, replyTimeoutMs: 5_000, replicas: 1 });

beforeAll(async () => {
  if (!natsServerInstalled) return;
  nats = await harness.startServer();
  await Promise.all([rig.node('n1'), rig.node('n2')]);
  await waitUntil('every partition owned', () => rig.everyPartitionOwnedByLive(), 15_000);
}, 60_000);

afterAll(async () => {
  await rig.close();
  await harness.cleanup();
  rmSync(root, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!natsServerInstalled)('bulk import on a cluster node', () => {
  it("books each line on its portfolio's owner, in input order, a repeated id once", async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `imp-c${i}`);
    await rig.createPortfolios(ids, lcg(11));
    const owners = await rig.kvOwners();
    // Portfolios owned by each node, so the receiving node books some itself and routes the others.
    expect(new Set(ids.map((id) => owners[partitionOf(id, partitions)])).size).toBe(2);
    const [receiver] = rig.live();
    let body = '';
    for (let i = 0; i < 40; i++) body += JSON.stringify({ portfolio_id: ids[i % ids.length], trade_id: `ct${i}`, symbol: 'CLI', side: 'buy', quantity: 1, price: 10 }) + '\n';
    body += JSON.stringify({ portfolio_id: ids[3], trade_id: 'ct3', symbol: 'CLI', side: 'buy', quantity: 1, price: 10 }) + '\n';
    const r = await fetch(receiver.url + '/api/v1/trades/import', { method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' }, body });
    expect(r.status).toBe(200);
    const answers = (await r.text())
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as { line?: number; trade_id?: string; result?: string; summary?: unknown });
    expect(answers.slice(0, 41).map((a) => [a.line, a.trade_id, a.result])).toEqual([...Array.from({ length: 40 }, (_, i) => [i + 1, `ct${i}`, 'applied']), [41, 'ct3', 'duplicate']]);
    expect(answers[41].summary).toEqual({ lines: 41, applied: 40, duplicate: 1, errors: 0, stopped: false });
    for (const id of ids) {
      const owner = await rig.ownerNode(id);
      await waitUntil(`${id} booked on its owner`, async () => {
        const s = await rig.http(owner.url, 'GET', `/api/v1/portfolios/${id}`);
        return (s.body.positions as { symbol: string; quantity: number }[]).find((p) => p.symbol === 'CLI')?.quantity === 5;
      }, 10_000, 50);
    }
  }, 60_000);
});
