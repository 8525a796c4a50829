// Proves that a partition's consumer start settles when the partition is dropped while it loads
// (PartitionConsumer.stop() during one of start()'s awaits), on a real nats-server -js with a real engine
// (LMDB, shard workers): the start rejects with "dropped while loading". It neither stays pending (a
// stop during the first await left it pending, and the ownership round awaiting the claim with it) nor
// leaves an unhandled rejection on the way (one that came while start() still awaited the consumer
// killed two nodes: the cluster simulator with --nats-servers 3, seed 201, after a NATS leader restart,
// the lead's runs of the seventh session). Skipped, loudly, only when nats-server is not installed.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { PartitionConsumer, type ConsumerDeps } from '../src/cluster/commandConsumer.js';
import { ClusterCounters } from '../src/cluster/counters.js';
import { ensureStream } from '../src/cluster/node.js';
import { clusterSubjects as names } from '../src/cluster/subjects.js';
import { NatsHarness, natsServerInstalled, sleep, warnNatsMissing, type NatsServer } from './support/nats.js';

warnNatsMissing('test/cluster.consumerStop.test.ts');

const partitions = 2;
const harness = new NatsHarness('cluster-consumer-stop');
const root = mkdtempSync(join(tmpdir(), 'mtm-consumer-stop-'));
let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let engine: MtmEngine;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeAll(async () => {
  if (!natsServerInstalled) return;
  nats = await harness.startServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  await ensureStream(jsm, 60_000, 1);
  engine = await createEngine({ dataDir: join(root, 'data') });
  process.on('unhandledRejection', onUnhandled);
}, 60_000);

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await engine?.close();
  await nc?.close().catch(() => undefined);
  await harness.cleanup();
  rmSync(root, { recursive: true, force: true });
}, 60_000);

function consumer(guard?: ConsumerDeps['guard']): PartitionConsumer {
  const deps: ConsumerDeps = {
    nc,
    js: jetstream(nc),
    jsm,
    engine,
    current: () => true,
    fence: () => undefined,
    counters: { applied: 0, skipped: 0, badMessages: 0 },
    cluster: new ClusterCounters(partitions),
    partitions,
    log: () => undefined,
    guard,
  };
  return new PartitionConsumer(deps, 0, 1);
}

describe.skipIf(!natsServerInstalled)('a consumer dropped while it loads', () => {
  it('starts and stops cleanly when nothing drops it (the control)', async () => {
    const c = consumer();
    await c.start();
    expect(c.ready).toBe(true);
    c.stop();
    expect(c.ready).toBe(false);
  });

  it('rejects its start when stopped during the first await (it stayed pending, or resolved though stopped)', async () => {
    const c = consumer();
    const started = c.start();
    c.stop();
    const outcome = await Promise.race([started.then(() => 'resolved', (e: Error) => e.message), sleep(10_000).then(() => 'pending after 10 s')]);
    expect(outcome).toBe('partition 0 dropped while loading');
    expect(c.ready).toBe(false);
  });

  it('rejects its start without an unhandled rejection when stopped while it awaits (the seed 201 crash)', async () => {
    // A message the engine has not applied: the start is not ready before its loop catches up (an
    // empty partition is ready at once, before the guard, and nothing is left to reject).
    await jetstream(nc).publish(names.command(0), '{}');
    let c: PartitionConsumer | null = null;
    // The guard runs once the consumer exists, inside start(): the drop lands there, and a turn of the
    // event loop passes before start() goes on, as when NATS was slow to answer.
    c = consumer(async () => {
      c!.stop();
      await sleep(50);
      return null;
    });
    const before = unhandled.length;
    await expect(c.start()).rejects.toThrow('partition 0 dropped while loading');
    await sleep(50);
    expect(unhandled.slice(before)).toEqual([]);
    expect(c.ready).toBe(false);
  });
});
