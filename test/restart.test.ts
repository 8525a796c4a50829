// Proves issue 16 (restart in a second, always), with real processes, real LMDB, real workers:
// - the data dir lock: a live owner is refused with its pid; killed -9 and left an unreaped zombie
//   (a parent that never waits), it blocks nothing; nor do a reused pid in owner.pid and a stale
//   owner.sock; a directory with a dot in its name works;
// - recovery equivalence over seeded random workloads (trades of every cost method, foreign
//   currencies, integer-like symbols, cash, pauses, closes, limits, ticks): after a crash, columnar
//   snapshots + replay without actors give byte-identical snapshots to the live engine and to a
//   from-scratch replay of the whole log (but for equity_hwm, which ticks raise without events), the
//   same with another shard count; a clean restart gives the live figures, equity_hwm included. (The
//   old restore created kernel rows in the record's key order, which puts integer-like symbols first
//   and so summed totals in another order than live: last-bit differences this test found.)
// - kill -9 at random points while snapshots are written, then again during recovery: nothing
//   acknowledged is lost or doubled;
// - seq never goes back: across kill -9 (ticks moved it without events), shard crashes and clean
//   restarts (exact there), and for an SDK client that keeps its last seq across a server restart;
// - a data dir written by the release at 457ffd1 (schema 1, test/fixtures/store-v1) is migrated on
//   open with a log line and gives the same figures;
// - the clean stop writes per-portfolio records only for books changed since their last one (a
//   trade, a pause; an export in between writes none and takes none), and restarts and time travel
//   give the same figures after it;
// - a data dir written by the release at a6e5508 (columnar snapshots with the strings segment as JSON,
//   test/fixtures/store-v2-json-strings) restarts clean with the same figures and seqs, and the
//   generation its close writes (binary strings) restarts the same;
// - mtm serve answers /health at once and /ready 503 with the progress until it has recovered;
// - a corporate step whose apply loses a shard is rolled back on the shards that applied it and
//   applies exactly once when retried;
// - a held suspect tick survives kill -9 and a clean restart (held again against the same
//   reference, the books never see it), and once settled stays settled.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { open } from 'lmdb';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MtmClient } from '../src/client/client.js';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import type { PortfolioSnapshot, StoredEvent } from '../src/domain/types.js';
import { startServer } from '../src/server/server.js';
import { openStore } from '../src/store/store.js';
import { copyLiveDataDir, ensureBuilt, sleep, tempDir } from './support/engine.js';

const root = resolve(import.meta.dirname, '..');
const childScript = join(root, 'test/fixtures/engine-child.mjs');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

beforeAll(() => ensureBuilt());

function dir(name?: string): string {
  const d = tempDir('mtm-restart-');
  cleanups.push(() => d.remove());
  return name === undefined ? d.path : join(d.path, name);
}

async function engineOn(dataDir: string, workers = 2): Promise<MtmEngine> {
  const engine = await createEngine({ dataDir, workers, allowFaultInjection: true, snapshotIntervalMs: 3_600_000, pricesFlushIntervalMs: 20 });
  cleanups.push(() => engine.close());
  return engine;
}

