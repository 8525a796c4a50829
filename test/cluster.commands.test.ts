// Proves the cluster's non-trade commands are idempotent by command_id (docs/CLUSTER.md "Commands through
// JetStream"), with real processes: one nats-server -js and three `mtm serve --nats ...` engine nodes.
// - A cash deposit sent while its partition's owner is paused (SIGSTOP) times out with 503
//   partition_unavailable naming the command_id it was published with; the command stays in the stream
//   and the new owner applies it; the client's resend with that command_id is answered (200, the
//   portfolio) and not applied again: one CashDeposited in the owner's log, cash = start + amount once.
// - A client-chosen ?command_id= sent twice (a resend within the dedup window) applies once.
// - A malformed command_id is refused at the boundary, naming the field.
// Skipped, loudly, only when nats-server is not installed (CI installs it).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../src/cluster/partition.js';
import { ClusterRig, lcg, startingCash } from './support/clusterNodes.js';
import { NatsHarness, natsServerInstalled, waitUntil, warnNatsMissing, type NatsServer } from './support/nats.js';

warnNatsMissing('test/cluster.commands.test.ts');

const partitions = 4;
const harness = new NatsHarness('cluster-commands');
const root = mkdtempSync(join(tmpdir(), 'mtm-cluster-commands-'));
let nats: NatsServer;
// The reply timeout (1 s) is shorter than a take-over (owner timeout 1.5 s): a command sent right after
// its owner is paused times out before anyone else serves the partition.
const rig = new ClusterRig({ nats: () => [nats.url], root, partitions, heartbeatMs: 200, ownerTimeoutMs: 1_500, replyTimeoutMs: 1_000, replicas: 1 });

beforeAll(async () => {
  if (!natsServerInstalled) return;
  nats = await harness.startServer();
  await Promise.all([rig.node('n1'), rig.node('n2'), rig.node('n3')]);
  await waitUntil('every partition owned', () => rig.everyPartitionOwnedByLive(), 15_000);
}, 60_000);

afterAll(async () => {
  await rig.close();
  await harness.cleanup();
  rmSync(root, { recursive: true, force: true });
}, 60_000);

async function deposits(portfolio: string): Promise<number> {
  const owner = await rig.ownerNode(portfolio);
  const r = await rig.http(owner.url, 'GET', `/api/v1/portfolios/${portfolio}/events?type=CashDeposited&limit=100`);
  expect(r.status).toBe(200);
  return (r.body.events as unknown[]).length;
}

describe.skipIf(!natsServerInstalled)('non-trade commands are applied at most once per command_id', () => {
  it('a cash deposit that timed out (owner paused) names its command_id; resent with it after the take-over it is applied once', async () => {
    await rig.createPortfolios(['cmd-a'], lcg(3));
    const owners = await rig.kvOwners();
    const owner = rig.live().find((n) => n.id === owners[partitionOf('cmd-a', partitions)])!;
    const other = rig.live().find((n) => n !== owner)!;
    owner.signal('SIGSTOP');
    owner.paused = true;
    const first = await rig.http(other.url, 'POST', '/api/v1/portfolios/cmd-a/cash', { type: 'deposit', amount: 250.25 });
    expect(first.status, JSON.stringify(first.body)).toBe(503);
    expect(first.body.error.code).toBe('partition_unavailable');
    const commandId = first.body.error.command_id as string;
    expect(commandId).toMatch(/^[A-Za-z0-9._:/-]{1,128}$/);
    expect(first.body.error.message).toContain(`command_id=${commandId}`);
    await waitUntil('the partition moved to a live node', () => rig.everyPartitionOwnedByLive(), 10_000, 20);
    // The timed-out deposit is in the stream: the new owner applies it without being asked again.
    const newOwner = await rig.ownerNode('cmd-a');
    await waitUntil('the new owner applied the timed-out deposit', async () => (await rig.http(newOwner.url, 'GET', '/api/v1/portfolios/cmd-a')).body.cash === startingCash + 250.25, 10_000, 50);
    for (let i = 0; i < 2; i++) {
      const again = await rig.http(other.url, 'POST', `/api/v1/portfolios/cmd-a/cash?command_id=${encodeURIComponent(commandId)}`, { type: 'deposit', amount: 250.25 });
      expect(again.status, JSON.stringify(again.body)).toBe(200);
      expect(again.body.cash).toBe(startingCash + 250.25);
    }
    expect(await deposits('cmd-a')).toBe(1);
    owner.signal('SIGCONT');
    owner.paused = false;
    await waitUntil('the paused node saw it was fenced', () => /cluster: lost partition \d+ \(epoch \d+\); stopped serving it/.test(owner.out), 10_000);
  }, 60_000);

  it('a client-chosen command_id sent twice applies once; a malformed one is refused naming the field', async () => {
    await rig.createPortfolios(['cmd-b'], lcg(4));
    const [x, y] = rig.live();
    const a = await rig.http(x.url, 'POST', '/api/v1/portfolios/cmd-b/cash?command_id=w-1', { type: 'withdraw', amount: 100 });
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    const b = await rig.http(y.url, 'POST', '/api/v1/portfolios/cmd-b/cash?command_id=w-1', { type: 'withdraw', amount: 100 });
    expect(b.status, JSON.stringify(b.body)).toBe(200);
    expect(b.body.cash).toBe(startingCash - 100);
    const paused = await rig.http(y.url, 'POST', '/api/v1/portfolios/cmd-b/pause?command_id=p-1');
    expect(paused.body.state).toBe('paused');
    const resumed = await rig.http(x.url, 'POST', '/api/v1/portfolios/cmd-b/resume?command_id=r-1');
    expect(resumed.body.state).toBe('active');
    // The pause resent: already applied, answered with the portfolio as it is (active), not paused again.
    const pausedAgain = await rig.http(x.url, 'POST', '/api/v1/portfolios/cmd-b/pause?command_id=p-1');
    expect(pausedAgain.status).toBe(200);
    expect(pausedAgain.body.state).toBe('active');
    const bad = await rig.http(x.url, 'POST', '/api/v1/portfolios/cmd-b/cash?command_id=no%20spaces', { type: 'deposit', amount: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('command_id');
    const owner = await rig.ownerNode('cmd-b');
    const events = await rig.http(owner.url, 'GET', '/api/v1/portfolios/cmd-b/events?type=CashWithdrawn&limit=100');
    expect(events.body.events.length).toBe(1);
  }, 60_000);
});
