// `npm run bench -- --scenario cluster [--quick]`: the cluster path against one node, in one run, on
// loopback (docs/BENCHMARKS.md, "Cluster"). Three topologies, each `mtm serve` processes from dist/:
//   single    - one node, no NATS (the engine as it runs without --nats);
//   cluster-1 - one node with --nats (every command through the JetStream stream, ticks through the
//               tick bus): the cluster path's own cost;
//   cluster-3 - three nodes on one nats-server -js (test/support/nats.ts), partitions spread.
// Per topology: aggregate durable trades/s (closed-loop traders, bench/loadgen/traders.js, one process
// per node, each trading portfolios of every partition: a trade sent to a node that does not own the
// portfolio goes through the stream to its owner) and W2-style tick-to-client latency (a feed on the
// first node at a fixed rate, binary-free JSON subscribers on every node watching portfolios of every
// partition, latency = arrival - the tick's source ts, both from the same clock). On a 2-core machine
// the point is the overhead of the cluster path, not a speed-up: every process shares the same cores.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { connect } from '@nats-io/transport-node';
import { readClusterStatus } from '../../src/cluster/status.js';
import { distFile, projectRoot } from '../../src/projectRoot.js';
import { NatsHarness, freePort, natsServerInstalled, sleep, waitUntil } from '../../test/support/nats.js';
import { decodeHistogram, newHistogram, nowMs, recordMs, round3, summarize, type LatencySummary } from '../loadgen/common.js';
import type { TradersConfig, TradersFinal } from '../loadgen/messages.js';
import { Child, benchScript, makeTempDir, removeTempDir } from './children.js';

export const topologies = ['single', 'cluster-1', 'cluster-3'] as const;
export type Topology = (typeof topologies)[number];

export interface ClusterBenchParams {
  portfolios: number;
  /** Symbols every portfolio holds (one buy each at setup). */
  positionsPerPortfolio: number;
  symbols: number;
  partitions: number;
  workersPerNode: number;
  traders: { connectionsPerNode: number; inFlight: number; warmupMs: number; durationMs: number };
  latency: { ticksPerSecond: number; connectionsPerNode: number; subscriptionsPerConnection: number; warmupMs: number; measureMs: number };
  readyTimeoutMs: number;
}

export function clusterParams(quick: boolean): ClusterBenchParams {
  return quick
    ? {
        portfolios: 48,
        positionsPerPortfolio: 3,
        symbols: 20,
        partitions: 12,
        workersPerNode: 1,
        traders: { connectionsPerNode: 2, inFlight: 4, warmupMs: 500, durationMs: 2_000 },
        latency: { ticksPerSecond: 200, connectionsPerNode: 2, subscriptionsPerConnection: 4, warmupMs: 500, measureMs: 2_000 },
        readyTimeoutMs: 60_000,
      }
    : {
        portfolios: 600,
        positionsPerPortfolio: 10,
        symbols: 200,
        partitions: 64,
        workersPerNode: 1,
        traders: { connectionsPerNode: 8, inFlight: 8, warmupMs: 2_000, durationMs: 10_000 },
        latency: { ticksPerSecond: 2_000, connectionsPerNode: 10, subscriptionsPerConnection: 10, warmupMs: 2_000, measureMs: 10_000 },
        readyTimeoutMs: 120_000,
      };
}

export interface TopologyResult {
  topology: Topology;
  nodes: number;
  trades: { tradesPerSecond: number; acked: number; errors: number; firstError: string; ack: LatencySummary };
  latency: { ticksSent: number; updates: number; latency: LatencySummary; messages: Record<string, number> };
  loadAverage: number;
}

const portfolioOf = (i: number): string => `cb-${String(i).padStart(5, '0')}`;
const symbolOf = (i: number): string => `CB${String(i).padStart(4, '0')}`;

interface Node {
  child: Child;
  url: string;
}