/** A child engine process; `lines` are its JSON lines. */
class Child {
  readonly lines: Record<string, unknown>[] = [];
  stderr = '';
  constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line.startsWith('{')) this.lines.push(JSON.parse(line) as Record<string, unknown>);
        else if (/^\d+$/.test(line)) this.lines.push({ bgPid: Number(line) });
      }
    });
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (c: string) => (this.stderr += c));
  }

  async until(pred: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; stderr: ${this.stderr.slice(-2000)}`);
      await sleep(10);
    }
  }

  acks(): string[] {
    return this.lines.filter((l) => typeof l.ack === 'string').map((l) => l.ack as string);
  }
}

function child(cfg: object): Child {
  const c = new Child(spawn(process.execPath, [childScript, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  cleanups.push(() => {
    c.proc.kill('SIGKILL');
  });
  return c;
}

/** The child engine under a shell that execs `sleep`: the engine's parent never waits for it. */
function unreapedChild(cfg: object): Child {
  const c = new Child(
    spawn('sh', ['-c', `"${process.execPath}" "${childScript}" & echo $!; exec sleep 300`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MTM_CHILD: JSON.stringify(cfg) } }),
  );
  cleanups.push(() => {
    c.proc.kill('SIGKILL');
  });
  return c;
}

function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
}

async function startError(dataDir: string): Promise<string> {
  try {
    const e = await createEngine({ dataDir, workers: 1 });
    await e.close();
    return 'started';
  } catch (err) {
    return (err as Error).message;
  }
}

describe('the data dir lock', () => {
  it('refuses a live owner by pid; the same owner killed -9 and left a zombie blocks nothing', async () => {
    const d = dir();
    const c = unreapedChild({ dir: d, mode: 'hold', workers: 1 });
    await c.until(() => c.lines.some((l) => l.ready === true), 60_000, 'child engine ready');
    const pid = c.lines.find((l) => l.ready === true)?.pid as number;
    expect(c.lines.find((l) => 'bgPid' in l)?.bgPid).toBe(pid);
    expect(await startError(d)).toContain(`in use by process ${pid}; one engine per data dir`);
    process.kill(pid, 'SIGKILL');
    const end = Date.now() + 10_000;
    while (procState(pid) !== 'Z' && Date.now() < end) await sleep(10);
    // A real zombie: dead, unreaped, its pid still taken (kill(pid, 0) succeeds on it).
    expect(procState(pid)).toBe('Z');
    expect(() => process.kill(pid, 0)).not.toThrow();
    const engine = await engineOn(d, 1);
    expect(engine.listPortfolios()).toEqual([]);
  }, 120_000);

  it('a reused pid in owner.pid and a stale owner.sock block nothing', async () => {
    const d = dir();
    const c = child({ dir: d, mode: 'hold', workers: 1 });
    await c.until(() => c.lines.some((l) => l.ready === true), 60_000, 'child engine ready');
    c.proc.kill('SIGKILL');
    await new Promise((r) => c.proc.once('exit', r));
    expect(existsSync(join(d, 'owner.sock'))).toBe(true); // left behind by the killed owner
    // The dead owner's pid now belongs to a live, unrelated process (our parent stands in for it).
    writeFileSync(join(d, 'owner.pid'), String(process.ppid));
    const engine = await engineOn(d, 1);
    expect(await startError(d)).toContain(`in use by process ${process.pid}`);
    await engine.close();
  }, 120_000);

  it('opens a data directory with a dot in its name, and reopens it', async () => {
    const d = dir('mtm.prod');
    let engine = await engineOn(d);
    await engine.createPortfolio({ id: 'dot', cash: 100 });
    await engine.trade('dot', { trade_id: 't', symbol: 'D.X', side: 'buy', quantity: 2, price: 10 });
    const before = await engine.snapshot('dot');
    await engine.close();
    engine = await engineOn(d);
    const after = await engine.snapshot('dot');
    expect(after.ok && { ...after.value, as_of: 0 }).toEqual(before.ok && { ...before.value, as_of: 0 });
  }, 60_000);
});

/** A small seeded generator (mulberry32): the workload is the same for every run of a seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Seeded commands of every kind recovery must restore; ticks in between move marks and seqs. `ids`:
 * portfolios to work on besides those it creates (a tail on books a snapshot holds); `foreignShare`:
 * the share of trades in a foreign currency.
 */
async function workload(engine: MtmEngine, seed: number, steps: number, prefix: string, ids: string[] = [], foreignShare = 0.2): Promise<void> {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const symbols = ['AA', 'BB', 'CC', 'DD', '1234', 'E.U'];
  for (let i = 0; i < steps; i++) {
    const x = r();
    if (ids.length < 3 || x < 0.08) {
      const id = `${prefix}${ids.length}`;
      const method = pick(['average', 'fifo', 'lifo'] as const);
      const base = pick(['USD', 'USD', 'EUR'] as const);
      const created = await engine.createPortfolio({ id, cash: 10_000 + Math.floor(r() * 1000), cost_basis_method: method, base_currency: base, limits: r() < 0.2 ? { max_loss: 5_000 } : {} });
      if (created.ok) ids.push(id);
      continue;
    }
    const id = pick(ids);
    if (x < 0.6) {
      const foreign = r() < foreignShare;
      await engine.trade(id, {
        trade_id: `${prefix}t${i}`,
        symbol: pick(symbols),
        side: r() < 0.6 ? 'buy' : 'sell',
        quantity: Math.floor(r() * 50) / 4 + 0.25,
        price: 5 + Math.floor(r() * 2000) / 100,
        fee: r() < 0.3 ? 0.5 : 0,
        ...(foreign ? { currency: 'GBP', fx_rate: 1.1 + Math.floor(r() * 20) / 100 } : {}),
      });
    } else if (x < 0.7) await engine.cash(id, { type: r() < 0.7 ? 'deposit' : 'withdraw', amount: Math.floor(r() * 500) + 1 });
    else if (x < 0.75) await engine.pause(id);
    else if (x < 0.8) await engine.resume(id);
    else if (x < 0.82) await engine.closePortfolio(id);
    else if (x < 0.85) await engine.setLimits(id, { max_drawdown_pct: 90 });
    else {
      engine.ingestTicks(symbols.map((s) => ({ symbol: s, price: 5 + Math.floor(r() * 2000) / 100, ts: 1_700_000_000_000 + i })));
      engine.ingestTicks([{ symbol: 'GBPUSD', price: 1.2 + r() / 10, ts: 1_700_000_000_000 + i }, { symbol: 'GBPEUR', price: 1.1 + r() / 10, ts: 1_700_000_000_000 + i }]);
      await engine.drain();
    }
  }
}

/**
 * Every portfolio's snapshot (lots too) as text, without what a restart may rightly change (as_of,
 * ages, seq) and, withHwm false, without equity_hwm: ticks raise it and leave no event, so a replay of
 * the log cannot know how far (the same reason seq needs epochs).
 */
async function figures(engine: MtmEngine, withHwm = true): Promise<string[]> {
  const out: string[] = [];
  for (const p of engine.listPortfolios()) {
    const r = await engine.snapshot(p.id, { lots: true });
    if (!r.ok) throw new Error(r.error.message);
    const s: PortfolioSnapshot = { ...r.value, as_of: 0, seq: 0, positions: r.value.positions.map((x) => ({ ...x, price_age_ms: 0 })) };
    if (!withHwm) s.equity_hwm = 0;
    out.push(JSON.stringify(s));
  }
  return out;
}

/** A copy of a data dir without its columnar generation and, recordsToo, without the per-portfolio records. */
async function withoutSnapshots(from: string, to: string, recordsToo: boolean): Promise<void> {
  cpSync(from, to, { recursive: true });
  const env = open({ path: to, noSubdir: false, maxDbs: 16 });
  await env.openDB('meta', {}).remove('shardSnapshot');
  if (recordsToo) await env.openDB('snapshots', {}).clearAsync();
  await env.close();
}

describe('recovery equivalence', () => {
  for (const seed of [11, 22, 33]) {
    it(`columnar snapshot + replay == live == from-scratch replay (seed ${seed}; 2 and 3 shards)`, async () => {
      const d = dir();
      let engine = await engineOn(d);
      await workload(engine, seed, 250, `s${seed}-`);
      await engine.snapshotAll(); // the generation a crash restart reads
      await workload(engine, seed + 1000, 250, `s${seed}b-`); // only replay restores these
      const live = await figures(engine);
      const liveNoHwm = await figures(engine, false);
      // The state a kill -9 leaves here: everything acknowledged is committed (LMDB, in the page cache),
      // and last prices too once their flush ran (a kill -9 loses at most that interval of prices).
      const crashed = dir();
      await copyLiveDataDir(engine, d, crashed);
      await engine.close();
      const scratch = dir();
      await withoutSnapshots(crashed, scratch, true);
      // From the crash: the books of the live engine, but for high-water marks (ticks raised them after
      // the snapshot without an event; recovery keeps the snapshot's, raised again by the next tick).
      engine = await engineOn(crashed);
      const recovered = await figures(engine);
      expect(await figures(engine, false)).toEqual(liveNoHwm);
      await engine.close();
      engine = await engineOn(crashed, 3); // another shard count: every worker filters the old segments
      expect(await figures(engine)).toEqual(recovered);
      await engine.close();
      engine = await engineOn(scratch);
      expect(await figures(engine, false)).toEqual(liveNoHwm);
      await engine.close();
      // A clean restart restores everything exactly, high-water marks included.
      engine = await engineOn(d);
      expect(await figures(engine)).toEqual(live);
    }, 240_000);
  }
});

/**
 * A tail of mostly plain trades (base currency, held symbols, buys and sells that reduce, close and
 * flip, with fees) on the given books, some of them preceded by a deposit that builds the state.
 */
async function columnTail(engine: MtmEngine, seed: number, steps: number, ids: readonly string[]): Promise<void> {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const symbols = ['AA', 'BB', 'CC', 'DD', '1234', 'E.U'];
  for (let i = 0; i < steps; i++) {
    const id = pick(ids);
    if (r() < 0.05) await engine.cash(id, { type: 'deposit', amount: Math.floor(r() * 500) + 1 });
    else if (r() < 0.05) {
      engine.ingestTicks(symbols.map((s) => ({ symbol: s, price: 5 + Math.floor(r() * 2000) / 100, ts: 1_700_000_100_000 + i })));
      await engine.drain();
    } else {
      const quantity = Math.floor(r() * 24) / 4 + 0.25;
      await engine.trade(id, { trade_id: `col-${seed}-${i}`, symbol: pick(symbols), side: r() < 0.5 ? 'buy' : 'sell', quantity, price: 5 + Math.floor(r() * 2000) / 100, fee: r() < 0.3 ? 0.5 : 0 });
    }
  }
}

describe('recovery equivalence, trades replayed into snapshot columns', () => {
  // A lazily restored average-cost book takes a replayed trade in its base currency into its snapshot's
  // columns, without building its state (SnapshotPart.bookTrade); any other event builds the state from
  // those columns and goes on there. The tail here trades on the books the snapshot holds.
  for (const seed of [44, 55]) {
    it(`crash restart == live, the tail booked in columns and on states (seed ${seed}; 2 and 3 shards)`, async () => {
      const d = dir();
      let engine = await engineOn(d);
      const ids: string[] = [];
      await workload(engine, seed, 200, `c${seed}-`, ids, 0.03);
      // Every book holds every symbol, so the tail's trades find their positions in the columns.
      for (const id of ids) {
        for (const symbol of ['AA', 'BB', 'CC', 'DD', '1234', 'E.U']) await engine.trade(id, { trade_id: `${id}-${symbol}`, symbol, side: 'buy', quantity: 3, price: 10 });
      }
      await engine.snapshotAll();
      await columnTail(engine, seed + 1000, 300, ids);
      await workload(engine, seed + 2000, 100, `c${seed}b-`, ids, 0.03);
      const liveNoHwm = await figures(engine, false);
      const crashed = dir();
      await copyLiveDataDir(engine, d, crashed);
      await engine.close();
      const scratch = dir();
      await withoutSnapshots(crashed, scratch, true);
      engine = await engineOn(crashed);
      const inColumns = engine.progress.shardWork.reduce((n, w) => n + w.trades_in_columns, 0);
      expect(inColumns).toBeGreaterThan(30);
      const recovered = await figures(engine);
      expect(await figures(engine, false)).toEqual(liveNoHwm);
      // Its clean stop writes each book's state, built from the columns: a clean restart shows them exactly.
      await engine.close();
      engine = await engineOn(crashed);
      expect(await figures(engine)).toEqual(recovered);
      await engine.close();
      engine = await engineOn(crashed, 3);
      expect(await figures(engine)).toEqual(recovered);
      await engine.close();
      engine = await engineOn(scratch);
      expect(await figures(engine, false)).toEqual(liveNoHwm);
    }, 240_000);
  }
});

async function tradesIn(engine: MtmEngine): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let after = 0;
  for (;;) {
    const page = await engine.queryEvents({ type: 'TradeExecuted', after_seq: after, limit: 1000 });
    if (!page.ok) throw new Error(page.error.message);
    out.push(...page.value);
    if (page.value.length < 1000) return out;
    after = page.value[page.value.length - 1].seq;
  }
}

/** Every acknowledged trade is logged once, nothing is logged twice, and each book holds exactly its logged trades. */
async function checkNothingLostOrDoubled(engine: MtmEngine, acked: string[]): Promise<void> {
  const trades = await tradesIn(engine);
  const ids = trades.map((e) => (e.type === 'TradeExecuted' ? e.trade_id : ''));
  expect(new Set(ids).size).toBe(ids.length);
  const logged = new Set(ids);
  expect(acked.filter((a) => !logged.has(a))).toEqual([]);
  const perPortfolio = new Map<string, number>();
  for (const e of trades) perPortfolio.set(e.portfolio_id, (perPortfolio.get(e.portfolio_id) ?? 0) + 1);
  for (const [id, n] of perPortfolio) {
    const s = await engine.snapshot(id);
    expect(s.ok && s.value.positions.find((p) => p.symbol === 'SYM')?.quantity).toBe(n);
  }
}

describe('kill -9', () => {
  it('during snapshot writing and then during recovery: nothing acknowledged is lost or doubled, seq never goes back', async () => {
    const d = dir();
    const r = rng(Date.now() % 100_000);
    const acked: string[] = [];
    let seqSeen = -1;
    for (let round = 0; round < 3; round++) {
      const c = child({ dir: d, mode: 'trade', workers: 2 });
      await c.until(() => c.acks().length >= 50, 120_000, 'acknowledged trades');
      await sleep(Math.floor(r() * 400));
      c.proc.kill('SIGKILL');
      await new Promise((res) => c.proc.once('exit', res));
      acked.push(...c.acks());
      for (const l of c.lines) if (typeof l.seq === 'number') seqSeen = Math.max(seqSeen, l.seq);
      // Now kill the next start while it recovers (before or after ready, at a random point).
      const k = child({ dir: d, mode: 'hold', workers: 2 });
      await sleep(50 + Math.floor(r() * 600));
      k.proc.kill('SIGKILL');
      await new Promise((res) => k.proc.once('exit', res));
    }
    const engine = await engineOn(d);
    await checkNothingLostOrDoubled(engine, acked);
    const s = await engine.snapshot('k0');
    expect(seqSeen).toBeGreaterThan(0);
    expect(s.ok && s.value.seq).toBeGreaterThan(seqSeen);
  }, 600_000);
});

describe('seq never goes back', () => {
  it('across shard crashes and clean restarts, for a client that keeps its last seq across a server restart', async () => {
    const d = dir();
    let engine = await engineOn(d);
    await engine.createPortfolio({ id: 'q', cash: 1_000 });
    await engine.trade('q', { trade_id: 'q1', symbol: 'Q', side: 'buy', quantity: 1, price: 10 });
    let server = await startServer(engine, { port: 0, log: null });
    const port = server.port;
    const seen: number[] = [];
    const client = await MtmClient.connect({ url: server.url, reconnect: { initialDelayMs: 50, maxDelayMs: 200, factor: 2, jitter: 0 } });
    cleanups.push(() => client.close());
    client.subscribe(['q'], { onSnapshot: (s) => seen.push(s.seq), onUpdate: (u) => seen.push(u.seq) });
    const tick = async (price: number) => {
      engine.ingestTicks([{ symbol: 'Q', price, ts: Date.now() }]);
      await engine.drain();
    };
    const waitFor = async (pred: () => boolean, what: string) => {
      const end = Date.now() + 20_000;
      while (!pred()) {
        if (Date.now() > end) throw new Error(`timed out: ${what} (seen ${seen.join(',')})`);
        await sleep(10);
      }
    };
    await waitFor(() => seen.length >= 1, 'first snapshot');
    await engine.snapshotAll();
    for (const p of [11, 12, 13]) await tick(p); // after the snapshot: seqs no log holds
    await waitFor(() => seen.length >= 4, 'updates');
    let last = Math.max(...seen);
    // A shard crash: the shard reloads the snapshot, older than the last seq shown.
    engine.crashShard(engine.shardOf('q'), 'exit');
    await waitFor(() => engine.shardStats().every((s) => s.state === 'ready') && engine.stats().shardRestarts === 1, 'shard restart');
    await tick(14);
    const afterCrash = await engine.snapshot('q');
    expect(afterCrash.ok && afterCrash.value.seq).toBeGreaterThan(last);
    await waitFor(() => Math.max(...seen) > last, 'an update above the last seq');
    last = Math.max(...seen);
    // A clean restart of the server: the client reconnects, keeps its last seq, and sees none lower.
    const cleanSeq = (await engine.snapshot('q')).ok ? ((await engine.snapshot('q')) as { value: PortfolioSnapshot }).value.seq : -1;
    await server.close();
    await engine.close();
    engine = await engineOn(d);
    expect((await engine.snapshot('q')).ok && ((await engine.snapshot('q')) as { value: PortfolioSnapshot }).value.seq).toBe(cleanSeq);
    server = await startServer(engine, { port, log: null });
    cleanups.push(() => server.close());
    const before = seen.length;
    await waitFor(() => seen.length > before, 'resubscribed snapshot');
    expect(seen[before]).toBeGreaterThanOrEqual(last);
    await tick(15);
    await waitFor(() => Math.max(...seen) > last, 'an update after the restart');
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]);
  }, 120_000);
});

describe('migration', () => {
  it('a schema 1 directory (release 457ffd1) is migrated on open with a log line and gives the same figures', async () => {
    const d = dir('v1');
    cpSync(join(root, 'test/fixtures/store-v1'), d, { recursive: true });
    const lines: string[] = [];
    const store = openStore({ path: d, log: (l) => lines.push(l) });
    expect(store.ok).toBe(true);
    if (!store.ok) return;
    expect(store.value.migratedFrom).toBe(1);
    expect(lines.join('\n')).toContain('was written by store schema version 1; migrating it to version 2');
    await store.value.close();
    const expected = JSON.parse(readFileSync(join(root, 'test/fixtures/store-v1/snapshots.json'), 'utf8')) as PortfolioSnapshot[];
    const engine = await engineOn(d);
    for (const want of expected) {
      const got = await engine.snapshot(want.portfolio_id, { lots: true });
      const strip = (s: PortfolioSnapshot) => ({ ...s, as_of: 0, seq: 0, positions: s.positions.map((p) => ({ ...p, price_age_ms: 0, stale: false })), stale_positions: 0 });
      expect(got.ok && strip(got.value)).toEqual(strip(want));
      // Migrated seqs start above anything schema 1 could have shown.
      expect(got.ok && got.value.seq).toBeGreaterThan(want.seq);
    }
    await engine.close();
    const again = openStore({ path: d, log: (l) => lines.push(l) });
    expect(again.ok && again.value.migratedFrom).toBe(null);
    if (again.ok) await again.value.close();
  }, 60_000);
});

/** The form of the newest generation's strings segments of a closed data dir: 'json' or 'binary' (per shard). */
function stringsForms(d: string): string[] {
  const env = open({ path: d, noSubdir: false, maxDbs: 16, readOnly: true });
  try {
    const pointer = env.openDB({ name: 'meta' }).get('shardSnapshot') as { generation: number; shards: number };
    const segments = env.openDB({ name: 'shardSnapshots', encoding: 'binary' });
    return Array.from({ length: pointer.shards }, (_, s) => (segments.getBinary([pointer.generation, s, 2])?.[0] === 0x7b ? 'json' : 'binary'));
  } finally {
    void env.close();
  }
}

describe('the strings segment written before the binary form', () => {
  it('a data dir of release a6e5508 (JSON strings) restarts clean with its figures and seqs; the generation written next is binary and restarts the same', async () => {
    const d = dir('v2json');
    cpSync(join(root, 'test/fixtures/store-v2-json-strings'), d, { recursive: true });
    expect(stringsForms(d)).toEqual(['json', 'json']);
    const expected = JSON.parse(readFileSync(join(root, 'test/fixtures/store-v2-json-strings/snapshots.json'), 'utf8')) as PortfolioSnapshot[];
    // as_of and the prices' ages are the clock's (the fixture's was fake); everything else is exact.
    const strip = (s: PortfolioSnapshot) => ({ ...s, as_of: 0, positions: s.positions.map((p) => ({ ...p, price_age_ms: 0, stale: false })), stale_positions: 0 });
    const expectFigures = async (engine: MtmEngine) => {
      expect(engine.listPortfolios().map((p) => p.id).sort()).toEqual(expected.map((s) => s.portfolio_id).sort());
      for (const want of expected) {
        const got = await engine.snapshot(want.portfolio_id, { lots: true });
        expect(got.ok && strip(got.value)).toEqual(strip(want));
      }
    };
    const first = await engineOn(d);
    await expectFigures(first);
    await first.close();
    expect(stringsForms(d)).toEqual(['binary', 'binary']);
    const second = await engineOn(d);
    await expectFigures(second);
    await second.close();
  }, 60_000);
});

/** Per-portfolio records kept (snapshotHistory) of a closed data dir, by portfolio id. */
function recordCounts(d: string): Record<string, number> {
  const env = open({ path: d, noSubdir: false, maxDbs: 16, readOnly: true });
  try {
    const counts: Record<string, number> = {};
    for (const key of env.openDB({ name: 'snapshotHistory' }).getKeys()) {
      const id = (key as [string, number])[0];
      counts[id] = (counts[id] ?? 0) + 1;
    }
    return counts;
  } finally {
    void env.close();
  }
}

describe('the clean stop', () => {
  it('writes per-portfolio records only for books changed since their last one; restarts and time travel give the same figures', async () => {
    const d = dir();
    const ids = ['cs-a', 'cs-b', 'cs-c', 'cs-d'];
    const first = await engineOn(d, 1);
    for (const id of ids) expect((await first.createPortfolio({ id, cash: 10_000 })).ok).toBe(true);
    expect((await first.trade('cs-a', { trade_id: 'a1', symbol: 'CSA', side: 'buy', quantity: 10, price: 10 })).ok).toBe(true);
    expect((await first.trade('cs-b', { trade_id: 'b1', symbol: 'CSB', side: 'buy', quantity: 5, price: 20 })).ok).toBe(true);
    await first.close();
    const before = recordCounts(d);
    expect(Object.keys(before).sort()).toEqual(ids);
    // Restored from the snapshot; one book trades, one pauses, the others only answer reads.
    const second = await engineOn(d, 1);
    expect((await second.trade('cs-b', { trade_id: 'b2', symbol: 'CSB', side: 'sell', quantity: 2, price: 25 })).ok).toBe(true);
    expect((await second.pause('cs-d')).ok).toBe(true);
    expect((await second.snapshot('cs-a')).ok).toBe(true);
    // An export (what a cluster node ships) takes the books' columns only: it writes no record, so it
    // must not count as one (the changed books still get theirs at the stop).
    expect((await second.exportBooks(() => true)).length).toBe(4);
    const live = new Map<string, PortfolioSnapshot>();
    for (const id of ids) {
      const s = await second.snapshot(id, { lots: true });
      if (s.ok) live.set(id, s.value);
    }
    await second.close();
    const after = recordCounts(d);
    expect(after).toEqual({ ...before, 'cs-b': before['cs-b'] + 1, 'cs-d': before['cs-d'] + 1 });
    const third = await engineOn(d, 1);
    for (const id of ids) {
      const now = await third.snapshot(id, { lots: true });
      expect(now.ok && { ...now.value, as_of: 0 }).toEqual({ ...live.get(id), as_of: 0 });
      // Time travel starts from the newest record at or before the instant: an older one for the
      // books that got none, with no event of theirs after it.
      const past = await third.snapshotAt(id, Date.now());
      const figures = (v: PortfolioSnapshot) => ({ cash: v.cash, positions: v.positions.map((p) => [p.symbol, p.quantity, p.avg_cost]), realized_pnl: v.realized_pnl, state: v.state });
      expect(past.ok && figures(past.value)).toEqual(figures(live.get(id) as PortfolioSnapshot));
    }
  }, 60_000);
});

describe('a start that shows its progress', () => {
  it('mtm serve answers /health at once and /ready 503 with the progress until recovered, then 200', async () => {
    const d = dir();
    // A log long enough that recovery takes a while: 2,000 portfolios, 150,000 trades, no snapshot.
    const opened = openStore({ path: d });
    if (!opened.ok) throw new Error(opened.error.message);
    const store = opened.value;
    let ts = 1_700_000_000_000;
    const batch: Parameters<typeof store.append>[0][number][] = [];
    for (let p = 0; p < 2_000; p++) batch.push({ type: 'PortfolioCreated', portfolio_id: `r${p}`, ts: ts++, name: '', cash: 1e6, limits: {} });
    await store.append(batch.splice(0)).durable;
    for (let i = 0; i < 150_000; i++) {
      batch.push({ type: 'TradeExecuted', portfolio_id: `r${i % 2_000}`, ts: ts++, trade_id: `t${i}`, symbol: `S${i % 50}`, side: 'buy', quantity: 1, price: 10, fee: 0, trade_ts: ts, realized_pnl: 0 });
      if (batch.length >= 10_000) await store.append(batch.splice(0)).durable;
    }
    await store.close();
    const port = 20_000 + (process.pid % 20_000);
    const cli = new Child(spawn(process.execPath, [join(root, 'dist/src/cli/main.js'), 'serve', '--data', d, '--port', String(port), '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    cleanups.push(() => {
      cli.proc.kill('SIGKILL');
    });
    const text: string[] = [];
    cli.proc.stdout?.on('data', (c: Buffer) => text.push(c.toString()));
    const get = async (path: string) => {
      try {
        const r = await fetch(`http://127.0.0.1:${port}${path}`);
        return { status: r.status, body: (await r.json()) as Record<string, unknown> };
      } catch {
        return null;
      }
    };
    let health: { status: number } | null = null;
    let notReady: { status: number; body: Record<string, unknown> } | null = null;
    const end = Date.now() + 120_000;
    for (;;) {
      const h = await get('/health');
      if (h !== null && health === null) health = h;
      const r = await get('/ready');
      if (r !== null && r.status === 503 && notReady === null) notReady = r;
      if (r !== null && r.status === 200) break;
      if (Date.now() > end) throw new Error(`not ready in time: ${cli.stderr}`);
      await sleep(5);
    }
    expect(health?.status).toBe(200);
    expect(notReady?.status).toBe(503);
    const progress = notReady?.body.progress as Record<string, number> | undefined;
    expect(notReady?.body.ready).toBe(false);
    expect(progress !== undefined && ['snapshots', 'replay'].includes(progress.phase as unknown as string)).toBe(true);
    expect(progress?.events_total).toBeGreaterThanOrEqual(0);
    await cli.until(() => text.join('').includes('mtm listening on'), 30_000, 'listening line');
    expect(text.join('')).toMatch(/recovered 2000 portfolios and 152000 events in [\d.]+ s/);
  }, 180_000);
});

