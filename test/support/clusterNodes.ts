// Engine nodes as real `mtm serve --nats ...` child processes, and the trading and checking the cluster
// tests share: trades sent to random live nodes (one at a time per portfolio, so the acknowledged order
// is the applied order; a retry keeps its trade id), and the invariants after a fault: one owner per
// partition, agreed by the KV bucket and every node's own answer; every acknowledged trade exactly once
// in its owner's log; cash and positions equal to the exact oracle (test/oracle/).
// Needs `npm run build` (the nodes run dist/src/cli/main.js).

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { expect } from 'vitest';
import { parsePartitionValue } from '../../src/cluster/ownership.js';
import { readClusterStatus } from '../../src/cluster/status.js';
import { partitionOf } from '../../src/cluster/partition.js';
import { clusterSubjects as names } from '../../src/cluster/subjects.js';
import { expectClose } from '../oracle/compare.js';
import { Ledger } from '../oracle/ledger.js';
import { freePort, sleep, waitUntil } from './nats.js';

const cli = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
/** Output kept per node for assertions and failure messages (oldest dropped past it). */
const outBytesMax = 1_000_000;

export interface RigOptions {
  /** NATS URLs every node gets (all members of a NATS cluster, so a node fails over). */
  nats: () => string[];
  root: string;
  partitions: number;
  heartbeatMs: number;
  ownerTimeoutMs: number;
  replyTimeoutMs: number;
  replicas: number;
  /** More `mtm serve` flags every node gets (e.g. --cluster-snapshot-ship-interval-ms). */
  extraArgs?: string[];
}

export class EngineNode {
  child: ChildProcess | null = null;
  out = '';
  url = '';
  exit: Promise<number | null> = Promise.resolve(null);
  paused = false;
  /** More flags for this node only (after the rig's). */
  extraArgs: string[] = [];

  constructor(
    private readonly o: RigOptions,
    readonly id: string,
    readonly dataDir: string,
    readonly partitionCount = o.partitions,
  ) {}

  /** Starts the process; resolves null when it listens, or with its exit code when it refuses to start. */
  async start(): Promise<number | null> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    const o = this.o;
    const args = [cli, 'serve', '--nats', o.nats().join(','), '--node-id', this.id, '--partitions', String(this.partitionCount), '--port', String(port), '--data', this.dataDir];
    args.push('--workers', '1', '--stats-interval-ms', '0', '--cluster-replicas', String(o.replicas));
    args.push('--cluster-heartbeat-ms', String(o.heartbeatMs), '--cluster-owner-timeout-ms', String(o.ownerTimeoutMs), '--cluster-command-reply-timeout-ms', String(o.replyTimeoutMs));
    args.push(...(o.extraArgs ?? []), ...this.extraArgs);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const take = (b: Buffer) => {
      this.out += b.toString('utf8');
      if (this.out.length > outBytesMax) this.out = this.out.slice(-outBytesMax / 2);
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    this.exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const listening = waitUntil(`${this.id} listens`, () => this.out.includes('mtm listening on'), 30_000).then(() => null);
    return Promise.race([listening, this.exit]);
  }

  signal(s: NodeJS.Signals): void {
    this.child?.kill(s);
  }

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill9(): Promise<void> {
    this.signal('SIGKILL');
    await this.exit;
    this.child = null;
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    await Promise.race([this.exit, sleep(10_000)]);
    if (this.alive) this.signal('SIGKILL');
  }
}

export interface Trade {
  trade_id: string;
  symbol: string;
  side: 'buy' | 'sell';
  quantity: number;
  price: number;
}

