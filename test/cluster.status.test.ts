// Proves `mtm cluster status` (src/cluster/status.ts, src/cli/clusterStatus.ts, run from dist/) against a
// real nats-server holding the cluster's KV buckets in the layout the ownership station writes
// (settings {"partitions": N}, presence keys node.<id>, ownership keys p<N> = {node, instance, epoch}) and
// a real StatusResponder answering for node a (its ownership a fixed assignment) with a consumer lag:
// - it prints every node, when each was last seen, the partitions each owns (as ranges), their lag, the
//   unowned and malformed partitions, and flags a node that does not answer;
// - clusterReadings counts owned and unowned partitions and sums the lag over owned partitions only;
// - no cluster on the NATS, an unreachable NATS and bad arguments give a clear message and exit code.
// Skipped, loudly, only when nats-server is not installed.

import { spawn } from 'node:child_process';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterCounters, clusterReadings } from '../src/cluster/counters.js';
import { StatusResponder, ranges } from '../src/cluster/status.js';
import { clusterSubjects as names } from '../src/cluster/subjects.js';
import { distFile } from '../src/projectRoot.js';
import { Assignment } from './support/fixedOwnership.js';
import { NatsHarness, freePort, natsServerInstalled, warnNatsMissing, type NatsServer } from './support/nats.js';

warnNatsMissing('test/cluster.status.test.ts');

const harness = new NatsHarness('cluster-status');
let server: NatsServer;
let empty: NatsServer;
let nc: NatsConnection;
let responder: StatusResponder;
const partitions = 8;

/** Runs the CLI without blocking this process: the responder above must answer while it runs. */
async function mtm(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [distFile('src/cli/main.js'), ...args], { env: { ...process.env, MTM_NATS: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const status = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  clearTimeout(timer);
  return { status, stdout, stderr };
}

beforeAll(async () => {
  if (!natsServerInstalled) return;
  server = await harness.startServer();
  empty = await harness.startServer();
  nc = await connect({ servers: server.url });
  const kvm = new Kvm(jetstream(nc));
  const cluster = await kvm.create(names.clusterBucket, { history: 1 });
  const parts = await kvm.create(names.ownershipBucket, { history: 1 });
  await cluster.create(names.settingsKey, JSON.stringify({ partitions }));
  await cluster.create(names.nodeKey('a'), JSON.stringify({ instance: 'ia', partitions }));
  await cluster.create(names.nodeKey('b'), JSON.stringify({ instance: 'ib', partitions }));
  // a: 0-3 and 6, b: 4, nobody: 5 and 7; p7 malformed.
  const owner = (p: number): string | undefined => (p <= 3 || p === 6 ? 'a' : p === 4 ? 'b' : undefined);
  for (let p = 0; p < 7; p++) {
    const o = owner(p);
    if (o !== undefined) await parts.create(names.partitionKey(p), JSON.stringify({ node: o, instance: `i${o}`, epoch: 1 }));
  }
  await parts.create(names.partitionKey(7), '{not json');
  const assignment = new Assignment(partitions, owner);
  const view = assignment.view('a');
  const counters = new ClusterCounters(partitions);
  counters.consumerPending[2] = 5;
  counters.consumerPending[6] = 2;
  // Pending on a partition a does not own is not a's lag.
  counters.consumerPending[4] = 100;
  counters.fencedWrites = 1;
  responder = new StatusResponder(nc, view, counters, () => clusterReadings(view, counters));
  responder.start();
  await nc.flush();
});

afterAll(async () => {
  responder?.close();
  await nc?.close();
  await harness.cleanup();
});

describe.skipIf(!natsServerInstalled)('mtm cluster status', () => {
  it('prints nodes, owned partitions, lag, unowned and malformed entries', async () => {
    const r = await mtm('cluster', 'status', '--nats', server.url, '--wait-ms', '500');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('cluster: 2 node(s), 8 partitions, 1 unowned, 1 malformed');
    expect(lines.find((l) => l.startsWith('a '))).toMatch(/^a\s+\d+\.\d s ago\s+5\s+7\s+0-3,6\s*$/);
    expect(lines.find((l) => l.startsWith('b '))).toMatch(/^b\s+\d+\.\d s ago\s+1\s+\?\s+4\s+did not answer$/);
    expect(r.stdout).toContain('unowned: 5\n');
    expect(r.stdout).toContain('malformed ownership entries: 7\n');
    expect(r.stdout).toContain('lag of a by partition: 0:0 1:0 2:5 3:0 6:2\n');
  });

  it('reads what /metrics reads: owned, unowned, lag over owned partitions only', () => {
    const s = responder.status();
    expect(s.owned).toEqual([0, 1, 2, 3, 6]);
    expect(s.lag).toEqual([0, 0, 5, 0, 2]);
    expect(s.readings).toMatchObject({ nodeId: 'a', partitions: 8, partitionsOwned: 5, partitionsUnowned: 2, consumerLagMessages: 7, fencedWrites: 1 });
    expect(ranges([0, 1, 2, 5, 7, 8])).toBe('0-2,5,7-8');
    expect(ranges([])).toBe('-');
  });

  it('says so when there is no cluster, NATS is unreachable or the arguments are wrong', async () => {
    const none = await mtm('cluster', 'status', `--nats=${empty.url}`, '--wait-ms=200');
    expect(none).toMatchObject({ status: 0, stdout: 'no mtm cluster found on this NATS (no ownership bucket, no node answered)\n' });
    const down = await mtm('cluster', 'status', '--nats', `nats://127.0.0.1:${await freePort()}`);
    expect(down.status).toBe(1);
    expect(down.stderr).toContain('mtm cluster status: cannot connect to NATS at nats://127.0.0.1:');
    expect(await mtm('cluster', 'status')).toMatchObject({ status: 2, stderr: expect.stringContaining('--nats is required') });
    expect(await mtm('cluster', 'status', '--nats', server.url, '--wait-ms', '0')).toMatchObject({ status: 2, stderr: expect.stringContaining('--wait-ms must be a whole number of ms in 1..60000, got "0"') });
    expect(await mtm('cluster', 'stats')).toMatchObject({ status: 2, stderr: expect.stringContaining('unknown subcommand "stats"') });
  });
});