describe('a corporate step when a shard dies mid-apply', () => {
  it('rolls back the shards that applied it (restarted from the log), and the retried step applies exactly once', async () => {
    let now = 1_800_000_000_000;
    const engine = await createEngine({ dataDir: dir(), workers: 2, allowFaultInjection: true, snapshotIntervalMs: 3_600_000, corporateActionsCheckMs: 600_000, clock: { now: () => now } });
    cleanups.push(() => engine.close());
    // Holders on both shards.
    const ids: string[] = [];
    for (let i = 0; ids.length < 4 || new Set(ids.map((id) => engine.shardOf(id))).size < 2; i++) ids.push(`h${i}`);
    for (const id of ids) {
      await engine.createPortfolio({ id, cash: 10_000 });
      await engine.trade(id, { trade_id: `${id}-b`, symbol: 'SPL', side: 'buy', quantity: 10, price: 100 });
    }
    const announced = await engine.corporateAction({ action_id: 'split-x', type: 'split', symbol: 'SPL', from: 1, to: 2, effective_ts: now + 1_000 });
    expect(announced.ok && announced.value.action.status).toBe('pending');
    // The fault: shard 1's worker exits as it is handed the step's apply, before applying it; its
    // peer applies it. (A real exit of the real worker; only its timing is chosen here.)
    const victim = (engine as unknown as { pool: { shards: { index: number; post(m: unknown): void }[] } }).pool.shards[1];
    const post = victim.post.bind(victim);
    let armed = true;
    victim.post = (m: unknown) => {
      const c = m as { t: string; commands?: { kind: string; mode?: string }[] };
      if (armed && c.t === 'commands' && c.commands?.some((x) => x.kind === 'corporate' && x.mode === 'apply')) {
        armed = false;
        post({ t: 'crash', how: 'exit' });
      }
      post(m);
    };
    now += 2_000;
    await engine.checkCorporateActions();
    expect(armed).toBe(false);
    const waitReady = async () => {
      const end = Date.now() + 30_000;
      // The victim and the peer that applied the step both restart (the peer on the desk's order).
      while (engine.stats().shardRestarts < 2 || engine.shardStats().some((s) => s.state !== 'ready')) {
        if (Date.now() > end) throw new Error('shards not ready again');
        await sleep(10);
      }
    };
    await waitReady();
    // Rolled back everywhere: no portfolio split, nothing of the step in the log, still pending.
    for (const id of ids) {
      const s = await engine.snapshot(id);
      expect(s.ok && s.value.positions[0].quantity).toBe(10);
    }
    expect((await engine.queryEvents({ type: 'SplitApplied' })).ok && ((await engine.queryEvents({ type: 'SplitApplied' })) as { value: unknown[] }).value).toEqual([]);
    const pending = await engine.listCorporateActions();
    expect(pending.ok && pending.value.actions.find((a) => a.action_id === 'split-x')?.status).toBe('pending');
    // The next check applies it, once.
    await engine.checkCorporateActions();
    for (const id of ids) {
      const s = await engine.snapshot(id);
      expect(s.ok && s.value.positions[0].quantity).toBe(20);
    }
    const applied = await engine.queryEvents({ type: 'SplitApplied', limit: 1000 });
    expect(applied.ok && applied.value.map((e) => e.portfolio_id).sort()).toEqual([...ids].sort());
    expect(engine.stats().shardRestarts).toBeGreaterThanOrEqual(2); // the victim and the peer that applied
  }, 120_000);
});