/** A deterministic stream of numbers in [0, 1): the trades replay with the seed. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export const startingCash = 1_000_000;

export class ClusterRig {
  readonly nodes: EngineNode[] = [];
  /** What was acknowledged, per portfolio, in acknowledgement order. */
  readonly acked = new Map<string, Trade[]>();
  /** Answer times (ms, from the first send to the answer) since the last reset. */
  latencies: number[] = [];
  private readonly connections: NatsConnection[] = [];

  constructor(readonly o: RigOptions) {}

  async node(id: string): Promise<EngineNode> {
    const n = this.add(id);
    const code = await n.start();
    if (code !== null) throw new Error(`${id} exited ${code}: ${n.out}`);
    return n;
  }

  /** A node registered for cleanup but not started (a start expected to be refused). */
  add(id: string, partitionCount = this.o.partitions): EngineNode {
    const n = new EngineNode(this.o, id, join(this.o.root, `${id}-${this.nodes.length}`), partitionCount);
    this.nodes.push(n);
    return n;
  }

  live(): EngineNode[] {
    return this.nodes.filter((n) => n.alive && !n.paused);
  }

  async natsClient(): Promise<NatsConnection> {
    const nc = await connect({ servers: this.o.nats(), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    this.connections.push(nc);
    return nc;
  }

  /** partition -> owning node id, as the KV bucket says (undefined: unowned). */
  async kvOwners(): Promise<(string | undefined)[]> {
    const kv = await new Kvm(jetstream(await this.natsClient())).open(names.ownershipBucket);
    const out: (string | undefined)[] = [];
    for (let p = 0; p < this.o.partitions; p++) {
      const e = await kv.get(names.partitionKey(p));
      out.push(e !== null && e.operation === 'PUT' ? parsePartitionValue(e.value)?.node : undefined);
    }
    return out;
  }

  async everyPartitionOwnedByLive(): Promise<boolean> {
    const ids = new Set(this.live().map((n) => n.id));
    return (await this.kvOwners()).every((o) => o !== undefined && ids.has(o));
  }

  async http(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const r = await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.o.replyTimeoutMs + 2_000),
    });
    return { status: r.status, body: await r.json() };
  }

  async createPortfolios(ids: string[], random: () => number): Promise<void> {
    for (const id of ids) {
      const live = this.live();
      const r = await this.http(live[Math.floor(random() * live.length)].url, 'POST', '/api/v1/portfolios', { id, cash: startingCash });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      this.acked.set(id, []);
    }
  }

  /** Sends the trade to random live nodes until one answers it (the same trade id on every retry). */
  async sendTrade(random: () => number, portfolio: string, t: Trade): Promise<{ applied: boolean; attempts: number }> {
    const deadline = performance.now() + 30_000;
    const started = performance.now();
    let last = '';
    let attempts = 0;
    while (performance.now() < deadline) {
      attempts++;
      const targets = this.live();
      const n = targets[Math.floor(random() * targets.length)];
      try {
        const r = await this.http(n.url, 'POST', `/api/v1/portfolios/${portfolio}/trades`, t);
        if (r.status === 201 || r.status === 200) {
          this.latencies.push(performance.now() - started);
          return { applied: r.body.applied as boolean, attempts };
        }
        last = `${r.status} ${JSON.stringify(r.body)}`;
        // 503 (partition_unavailable, shard_restarting) and 429 are the retryable answers.
        if (r.status !== 503 && r.status !== 429) throw new Error(`trade ${t.trade_id} refused: ${last}`);
      } catch (e) {
        if ((e as Error).message.startsWith('trade ')) throw e;
        last = (e as Error).message;
      }
      await sleep(50);
    }
    throw new Error(`trade ${t.trade_id} of ${portfolio} never answered: ${last}`);
  }

  /** One portfolio's trades, one at a time; about one in five ids resent after its answer (answered applied: false). */
  async trader(seed: number, portfolio: string, count: number, prefix: string): Promise<void> {
    const random = lcg(seed);
    const list = this.acked.get(portfolio)!;
    for (let i = 0; i < count; i++) {
      const held = list.filter((t) => t.symbol === 'AAA').reduce((q, t) => q + (t.side === 'buy' ? t.quantity : -t.quantity), 0);
      const sell = held > 10 && random() < 0.3;
      const t: Trade = { trade_id: `${prefix}-${i}`, symbol: sell || random() < 0.6 ? 'AAA' : 'BBB', side: sell ? 'sell' : 'buy', quantity: 1 + Math.floor(random() * 9), price: 50 + Math.floor(random() * 1000) / 100 };
      const first = await this.sendTrade(random, portfolio, t);
      // A retry after a lost answer (its node died, or it timed out) may find the trade already applied.
      if (first.attempts === 1) expect(first.applied, `${portfolio} ${t.trade_id} first answer`).toBe(true);
      list.push(t);
      if (random() < 0.2) {
        const again = await this.sendTrade(random, portfolio, t);
        expect(again.applied, `${portfolio} ${t.trade_id} resent`).toBe(false);
      }
    }
  }

  /** Every portfolio's trader at once; the promise is already observed (a failure surfaces where it is awaited). */
  traders(seedBase: number, count: number, prefix: string): Promise<void[]> {
    const all = Promise.all([...this.acked.keys()].map((id, i) => this.trader(seedBase + i, id, count, prefix)));
    all.catch(() => undefined);
    return all;
  }

  async ownerNode(portfolio: string): Promise<EngineNode> {
    const owner = (await this.kvOwners())[partitionOf(portfolio, this.o.partitions)];
    const n = this.live().find((x) => x.id === owner);
    if (n === undefined) throw new Error(`no live owner for ${portfolio} (KV says ${String(owner)})`);
    return n;
  }

  /** Every acknowledged trade exactly once in the owner's log; cash and positions equal the oracle. */
  async checkPortfolio(id: string, trades: Trade[]): Promise<number> {
    let compared = 0;
    const owner = await this.ownerNode(id);
    const events = await this.http(owner.url, 'GET', `/api/v1/portfolios/${id}/events?type=TradeExecuted&limit=1000`);
    expect(events.status, `${id} events on ${owner.id}`).toBe(200);
    const ids = (events.body.events as { trade_id: string }[]).map((e) => e.trade_id);
    expect([...ids].sort(), `${id}: every acknowledged trade once in ${owner.id}'s log`).toEqual(trades.map((t) => t.trade_id).sort());
    const ledger = new Ledger();
    ledger.createPortfolio(id, startingCash);
    for (const t of trades) ledger.trade(id, { symbol: t.symbol, side: t.side, quantity: t.quantity, price: t.price });
    const want = ledger.portfolio(id);
    const got = await this.http(owner.url, 'GET', `/api/v1/portfolios/${id}`);
    expect(got.status).toBe(200);
    expectClose(got.body.cash, want.cash, `${id}.cash`);
    for (const p of want.positions) {
      const pos = (got.body.positions as { symbol: string; quantity: number; avg_cost: number; realized_pnl: number }[]).find((x) => x.symbol === p.symbol);
      if (p.quantity.isZero() && pos === undefined) continue;
      expect(pos, `${id} position ${p.symbol}`).toBeDefined();
      expectClose(pos!.quantity, p.quantity, `${id}.${p.symbol}.quantity`);
      expectClose(pos!.avg_cost, p.avg_cost, `${id}.${p.symbol}.avg_cost`);
      expectClose(pos!.realized_pnl, p.realized_pnl, `${id}.${p.symbol}.realized_pnl`);
      compared++;
    }
    return compared;
  }

  /**
   * Each partition has exactly one owner, and what every live node says it serves (its answer to
   * mtm cluster status) is what the KV bucket gives it. Retried for up to 10 s (a handover in flight).
   */
  async checkOwnersAgree(): Promise<void> {
    const nc = await this.natsClient();
    await waitUntil(
      'every live node serves exactly what the KV bucket gives it',
      async () => {
        const s = await readClusterStatus(nc, 500);
        const live = this.live().map((n) => n.id);
        if (s.owners.some((o) => o === undefined || !live.includes(o))) return false;
        const served = new Array<number>(this.o.partitions).fill(0);
        for (const id of live) {
          const node = s.nodes.find((n) => n.id === id);
          if (node?.answer === undefined) return false;
          const fromKv = s.owners.flatMap((o, p) => (o === id ? [p] : []));
          if (node.answer.owned.join(',') !== fromKv.join(',')) return false;
          for (const p of node.answer.owned) served[p]++;
        }
        return served.every((c) => c === 1);
      },
      10_000,
      100,
    );
  }

  /**
   * checkPortfolio for every portfolio, each retried for up to 10 s: right after a fault or a join a
   * partition may be between its release and the next claim, or its new owner still catching up.
   */
  async checkInvariants(): Promise<number> {
    await this.checkOwnersAgree();
    let compared = 0;
    for (const [id, trades] of this.acked) {
      const deadline = performance.now() + 10_000;
      for (;;) {
        try {
          compared += await this.checkPortfolio(id, trades);
          break;
        } catch (e) {
          if (performance.now() > deadline) throw e;
          await sleep(100);
        }
      }
    }
    return compared;
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop().catch(() => undefined)));
    await Promise.all(this.connections.map((nc) => nc.close().catch(() => undefined)));
  }
}
