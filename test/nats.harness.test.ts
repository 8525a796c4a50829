// Proves the NATS test harness (test/support/nats.ts) that every cluster test stands on, with real
// nats-server processes on loopback:
// - one `nats-server -js`: a JetStream publish acknowledged before a graceful restart is still in the
//   stream after it (same store directory), the client reconnects by itself, and the stream survives a
//   kill -9 and accepts publishes after the restart; a SIGSTOPped server answers nothing until SIGCONT;
// - a three-server cluster: a stream with 3 replicas gets a leader and two current replicas; after
//   kill -9 of that leader another member leads and publishes are acknowledged; the killed member
//   restarts on its store and the cluster is healthy again;
// - cleanup kills every server, even one left paused.
// Skipped, loudly, only when nats-server is not installed (CI installs it via apt-get).

import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { NatsHarness, natsServerInstalled, waitUntil, warnNatsMissing } from './support/nats.js';

warnNatsMissing('test/nats.harness.test.ts');

const harness = new NatsHarness('nats-harness');
const connections: NatsConnection[] = [];
afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
  await harness.cleanup();
});

async function client(servers: string | string[]): Promise<NatsConnection> {
  const nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  connections.push(nc);
  return nc;
}

const text = new TextEncoder();
const electionTimeoutMs = 15_000;

describe.skipIf(!natsServerInstalled)('one nats-server -js', () => {
  it('keeps an acknowledged publish across a restart, survives kill -9, and stalls while paused', async () => {
    const server = await harness.startServer();
    expect(server.state).toBe('running');
    const nc = await client(server.url);
    const jsm = await jetstreamManager(nc, { timeout: 1000 });
    await jsm.streams.add({ name: 'H', subjects: ['h.>'] });
    const js = jetstream(nc);
    const first = await js.publish('h.1', text.encode('one'), { msgID: 't-1' });
    expect(first.seq).toBe(1);

    await server.restart();
    expect(server.lastExit?.signal ?? null).toBe(null);
    await waitUntil('the client reconnected', async () => (await jsm.streams.info('H')).state.messages === 1, 10_000);
    const stored = await jsm.streams.getMessage('H', { seq: 1 });
    expect(stored?.string()).toBe('one');
    const second = await js.publish('h.1', text.encode('two'), { msgID: 't-2' });
    expect(second.seq).toBe(2);
    // The same message id inside the dedup window is acknowledged as a duplicate, not stored again.
    const again = await js.publish('h.1', text.encode('two'), { msgID: 't-2' });
    expect(again.duplicate).toBe(true);
    expect(again.seq).toBe(2);

    await server.restart(true);
    expect(server.lastExit?.signal).toBe('SIGKILL');
    expect(existsSync(server.storeDir)).toBe(true);
    await waitUntil('the stream is back after kill -9', async () => (await jsm.streams.info('H')).config.name === 'H', 10_000);
    const third = await js.publish('h.1', text.encode('three'), { msgID: 't-3' });
    expect(third.seq).toBeGreaterThanOrEqual(2);

    server.pause();
    expect(server.state).toBe('paused');
    await expect(nc.request('nobody.here', text.encode('?'), { timeout: 500 })).rejects.toThrow();
    server.resume();
    expect(server.state).toBe('running');
    await server.waitReady();
    const after = await js.publish('h.1', text.encode('four'), { msgID: 't-4' });
    expect(after.seq).toBe(third.seq + 1);
  });
});

describe.skipIf(!natsServerInstalled)('a three-server nats cluster on loopback', () => {
  it('elects a leader for a 3-replica stream, and another one after kill -9 of it', async () => {
    const cluster = await harness.startCluster(3);
    expect(cluster.urls).toHaveLength(3);
    const routes = await cluster.servers[0].monitor('routez');
    expect(routes.num_routes).toBe(2);

    const nc = await client(cluster.urls);
    const jsm = await jetstreamManager(nc, { timeout: 1000 });
    await jsm.streams.add({ name: 'C', subjects: ['c.>'], num_replicas: 3 });
    const js = jetstream(nc);
    expect((await js.publish('c.1', text.encode('one'), { msgID: 'c-1' })).seq).toBe(1);

    await waitUntil('the stream has a leader and two current replicas', async () => {
      const info = await jsm.streams.info('C');
      return info.cluster?.leader !== undefined && (info.cluster.replicas ?? []).filter((r) => r.current).length === 2;
    }, electionTimeoutMs);
    const leader = (await jsm.streams.info('C')).cluster?.leader as string;
    expect(cluster.servers.map((s) => s.name)).toContain(leader);
    expect(await cluster.streamLeader('C')).toBe(leader);
    expect(await cluster.metaLeader()).toBeDefined();

    const victim = cluster.server(leader);
    await victim.kill();
    expect(victim.state).toBe('stopped');
    let next: string | undefined;
    await waitUntil('another member leads the stream', async () => {
      next = await cluster.streamLeader('C');
      return next !== undefined && next !== leader;
    }, electionTimeoutMs);
    expect(next).not.toBe(leader);
    await waitUntil('a publish is acknowledged by the new leader', async () => {
      const ack = await js.publish('c.1', text.encode('two'), { msgID: 'c-2', timeout: 1000 });
      return ack.seq === 2;
    }, electionTimeoutMs);

    await victim.start();
    await waitUntil('the restarted member is a current replica again', async () => {
      const info = await jsm.streams.info('C');
      return (info.cluster?.replicas ?? []).filter((r) => r.current).length === 2 && info.state.messages === 2;
    }, electionTimeoutMs);
  });

  it('cleanup kills every server, even a paused one', async () => {
    const extra = new NatsHarness('nats-harness-cleanup');
    const server = await extra.startServer();
    const pid = server.pid as number;
    server.pause();
    await extra.cleanup();
    expect(server.state).toBe('stopped');
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
