// The simulator's cluster mode (docs/SIMULATION.md, "Cluster mode"): one seed drives several real engine
// nodes (`mtm serve --nats` processes from dist/) on real nats-server processes (test/support/nats.ts)
// through trades sent to random nodes (some resent with an id already acknowledged), ticks, and faults:
// kill -9 of a node and its restart on the same data dir, SIGSTOP of a node past its owner timeout then
// SIGCONT (it must be fenced), kill -9 and restart of a nats-server: the only one, or with natsServers 3
// (a three-server JetStream cluster, the stream and buckets with 3 replicas) the command stream's
// leader or, by the seed, another member. After each fault settles (every
// partition owned by a live node, every live node ready), every trade whose answer was lost is sent
// again with the same id until acknowledged, and the invariants are checked:
// - each partition has exactly one owner in the ownership bucket, and it is a live node;
// - every acknowledged trade is applied exactly once: each portfolio's positions and cash, read from
//   its owner, equal an exact decimal recomputation (test/oracle) of its acknowledged trades.
// The seed fixes the schedule (which step sends what where, which fault when); process timing is real,
// so a failing seed replays the same schedule, not the same interleaving.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { readClusterStatus } from '../../src/cluster/status.js';
import { partitionOf } from '../../src/cluster/partition.js';
import { distFile } from '../../src/projectRoot.js';
import { expectClose } from '../oracle/compare.js';
import { Dec } from '../oracle/ledger.js';
import { NatsHarness, freePort, sleep, waitUntil, type NatsCluster, type NatsServer } from '../support/nats.js';
import { clusterSubjects } from '../../src/cluster/subjects.js';
import { Rng } from './rng.js';

export interface ClusterFaultRates {
  kill9: number;
  pause: number;
  natsKill: number;
  /** A trade step resends an acknowledged trade (same id, same body) to a random node. */
  resend: number;
}

export const clusterDefaultRates: ClusterFaultRates = { kill9: 0.04, pause: 0.03, natsKill: 0.02, resend: 0.15 };

export interface ClusterSimConfig {
  seed: number;
  steps: number;
  nodes: number;
  partitions: number;
  portfolios: number;
  symbols: number;
  rates: ClusterFaultRates;
  heartbeatMs: number;
  ownerTimeoutMs: number;
  /** How long a fault may take to settle (owners back, nodes ready, lost answers retried). */
  settleTimeoutMs: number;
  /** 1: one nats-server; 3: a three-server NATS cluster (replicas 3), faults kill its stream leader or a member. */
  natsServers: 1 | 3;
  log: (line: string) => void;
}

export const clusterSimDefaults: Omit<ClusterSimConfig, 'seed' | 'steps'> = {
  nodes: 3,
  partitions: 8,
  portfolios: 6,
  symbols: 4,
  rates: clusterDefaultRates,
  heartbeatMs: 200,
  ownerTimeoutMs: 1_200,
  settleTimeoutMs: 60_000,
  natsServers: 1,
  log: () => undefined,
};

export interface ClusterSimResult {
  ok: boolean;
  seed: number;
  natsServers: 1 | 3;
  /** Steps asked for (the replay command) and steps run. */
  stepsPlanned: number;
  steps: number;
  /** The step and invariant of the first failure. */
  failure: { step: number; invariant: string; message: string } | null;
  acked: number;
  resent: number;
  retried: number;
  /** natsLeaderKill: of the natsKill faults, those that killed the command stream's leader (natsServers 3). */
  faults: { kill9: number; pause: number; natsKill: number; natsLeaderKill: number };
}

interface Trade {
  portfolio: string;
  body: { trade_id: string; symbol: string; side: 'buy'; quantity: number; price: number };
}

class NodeProcess {
  child: ChildProcess | null = null;
  tail = '';
  paused = false;