async function startNodes(topology: Topology, p: ClusterBenchParams, nats: string | null, dir: string): Promise<Node[]> {
  const count = topology === 'cluster-3' ? 3 : 1;
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    const data = join(dir, `node${i}`);
    mkdirSync(data, { recursive: true });
    const args = ['serve', '--port', String(port), '--data', data, '--workers', String(p.workersPerNode), '--commands-per-second', '1000000', '--connects-per-second', '1000000'];
    if (nats !== null) args.push('--nats', nats, '--node-id', `n${i}`, '--partitions', String(p.partitions));
    nodes.push({ child: new Child(`node${i}`, distFile('src/cli/main.js'), args), url: `http://127.0.0.1:${port}` });
  }
  for (const n of nodes) {
    await waitUntil(`${n.child.name} is ready (${n.child.tail()})`, async () => {
      if (!n.child.alive) throw new Error(`${n.child.name} exited: ${n.child.tail()}`);
      const r = await fetch(`${n.url}/ready`);
      await r.arrayBuffer();
      return r.status === 200;
    }, p.readyTimeoutMs, 100);
  }
  if (nats !== null) {
    // Every partition owned, and by every node (fair share reached), before anything is measured.
    const nc = await connect({ servers: nats });
    try {
      await waitUntil('every partition has an owner and every node owns some', async () => {
        const s = await readClusterStatus(nc, 50);
        const owners = new Set(s.owners);
        return s.partitions === p.partitions && !owners.has(undefined) && owners.size === count;
      }, p.readyTimeoutMs, 200);
    } finally {
      await nc.close();
    }
  }
  return nodes;
}

async function post(url: string, body: object): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await r.text();
    if (r.ok) return;
    // A partition changing hands at setup answers a retryable 503.
    if (r.status === 503 && attempt < 20) {
      await sleep(200);
      continue;
    }
    throw new Error(`POST ${url}: ${r.status} ${text.slice(0, 300)}`);
  }
}

/** Portfolios created and their positions bought, spread over the nodes (each command goes to its owner). */
async function setUp(nodes: Node[], p: ClusterBenchParams): Promise<void> {
  const work: (() => Promise<void>)[] = [];
  for (let i = 0; i < p.portfolios; i++) {
    const url = nodes[i % nodes.length].url;
    work.push(async () => {
      await post(`${url}/api/v1/portfolios`, { id: portfolioOf(i), cash: 10_000_000 });
      for (let k = 0; k < p.positionsPerPortfolio; k++) {
        await post(`${url}/api/v1/portfolios/${portfolioOf(i)}/trades`, { trade_id: `setup-${i}-${k}`, symbol: symbolOf((i * 7 + k) % p.symbols), side: 'buy', quantity: 10, price: 100 });
      }
    });
  }
  const lanes = 16;
  let next = 0;
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (next < work.length) await work[next++]();
  }));
}

async function tradeLoad(nodes: Node[], p: ClusterBenchParams, topology: Topology): Promise<TopologyResult['trades']> {
  const t = p.traders;
  const all = Array.from({ length: p.portfolios }, (_, i) => portfolioOf(i));
  const children = nodes.map((n, i) => {
    // Each node's traders trade a disjoint slice of every partition's portfolios (a slot owns its portfolio).
    const mine = all.filter((_, k) => k % nodes.length === i);
    const cfg: TradersConfig = {
      url: n.url,
      connections: t.connectionsPerNode,
      inFlight: t.inFlight,
      portfolios: mine,
      symbols: Array.from({ length: 5 }, (_, k) => symbolOf(k)),
      prefix: `cb-${topology}-${i}-${Date.now().toString(36)}`,
      readyTimeoutMs: 30_000,
    };
    return new Child(`traders${i}`, benchScript('loadgen/traders.js'), [JSON.stringify(cfg)]);
  });
  try {
    await Promise.all(children.map((c) => c.next('ready', 40_000)));
    const finals = children.map((c) => c.next<TradersFinal>('final', t.warmupMs + t.durationMs + 60_000));
    for (const c of children) c.send({ type: 'start', warmupMs: t.warmupMs, durationMs: t.durationMs });
    const done = await Promise.all(finals);
    const h = newHistogram();
    let acked = 0;
    let errors = 0;
    let firstError = '';
    let rate = 0;
    for (const f of done) {
      const one = decodeHistogram(f.hist);
      h.add(one);
      one.destroy();
      acked += f.acked;
      errors += f.errors;
      if (firstError === '') firstError = f.firstError;
      rate += f.acked / f.seconds;
    }
    const ack = summarize(h);
    h.destroy();
    return { tradesPerSecond: Math.round(rate), acked, errors, firstError, ack };
  } finally {
    await Promise.all(children.map((c) => c.stop(3_000)));
  }
}