describe('held suspect ticks', () => {
  it('survive kill -9 and a clean restart (store heldTicks), still keep the held print off the books, and are gone once settled', async () => {
    const d = dir();
    const c = child({ dir: d, mode: 'suspect' });
    await c.until(() => c.lines.some((l) => l.held !== undefined), 60_000, 'a durable hold');
    const before = c.lines.find((l) => l.held !== undefined)?.held as { symbol: string; price: number; ref_price: number }[];
    expect(before).toMatchObject([{ symbol: 'HSYM', price: 200, ref_price: 100 }]);
    c.proc.kill('SIGKILL');
    await new Promise((r) => c.proc.once('exit', r));

    // After the crash: the same tick is held, against the same reference; the books never saw 200.
    let engine = await createEngine({ dataDir: d, workers: 2, snapshotIntervalMs: 3_600_000 });
    expect(engine.suspectTicks()).toEqual(before);
    expect(engine.suspectHeldCount).toBe(1);
    let s = await engine.snapshot('h0');
    expect(s.ok && s.value.positions[0].last_price).toBe(100);
    await engine.close();

    // After a clean restart too; then a tick back near the reference rejects it (as before a restart
    // it would have: judged against the held price and the restored reference).
    engine = await createEngine({ dataDir: d, workers: 2, snapshotIntervalMs: 3_600_000 });
    expect(engine.suspectTicks()).toEqual(before);
    engine.ingestTicks([{ symbol: 'HSYM', price: 101, ts: Date.now() }]);
    await engine.drain();
    expect(engine.suspectTicks()).toEqual([]);
    s = await engine.snapshot('h0');
    expect(s.ok && s.value.positions[0].last_price).toBe(101);
    const rejected = await engine.queryEvents({ type: 'SuspectTickRejected' });
    expect(rejected.ok && rejected.value.map((e) => e.type === 'SuspectTickRejected' && e.price)).toEqual([200]);
    await engine.close();

    // Settled is settled: nothing is held after the next restart.
    engine = await createEngine({ dataDir: d, workers: 2, snapshotIntervalMs: 3_600_000 });
    cleanups.push(() => engine.close());
    expect(engine.suspectTicks()).toEqual([]);
    expect(engine.suspectHeldCount).toBe(0);
  }, 120_000);
});