  constructor(readonly id: string, readonly port: number, readonly args: string[]) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.child !== null;
  }

  start(): void {
    // Only the flags configure it: no MTM_* variable of the caller's environment leaks in.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MTM_')));
    const child = spawn(process.execPath, [distFile('src/cli/main.js'), ...this.args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child = child;
    this.paused = false;
    const keep = (d: Buffer): void => {
      this.tail = (this.tail + d.toString('utf8')).slice(-4_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  signal(s: 'SIGSTOP' | 'SIGCONT'): void {
    this.child?.kill(s);
    this.paused = s === 'SIGSTOP';
  }
}

class Failure extends Error {
  constructor(readonly invariant: string, message: string) {
    super(message);
  }
}

const portfolioOf = (i: number): string => `sim-${i}`;
/** A trade's acknowledgement: 201 when booked, 200 when answered again for an id already booked. */
const answered = (status: number): boolean => status === 200 || status === 201;
const symbolOf = (i: number): string => `SIM${i}`;

async function request(url: string, method: string, body: unknown, timeoutMs: number): Promise<{ status: number; json: any } | null> {
  try {
    const r = await fetch(url, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    const text = await r.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: r.status, json };
  } catch {
    // The node is down, paused or slow: the answer is lost (the command may or may not be applied).
    return null;
  }
}

export async function runClusterSim(config: Partial<ClusterSimConfig> & { seed: number; steps: number }): Promise<ClusterSimResult> {
  const c: ClusterSimConfig = { ...clusterSimDefaults, ...config };
  const rng = new Rng(c.seed);
  const result: ClusterSimResult = { ok: true, seed: c.seed, natsServers: c.natsServers, stepsPlanned: c.steps, steps: 0, failure: null, acked: 0, resent: 0, retried: 0, faults: { kill9: 0, pause: 0, natsKill: 0, natsLeaderKill: 0 } };
  const harness = new NatsHarness(`cluster-sim-${c.seed}`);
  const nodes: NodeProcess[] = [];
  const acked: Trade[] = [];
  let lost: Trade[] = [];
  let nats: NatsServer | null = null;
  let natsCluster: NatsCluster | null = null;
  /** Every nats-server's client URL (a node and the checks get all of them, so they fail over). */
  const natsUrls = (): string[] => (natsCluster !== null ? natsCluster.urls : [(nats as NatsServer).url]);
  let step = 0;
  const requestTimeoutMs = 5_000;

  const live = (): NodeProcess[] => nodes.filter((n) => n.alive && !n.paused);

  /** Every partition owned by a live node (as the bucket says) and every live node ready. */
  const settle = async (why: string): Promise<void> => {
    const deadline = Date.now() + c.settleTimeoutMs;
    for (const n of live()) {
      await waitUntil(`${n.id} is ready after ${why}`, async () => {
        if (!n.alive) throw new Error(`${n.id} exited: ${n.tail.slice(-500)}`);
        return (await request(`${n.url}/ready`, 'GET', undefined, 1_000))?.status === 200;
      }, Math.max(1, deadline - Date.now()), 100);
    }
    const nc = await connect({ servers: natsUrls(), maxReconnectAttempts: -1 });
    try {
      const ids = new Set(live().map((n) => n.id));
      await waitUntil(`every partition is owned by a live node after ${why}`, async () => {
        // Long enough for a loaded node to answer (its answer says what it serves).
        const s = await readClusterStatus(nc, 300);
        if (s.partitions !== c.partitions || !s.owners.every((o) => o !== undefined && ids.has(o))) return false;
        // Settled means the fair share is reached too: a node that came back takes partitions from
        // the others after this point otherwise, and a partition between its release and its claim
        // has no owner for a moment (seed 101 caught check() in that moment: a handover, not a fault).
        const owned = new Map<string, number>();
        for (const o of s.owners) owned.set(o as string, (owned.get(o as string) ?? 0) + 1);
        const share = Math.ceil(c.partitions / ids.size);
        if (![...ids].every((id) => (owned.get(id) ?? 0) <= share)) return false;
        // And every live node serves what the bucket gives it (its own status answer): after a NATS
        // restart a node's lease may have run out while the bucket still names it, until its next
        // claim (seeds 201 and 203 with --nats-servers 3 caught check() in that moment: 503 "owner: none").
        return [...ids].every((id) => {
          const node = s.nodes.find((n) => n.id === id);
          return node?.answer !== undefined && node.answer.owned.join(',') === node.owned.join(',');
        });
      }, Math.max(1, deadline - Date.now()), 200);
    } finally {
      await nc.close();
    }
    // Lost answers: the same trade again, same id, until acknowledged (applied once whatever happened).
    const retry = lost;
    lost = [];
    for (const t of retry) {
      // Round-robin, not the seed's stream: how many attempts a retry takes depends on timing.
      for (let attempt = 0; ; attempt++) {
        const n = live()[attempt % live().length];
        const r = await request(`${n.url}/api/v1/portfolios/${t.portfolio}/trades`, 'POST', t.body, requestTimeoutMs);
        if (r !== null && answered(r.status)) break;
        if (r !== null && r.status < 500) throw new Failure('a retried trade is accepted', `${t.body.trade_id} on ${n.id}: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
        if (Date.now() > deadline) throw new Failure('a retried trade is accepted', `${t.body.trade_id}: no acknowledgement before the settle deadline (${why})`);
        await sleep(200);
      }
      result.retried++;
      acked.push(t);
    }
  };

  const check = async (): Promise<void> => {
    const nc = await connect({ servers: natsUrls(), maxReconnectAttempts: -1 });
    let owners: (string | undefined)[] = [];
    try {
      // A status read can time out right after a nats-server restart (a KV key listing that never
      // answers; CI, session 4): read again until one answers, within the settle bound, as settle does.
      await waitUntil('the cluster status answers', async () => {
        owners = (await readClusterStatus(nc, 20)).owners;
        return true;
      }, c.settleTimeoutMs, 200);
    } finally {
      await nc.close();
    }
    const ids = new Set(live().map((n) => n.id));
    for (let p = 0; p < c.partitions; p++) {
      if (owners[p] === undefined || !ids.has(owners[p] as string)) throw new Failure('each partition has exactly one live owner', `partition ${p} owner ${String(owners[p])}`);
    }
    for (let i = 0; i < c.portfolios; i++) {
      const id = portfolioOf(i);
      const owner = nodes.find((n) => n.id === owners[partitionOf(id, c.partitions)]) as NodeProcess;
      const r = await request(`${owner.url}/api/v1/portfolios/${id}`, 'GET', undefined, requestTimeoutMs);
      if (r === null || r.status !== 200) throw new Failure('the owner serves its portfolio', `${id} on ${owner.id}: ${r === null ? 'no answer' : `${r.status} ${JSON.stringify(r.json).slice(0, 200)}`}`);
      const mine = acked.filter((t) => t.portfolio === id);
      let cash = new Dec(1_000_000);
      const qty = new Map<string, Dec>();
      for (const t of mine) {
        cash = cash.minus(new Dec(t.body.quantity).times(t.body.price));
        qty.set(t.body.symbol, (qty.get(t.body.symbol) ?? new Dec(0)).plus(t.body.quantity));
      }
      const snap = r.json as { cash: number; positions: { symbol: string; quantity: number }[] };
      const label = `${id} after ${mine.length} acknowledged trades`;
      try {
        expectClose(snap.cash, cash, `${label}: cash`);
      } catch (e) {
        throw new Failure('every acknowledged trade is applied exactly once', (e as Error).message);
      }
      const got = new Map(snap.positions.map((p) => [p.symbol, p.quantity]));
      for (const [symbol, q] of qty) {
        if (got.get(symbol) !== q.toNumber()) throw new Failure('every acknowledged trade is applied exactly once', `${label}: ${symbol} quantity ${String(got.get(symbol))}, want ${q.toString()}`);
      }
      if (got.size !== qty.size) throw new Failure('every acknowledged trade is applied exactly once', `${label}: positions ${[...got.keys()].join(',')}, want ${[...qty.keys()].join(',')}`);
    }
  };

  try {
    if (c.natsServers === 3) natsCluster = await harness.startCluster(3);
    else nats = await harness.startServer();
    const dataRoot = join(harness.rootDir, 'nodes');
    for (let i = 0; i < c.nodes; i++) {
      const port = await freePort();
      const data = join(dataRoot, `n${i}`);
      mkdirSync(data, { recursive: true });
      const n = new NodeProcess(`n${i}`, port, [
        'serve', '--port', String(port), '--data', data, '--workers', '1', '--nats', natsUrls().join(','), '--node-id', `n${i}`, '--partitions', String(c.partitions),
        '--cluster-heartbeat-ms', String(c.heartbeatMs), '--cluster-owner-timeout-ms', String(c.ownerTimeoutMs), '--stats-interval-ms', '0',
        '--cluster-replicas', String(c.natsServers),
      ]);
      nodes.push(n);
      n.start();
    }
    await settle('the start');
    for (let i = 0; i < c.portfolios; i++) {
      await waitUntil(`portfolio ${portfolioOf(i)} is created`, async () => {
        const r = await request(`${live()[i % live().length].url}/api/v1/portfolios`, 'POST', { id: portfolioOf(i), cash: 1_000_000 }, requestTimeoutMs);
        return r !== null && (r.status === 201 || r.status === 200 || (r.status === 409 && r.json?.error?.code === 'portfolio_exists'));
      }, c.settleTimeoutMs, 200);
    }

    for (step = 1; step <= c.steps; step++) {
      result.steps = step;
      const kind = rng.weighted({ trade: 1 - c.rates.kill9 - c.rates.pause - c.rates.natsKill, kill9: c.rates.kill9, pause: c.rates.pause, natsKill: c.rates.natsKill });
      if (kind === 'trade') {
        const n = rng.pick(live());
        if (acked.length > 0 && rng.chance(c.rates.resend)) {
          const t = rng.pick(acked);
          const r = await request(`${n.url}/api/v1/portfolios/${t.portfolio}/trades`, 'POST', t.body, requestTimeoutMs);
          c.log(`step ${step}: resend ${t.body.trade_id} to ${n.id}: ${r?.status ?? 'lost'}`);
          if (r !== null && !answered(r.status) && r.status < 500) throw new Failure('a resent trade is answered as before', `${t.body.trade_id} on ${n.id}: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
          result.resent++;
          continue;
        }
        const t: Trade = {
          portfolio: portfolioOf(rng.int(0, c.portfolios - 1)),
          body: { trade_id: `s${c.seed}-${step}`, symbol: symbolOf(rng.int(0, c.symbols - 1)), side: 'buy', quantity: rng.int(1, 20), price: rng.decimal(1, 500, 2) },
        };
        const r = await request(`${n.url}/api/v1/portfolios/${t.portfolio}/trades`, 'POST', t.body, requestTimeoutMs);
        c.log(`step ${step}: trade ${t.body.trade_id} ${t.portfolio} to ${n.id}: ${r?.status ?? 'lost'}`);
        if (r !== null && answered(r.status)) acked.push(t);
        else if (r === null || r.status >= 500) lost.push(t);
        else throw new Failure('a valid trade is accepted', `${t.body.trade_id} on ${n.id}: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
        continue;
      }
      if (kind === 'kill9') {
        const n = rng.pick(nodes.filter((x) => x.alive));
        c.log(`step ${step}: kill -9 ${n.id}`);
        if (n.paused) n.signal('SIGCONT');
        await n.kill();
        result.faults.kill9++;
        // The others take its partitions, then it comes back on the same data dir.
        if (live().length > 0) await settle(`kill -9 of ${n.id}`);
        n.start();
        await settle(`the restart of ${n.id}`);
      } else if (kind === 'pause') {
        const n = rng.pick(live());
        c.log(`step ${step}: SIGSTOP ${n.id} for ${c.ownerTimeoutMs * 2} ms`);
        n.signal('SIGSTOP');
        result.faults.pause++;
        await sleep(c.ownerTimeoutMs * 2);
        n.signal('SIGCONT');
        await settle(`SIGSTOP/SIGCONT of ${n.id}`);
      } else if (natsCluster !== null) {
        // The command stream's leader (when a member names one) or, by the seed, any member.
        const leader = await natsCluster.streamLeader(clusterSubjects.commandStream);
        // Both draws every time: the schedule does not depend on whether a member named a leader.
        const byLeader = rng.chance(0.5);
        const member = rng.pick([...natsCluster.servers]);
        const victim = byLeader && leader !== undefined ? natsCluster.server(leader) : member;
        c.log(`step ${step}: kill -9 and restart nats-server ${victim.name}${victim.name === leader ? ' (the command stream leader)' : ''}`);
        await victim.restart(true);
        result.faults.natsKill++;
        if (victim.name === leader) result.faults.natsLeaderKill++;
        await settle(`the restart of nats-server ${victim.name}`);
      } else {
        c.log(`step ${step}: kill -9 and restart the nats-server`);
        await (nats as NatsServer).restart(true);
        result.faults.natsKill++;
        await settle('the nats-server restart');
      }
      await check();
    }
    await settle('the last step');
    await check();
    result.acked = acked.length;
  } catch (e) {
    result.ok = false;
    result.acked = acked.length;
    // 30 lines: a node that died of an uncaught error prints its stack, then the message is further up
    // (a CI failure of seed 201 showed only the last frames of two dead nodes).
    const tails = nodes.map((n) => `--- ${n.id} ---\n${n.tail.split('\n').slice(-30).join('\n')}`).join('\n');
    result.failure =
      e instanceof Failure ? { step, invariant: e.invariant, message: e.message } : { step, invariant: 'liveness', message: `${(e as Error).message}\n${tails}` };
  } finally {
    for (const n of nodes) {
      if (n.paused) n.signal('SIGCONT');
      await n.kill();
    }
    await harness.cleanup();
  }
  return result;
}

export function formatClusterFailure(r: ClusterSimResult): string {
  if (r.failure === null) return `seed ${r.seed}: ok (${r.steps} steps, ${r.acked} trades acknowledged, ${r.resent} resent, ${r.retried} retried after lost answers, faults ${JSON.stringify(r.faults)})`;
  return `seed ${r.seed}: FAILED at step ${r.failure.step}: ${r.failure.invariant}\n${r.failure.message}\nreplay: npm run simulate -- --cluster${r.natsServers === 3 ? ' --nats-servers 3' : ''} --seed ${r.seed} --steps ${r.stepsPlanned}`;
}