async function latencyLoad(nodes: Node[], p: ClusterBenchParams): Promise<TopologyResult['latency']> {
  const l = p.latency;
  const h = newHistogram();
  let measuring = false;
  let updates = 0;
  /** Messages the subscribers got, by type (and error code): a run with no updates says why. */
  const kinds: Record<string, number> = {};
  const sockets: WebSocket[] = [];
  const open = (url: string): Promise<WebSocket> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      sockets.push(ws);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  try {
    let c = 0;
    for (const n of nodes) {
      for (let k = 0; k < l.connectionsPerNode; k++, c++) {
        const ws = await open(n.url.replace('http', 'ws') + '/ws');
        ws.on('message', (data: Buffer) => {
          const m = JSON.parse(data.toString('utf8')) as { type?: string; tick_ts?: number; error?: { code?: string } };
          const kind = m.type === 'error' ? `error ${m.error?.code ?? ''}` : String(m.type);
          if (Object.keys(kinds).length < 32 || kinds[kind] !== undefined) kinds[kind] = (kinds[kind] ?? 0) + 1;
          if (!measuring) return;
          if (m.type !== 'update' || typeof m.tick_ts !== 'number' || m.tick_ts <= 0) return;
          updates++;
          recordMs(h, nowMs() - m.tick_ts);
        });
        // Portfolios of every partition, so in a cluster most are owned by another node (relayed).
        const portfolios = Array.from({ length: l.subscriptionsPerConnection }, (_, j) => portfolioOf((c * l.subscriptionsPerConnection + j * 13) % p.portfolios));
        ws.send(JSON.stringify({ op: 'subscribe', portfolios }));
      }
    }
    const feed = await open(nodes[0].url.replace('http', 'ws') + '/ws/feed');
    feed.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString('utf8')) as { type?: string; rejected?: number; errors?: { code: string }[]; error?: { code?: string } };
      const kind = m.type === 'feed_ack' ? (m.rejected ? `feed rejected ${m.errors?.[0]?.code ?? ''}` : 'feed_ack') : `feed ${String(m.type)} ${m.error?.code ?? ''}`;
      kinds[kind] = (kinds[kind] ?? 0) + 1;
    });
    const tickMs = 10;
    const perTick = Math.max(1, Math.round((l.ticksPerSecond * tickMs) / 1000));
    let sent = 0;
    let s = 0;
    const timer = setInterval(() => {
      const ts = nowMs();
      const ticks = [];
      // Each pass over the symbols moves every price (an unchanged price revalues nothing: no update).
      for (let i = 0; i < perTick; i++, s++) ticks.push({ symbol: symbolOf(s % p.symbols), price: 100 + ((Math.floor(s / p.symbols) * 7 + (s % p.symbols)) % 50) / 100, ts });
      feed.send(JSON.stringify({ op: 'ticks', ticks }));
      if (measuring) sent += ticks.length;
    }, tickMs);
    try {
      await sleep(l.warmupMs);
      measuring = true;
      await sleep(l.measureMs);
      measuring = false;
    } finally {
      clearInterval(timer);
    }
    const latency = summarize(h);
    return { ticksSent: sent, updates, latency, messages: kinds };
  } finally {
    h.destroy();
    for (const ws of sockets) ws.terminate();
  }
}

