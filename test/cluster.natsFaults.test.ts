// Proves the cluster's command path over NATS faults, with real processes: a three-server NATS cluster
// on loopback (the stream and the KV buckets with 3 replicas, --cluster-replicas 3) and three engine
// nodes (`mtm serve --nats <all three> ...`).
// - kill -9 of the command stream's leader mid-trade, then its restart on the same store: trades keep
//   being answered (retried with their trade ids where an answer was lost), and afterwards every
//   acknowledged trade is in its owner's log exactly once and cash and positions equal the oracle;
// - a restart of every nats-server (one after the other, each back before the next goes) mid-trade:
//   the same invariants, and every partition is owned by a live engine node again.
// Skipped, loudly, only when nats-server is not installed (CI installs it).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterSubjects as names } from '../src/cluster/subjects.js';
import { ClusterRig, lcg } from './support/clusterNodes.js';
import { NatsHarness, natsServerInstalled, waitUntil, warnNatsMissing, type NatsCluster } from './support/nats.js';

warnNatsMissing('test/cluster.natsFaults.test.ts');

const harness = new NatsHarness('cluster-nats-faults');
const root = mkdtempSync(join(tmpdir(), 'mtm-cluster-nats-faults-'));
let nats: NatsCluster;
// This file checks every acknowledged trade in its owner's log: a partition taken over from a shipped
// snapshot starts that log at the snapshot (docs/CLUSTER.md, "Take-over and dropping"), so these nodes
// ship none on a timer and every take-over here replays the stream; test/cluster.takeover.test.ts
// covers take-overs from snapshots (and the simulator runs with the timer on).
const noShippedSnapshots = ['--cluster-snapshot-ship-interval-ms', '0'];
const rig = new ClusterRig({ nats: () => nats.urls, root, partitions: 8, heartbeatMs: 250, ownerTimeoutMs: 2_000, replyTimeoutMs: 6_000, replicas: 3, extraArgs: noShippedSnapshots });
const portfolios = Array.from({ length: 6 }, (_, i) => `nf-pf${i}`);
const acknowledged = () => [...rig.acked.values()].reduce((s, l) => s + l.length, 0);

beforeAll(async () => {
  if (natsServerInstalled) nats = await harness.startCluster(3);
}, 60_000);

afterAll(async () => {
  await rig.close();
  await harness.cleanup();
  rmSync(root, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!natsServerInstalled)('three engine nodes on a three-server NATS cluster', () => {
  it('kill -9 and restart of the command stream leader mid-trade: nothing acknowledged lost or applied twice', async () => {
    await Promise.all([rig.node('a'), rig.node('b'), rig.node('c')]);
    await waitUntil('every partition owned', () => rig.everyPartitionOwnedByLive(), 20_000);
    await rig.createPortfolios(portfolios, lcg(23));
    const traders = rig.traders(500, 10, 'L');
    await waitUntil('some acknowledged', () => acknowledged() >= 15, 30_000, 10);
    const leaderName = await nats.streamLeader(names.commandStream);
    expect(leaderName).toBeDefined();
    const leader = nats.server(leaderName!);
    const killedAt = performance.now();
    await leader.kill();
    await waitUntil('another member leads the stream', async () => {
      const now = await nats.streamLeader(names.commandStream);
      return now !== undefined && now !== leaderName;
    }, 20_000, 100);
    console.log(`cluster test: stream leader ${leaderName} killed; a new leader after ${(performance.now() - killedAt).toFixed(0)} ms`);
    await leader.start();
    await traders;
    expect(await rig.checkInvariants()).toBeGreaterThan(portfolios.length);
  }, 150_000);

  it('a restart of every nats-server mid-trade: nothing acknowledged lost or applied twice, every partition owned again', async () => {
    const before = acknowledged();
    const traders = rig.traders(700, 8, 'R');
    await waitUntil('some acknowledged', () => acknowledged() >= before + 10, 30_000, 10);
    for (const s of nats.servers) await s.restart();
    await traders;
    await waitUntil('every partition owned by a live node', () => rig.everyPartitionOwnedByLive(), 20_000).catch(async (e: unknown) => {
      // Say what was seen: the KV view and each node's last lines.
      console.log('cluster test failure: KV owners', await rig.kvOwners());
      for (const n of rig.nodes) console.log(`cluster test failure: ${n.id} output tail:\n${n.out.slice(-3000)}`);
      throw e;
    });
    expect(await rig.checkInvariants()).toBeGreaterThan(portfolios.length);
  }, 150_000);
});
