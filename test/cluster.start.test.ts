// Proves that a node's start waits for JetStream instead of giving up at the first unanswered request
// (regression: CI run of a6e5508, test/cluster.natsFaults "b exited 1: timeout" — three nodes creating
// the replicated stream and buckets at once on a freshly formed NATS cluster, one request timed out and
// the node exited):
// - the retry policy (src/cluster/startSteps.ts) with an injected clock: transient errors (no answer,
//   no responders, JetStream temporarily unavailable) are retried with a growing wait until the start's
//   deadline, then refused naming the step; any other error is thrown at once;
// - with real processes: a node started against a three-server NATS cluster with one member up (no
//   JetStream quorum: every replicated request goes unanswered) keeps retrying, starts once the other two
//   members come up, owns every partition and books a trade; the same with --cluster-start-timeout-ms
//   1500 and no quorum is refused with a message naming the step, exit code 1.
// Skipped, loudly, only when nats-server is not installed (CI installs it).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NoRespondersError, RequestError, TimeoutError } from '@nats-io/nats-core';
import { afterAll, describe, expect, it } from 'vitest';
import { startStep, StartStepError, transientNatsError, type StartRetry } from '../src/cluster/startSteps.js';
import { ClusterRig, lcg } from './support/clusterNodes.js';
import { NatsHarness, natsServerInstalled, waitUntil, warnNatsMissing, type NatsCluster } from './support/nats.js';

warnNatsMissing('test/cluster.start.test.ts');

function fakeClock(deadlineMs: number): StartRetry & { waits: number[]; lines: string[] } {
  let t = 0;
  const waits: number[] = [];
  const lines: string[] = [];
  return { deadline: deadlineMs, now: () => t, sleep: async (ms) => { waits.push(ms); t += ms; }, log: (l) => lines.push(l), waits, lines };
}

describe('start steps: retry policy', () => {
  it('classifies NATS errors: no answer and no responders are transient, a refusal is not', () => {
    expect(transientNatsError(new TimeoutError())).toBe(true);
    expect(transientNatsError(new RequestError('request failed', { cause: new NoRespondersError('$JS.API.INFO') }))).toBe(true);
    expect(transientNatsError(Object.assign(new Error('JetStream system temporarily unavailable'), { name: 'JetStreamApiError', status: 503, code: 10008 }))).toBe(true);
    expect(transientNatsError(Object.assign(new Error('wrong last sequence: 4'), { name: 'JetStreamApiError', status: 400, code: 10071 }))).toBe(false);
    expect(transientNatsError(new Error('stream name already in use with a different configuration'))).toBe(false);
    expect(transientNatsError('timeout')).toBe(false);
  });

  it('retries a transient error with a growing wait and returns the first answer', async () => {
    const clock = fakeClock(60_000);
    let calls = 0;
    const value = await startStep('creating stream X', async () => {
      if (++calls < 5) throw new TimeoutError();
      return 42;
    }, clock);
    expect(value).toBe(42);
    expect(calls).toBe(5);
    expect(clock.waits).toEqual([100, 200, 400, 800]);
    expect(clock.lines[0]).toBe('cluster: creating stream X: timeout; attempt 2 in 100 ms');
  });

  it('gives up at the deadline naming the step, the attempts and the last error', async () => {
    const clock = fakeClock(5_000);
    const err = await startStep('creating KV bucket B', () => Promise.reject(new TimeoutError()), clock).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartStepError);
    expect((err as StartStepError).message).toBe('cluster: JetStream did not answer creating KV bucket B (6 attempts before --cluster-start-timeout-ms ran out; last error: timeout)');
    expect(clock.waits).toEqual([100, 200, 400, 800, 1_600]);
  });

  it('throws any other error at once', async () => {
    const clock = fakeClock(60_000);
    const refusal = new Error('stream name already in use with a different configuration');
    await expect(startStep('creating stream X', () => Promise.reject(refusal), clock)).rejects.toBe(refusal);
    expect(clock.waits).toEqual([]);
  });
});

const harness = new NatsHarness('cluster-start');
const root = mkdtempSync(join(tmpdir(), 'mtm-cluster-start-'));
let nats: NatsCluster;
const rig = new ClusterRig({ nats: () => nats.urls, root, partitions: 4, heartbeatMs: 250, ownerTimeoutMs: 2_000, replyTimeoutMs: 6_000, replicas: 3 });

afterAll(async () => {
  await rig.close();
  await harness.cleanup();
  rmSync(root, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!natsServerInstalled)('a node started before its NATS cluster has a JetStream quorum', () => {
  it('is refused after --cluster-start-timeout-ms, naming the step', async () => {
    nats = await harness.defineCluster(3, 'quorumless');
    nats.servers[0].spawnProcess();
    const n = rig.add('early');
    n.extraArgs = ['--cluster-start-timeout-ms', '1500'];
    const code = await n.start();
    expect(code, n.out).toBe(1);
    expect(n.out).toMatch(/cluster: JetStream did not answer (the JetStream account info|creating stream mtm_commands) \(\d+ attempts? before --cluster-start-timeout-ms ran out; last error: /);
    await nats.servers[0].kill();
  }, 60_000);

  it('waits for the quorum, then starts, owns every partition and books a trade', async () => {
    nats = await harness.defineCluster(3, 'late');
    nats.servers[0].spawnProcess();
    const n = rig.add('patient');
    const started = n.start();
    await waitUntil('the node retries a start step', () => /attempt \d+ in \d+ ms/.test(n.out), 30_000);
    nats.servers[1].spawnProcess();
    nats.servers[2].spawnProcess();
    await Promise.all(nats.servers.map((s) => s.waitReady()));
    expect(await started, n.out).toBeNull();
    await waitUntil('every partition owned', () => rig.everyPartitionOwnedByLive(), 30_000);
    await rig.createPortfolios(['cs-pf0'], lcg(7));
    const r = await rig.sendTrade(lcg(8), 'cs-pf0', { trade_id: 'cs-t1', symbol: 'AAPL', side: 'buy', quantity: 10, price: 101.25 });
    expect(r.applied).toBe(true);
  }, 120_000);
});