export async function runTopology(topology: Topology, p: ClusterBenchParams, note: (line: string) => void): Promise<TopologyResult> {
  const harness = topology === 'single' ? null : new NatsHarness(`bench-${topology}`);
  const dir = makeTempDir(`mtm-bench-cluster-${topology}-`);
  let nodes: Node[] = [];
  try {
    const nats = harness === null ? null : (await harness.startServer()).url;
    nodes = await startNodes(topology, p, nats, dir);
    note(`  ${topology}: ${nodes.length} node(s) ready; setting up ${p.portfolios} portfolios x ${p.positionsPerPortfolio} positions`);
    await setUp(nodes, p);
    const trades = await tradeLoad(nodes, p, topology);
    note(`  ${topology}: ${trades.tradesPerSecond} durable trades/s, ack p50 ${trades.ack.p50Ms} / p99 ${trades.ack.p99Ms} ms, errors ${trades.errors}${trades.firstError ? ` (${trades.firstError})` : ''}`);
    const latency = await latencyLoad(nodes, p);
    note(`  ${topology}: tick-to-client p50 ${latency.latency.p50Ms} / p99 ${latency.latency.p99Ms} / p99.9 ${latency.latency.p999Ms} ms over ${latency.updates} updates (${latency.ticksSent} ticks sent; subscribers got ${JSON.stringify(latency.messages)})`);
    return { topology, nodes: nodes.length, trades, latency, loadAverage: round3(loadavg()[0]) };
  } finally {
    await Promise.all(nodes.map((n) => n.child.stop(15_000)));
    await harness?.cleanup();
    removeTempDir(dir);
  }
}

export interface ClusterReport {
  startedAt: string;
  quick: boolean;
  machine: { cores: number; cpuModel: string; node: string; loadAverageStart: number; loadAverageEnd: number; uptime: string };
  params: ClusterBenchParams;
  results: TopologyResult[];
  errors: string[];
}

/** Runs the three topologies back to back; writes bench/results/cluster-<stamp>.json and returns the exit code. */
export async function runClusterBench(quick: boolean, out: string): Promise<number> {
  if (!natsServerInstalled) {
    console.error('bench cluster: nats-server is not installed (apt-get install nats-server)');
    return 1;
  }
  const p = clusterParams(quick);
  const uptime = (): string => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
  const report: ClusterReport = {
    startedAt: new Date().toISOString(),
    quick,
    machine: { cores: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, loadAverageStart: round3(loadavg()[0]), loadAverageEnd: 0, uptime: uptime() },
    params: p,
    results: [],
    errors: [],
  };
  const note = (line: string): void => console.error(line);
  note(`cluster bench (${quick ? 'quick' : 'full'}): ${report.machine.uptime}`);
  for (const t of topologies) {
    try {
      report.results.push(await runTopology(t, p, note));
    } catch (e) {
      report.errors.push(`${t}: ${(e as Error).message.split('\n').slice(0, 4).join(' | ')}`);
      note(`  ${t}: FAILED: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  report.machine.loadAverageEnd = round3(loadavg()[0]);
  report.machine.uptime += ` | end: ${uptime()}`;
  mkdirSync(out, { recursive: true });
  const file = join(out, `cluster-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  const rows = [['topology', 'nodes', 'trades/s', 'ack p50 ms', 'ack p99 ms', 'tick->client p50 ms', 'p99 ms', 'p99.9 ms', 'updates', 'load']];
  for (const r of report.results) {
    rows.push([r.topology, String(r.nodes), String(r.trades.tradesPerSecond), String(r.trades.ack.p50Ms), String(r.trades.ack.p99Ms), String(r.latency.latency.p50Ms), String(r.latency.latency.p99Ms), String(r.latency.latency.p999Ms), String(r.latency.updates), String(r.loadAverage)]);
  }
  console.log(`\n| ${rows[0].join(' | ')} |\n|${rows[0].map(() => '---').join('|')}|\n${rows.slice(1).map((r) => `| ${r.join(' | ')} |`).join('\n')}`);
  console.log(`\nmachine: ${report.machine.cores} cores, ${report.machine.cpuModel}, node ${report.machine.node}; ${report.machine.uptime}`);
  console.log(`report: ${file.replace(projectRoot() + '/', '')}`);
  if (report.errors.length > 0) console.log(`\n${report.errors.length} failed:\n  ${report.errors.join('\n  ')}`);
  return report.errors.length > 0 ? 1 : 0;
}
