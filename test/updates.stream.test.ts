// Proves that a client applying the update byte stream holds exactly the figures of a snapshot taken at
// the same seq, and that those figures equal the exact decimal oracle (test/oracle/), over random
// histories of trades, ticks and shard restarts driven through a real engine (two shard workers, real
// LMDB) behind a real uWS server. Every way of receiving updates is held to it at once: JSON and binary
// (layout version 4: tick records decoded against the positions the reader holds), one message per update and per-connection frames, throttled (merged, from_seq)
// and not, the SDK and the in-process listeners (objects, and bytes decoded here).
// Also: the shard's binary delta decodes to the figures it would have sent before (codec properties
// bit for bit), a subscription started during a stream of batches never sees a delta older than its
// snapshot or a gap without from_seq, and bad subscribe options are refused and change nothing.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import type { EngineMessage } from '../src/engine/api.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { MtmClient } from '../src/client/client.js';
import { applyUpdate } from '../src/protocol/view.js';
import {
  DELTA_FLAG_HELD,
  DELTA_FLAG_MERGED,
  DELTA_HEAD_BYTES,
  DELTA_VERSION,
  DELTA_VERSION_V3,
  DeltaHead,
  decodeDelta,
  encodeDelta,
  encodeDeltaV3,
  encodeUpdatesFrame,
  heldPositionsOf,
  splitUpdatesFrame,
  type DeltaUpdate,
} from '../src/protocol/delta.js';
import { tickRecordsOf } from './support/deltaRecords.js';
import { decodeUpdate } from '../src/protocol/binary.js';
import type { PortfolioSnapshot, PortfolioUpdate, PositionView } from '../src/domain/types.js';
import { Ledger } from './oracle/ledger.js';
import { expectClose } from './oracle/compare.js';
import { ensureBuilt, tempDir } from './support/engine.js';
import { TestSocket, isType, sleep, until } from './support/serverHarness.js';

beforeAll(() => ensureBuilt());
const dirs: { remove(): void }[] = [];
afterAll(() => dirs.forEach((d) => d.remove()));

// ---- the codec ----

const f64 = fc.double();
const positionArb = (gross: number, asOf: number) =>
  fc
    .record({
      symbol: fc.stringMatching(/^[A-Za-z0-9._:/-]{1,32}$/),
      currency: fc.constantFrom('USD', 'EUR', 'JPY'),
      fx_rate: fc.option(fc.double({ noNaN: true }), { nil: null }),
      quantity: f64,
      avg_cost: f64,
      last_price: f64,
      market_value: fc.double({ noNaN: true }),
      unrealized_pnl: f64,
      realized_pnl: f64,
      return_rate: f64,
      price_ts: fc.option(fc.double({ noNaN: true }), { nil: null }),
      stale: fc.boolean(),
    })
    .map((p): PositionView => ({
      ...p,
      // The derived figures, by the rule the layout documents.
      weight: gross > 0 && p.fx_rate !== null ? (Math.abs(p.market_value) / gross) * 100 : 0,
      price_age_ms: p.price_ts === null ? null : asOf - p.price_ts,
    }));

const deltaArb: fc.Arbitrary<DeltaUpdate> = fc
  .record({ gross: fc.double({ noNaN: true }), asOf: fc.double({ noNaN: true }), capital: f64, cost: f64, upnl: f64, rpnl: f64 })
  .chain(({ gross, asOf, capital, cost, upnl, rpnl }) =>
    fc.record({
      portfolio_id: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
      seq: fc.nat(),
      back: fc.nat(5),
      as_of: fc.constant(asOf),
      state: fc.constantFrom('active' as const, 'paused' as const, 'closed' as const),
      tick_ts: f64,
      positions: fc.array(positionArb(gross, asOf), { maxLength: 12 }),
      cash: f64,
      equity: f64,
      holdings_value: f64,
      stale_positions: fc.nat(1_000),
      unpriced_positions: fc.nat(1_000),
      unconverted_positions: fc.nat(1_000),
      capital: fc.constant(capital),
      cost_basis: fc.constant(cost),
      unrealized_pnl: fc.constant(upnl),
      realized_pnl: fc.constant(rpnl),
      gross_exposure: fc.constant(gross),
    }),
  )
  .map(({ back, ...u }) => {
    const total = u.realized_pnl + u.unrealized_pnl;
    const rate = u.capital !== 0 ? (total / u.capital) * 100 : u.cost_basis !== 0 ? (total / u.cost_basis) * 100 : 0;
    return { ...u, from_seq: Math.max(0, u.seq - back), total_return: total, return_rate: rate };
  });

describe('binary delta, layouts version 4 (written) and 3 (still read)', () => {
  it('round-trips bit for bit (NaN and -0 included), derived figures by the documented rule', () => {
    fc.assert(
      fc.property(deltaArb, (u) => {
        const { from_seq, ...update } = u;
        for (const [version, encode] of [[DELTA_VERSION, encodeDelta], [DELTA_VERSION_V3, encodeDeltaV3]] as const) {
          const bytes = encode(update, from_seq);
          expect(bytes[DeltaHead.version]).toBe(version);
          const d = decodeDelta(bytes);
          expect(d.ok).toBe(true);
          if (!d.ok) return;
          expect(d.value).toEqual(u);
          // The SDK's decodeUpdate reads both versions the same way.
          expect(decodeUpdate(bytes)).toEqual(d);
          // Fixed offsets: the minimal reader's fields.
          const view = new DataView(bytes.buffer);
          expect(view.getFloat64(DeltaHead.seq, true)).toBe(u.seq);
          expect(view.getFloat64(DeltaHead.tickTs, true)).toBe(u.tick_ts);
          // Version 4 flags its full position records (what a reader holds changes); version 3 has no such bit.
          const held = version === DELTA_VERSION && u.positions.length > 0 ? DELTA_FLAG_HELD : 0;
          expect(bytes[DeltaHead.flags]).toBe((from_seq < u.seq ? DELTA_FLAG_MERGED : 0) | held);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses truncated or garbage records and frames without throwing', () => {
    fc.assert(
      fc.property(deltaArb, (u) => {
        for (const bytes of [encodeDelta(u, u.from_seq), encodeDeltaV3(u, u.from_seq)]) {
          for (let n = 0; n < bytes.length; n += 7) expect(decodeDelta(bytes.subarray(0, n)).ok).toBe(false);
          expect(decodeDelta(Uint8Array.from([...bytes, 0])).ok).toBe(false);
        }
        const bytes = encodeDelta(u, u.from_seq);
        const frame = encodeUpdatesFrame([bytes, bytes]);
        for (let n = 0; n < frame.length; n += 11) expect(splitUpdatesFrame(frame.subarray(0, n)).ok).toBe(false);
      }),
      { numRuns: 50 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (g) => {
        void decodeDelta(g);
        void splitUpdatesFrame(g);
        void decodeUpdate(g);
      }),
    );
    expect(decodeDelta(new Uint8Array(DELTA_HEAD_BYTES - 1))).toEqual({ ok: false, reason: 'frame shorter than its header' });
  });

  it('an updates frame carries its records unchanged, in order', () => {
    fc.assert(
      fc.property(fc.array(deltaArb, { maxLength: 8 }), (us) => {
        const records = us.map((u) => encodeDelta(u, u.from_seq));
        const split = splitUpdatesFrame(encodeUpdatesFrame(records));
        expect(split.ok).toBe(true);
        if (split.ok) expect(split.value.map((r) => [...r])).toEqual(records.map((r) => [...r]));
      }),
      { numRuns: 100 },
    );
  });
});

// ---- the stream, end to end ----

const symbols = ['AA', 'BB', 'CC', 'DD', 'EE'];
const portfolios = ['s0', 's1', 's2'];
const T0 = 1_800_000_000_000;

type Step =
  | { k: 'trade'; p: number; s: number; buy: boolean; q: number; px: number; close: boolean }
  | { k: 'ticks'; moves: { s: number; px: number }[] }
  | { k: 'restart'; shard: number };

const price = fc.integer({ min: 1, max: 2_000_000 }).map((n) => n / 1000);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('trade' as const), p: fc.nat(2), s: fc.nat(4), buy: fc.boolean(), q: fc.integer({ min: 1, max: 5_000_000 }).map((n) => n / 1e4), px: price, close: fc.boolean() }) },
  { weight: 10, arbitrary: fc.record({ k: fc.constant('ticks' as const), moves: fc.array(fc.record({ s: fc.nat(4), px: price }), { minLength: 1, maxLength: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('restart' as const), shard: fc.nat(1) }) },
);

/**
 * The figures a view and a snapshot share (name, limits, lots, hwm and cash balances are not in
 * updates). What changes with time alone is left out: as_of, and the ages and staleness reckoned from
 * it (a view is as of its last update), and price_ts: a tick at an unchanged price refreshes it in
 * snapshots but sends no update (README, Honest marks). -0 is compared as 0: JSON text cannot carry it.
 */
function figures(v: PortfolioSnapshot): Record<string, unknown> {
  const positions = [...v.positions].sort((a, b) => (a.symbol < b.symbol ? -1 : 1)).map(({ price_age_ms: _a, stale: _s, price_ts: _t, ...p }) => unsign(p));
  return unsign({
    portfolio_id: v.portfolio_id,
    seq: v.seq,
    state: v.state,
    cash: v.cash,
    capital: v.capital,
    holdings_value: v.holdings_value,
    cost_basis: v.cost_basis,
    unrealized_pnl: v.unrealized_pnl,
    realized_pnl: v.realized_pnl,
    total_return: v.total_return,
    return_rate: v.return_rate,
    equity: v.equity,
    gross_exposure: v.gross_exposure,
    unpriced_positions: v.unpriced_positions,
    unconverted_positions: v.unconverted_positions,
    positions,
  });
}

function unsign<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, x === 0 ? 0 : x])) as T;
}

function expectOracle(v: PortfolioSnapshot, ledger: Ledger, label: string): void {
  const f = ledger.portfolio(v.portfolio_id);
  for (const k of ['cash', 'capital', 'holdings_value', 'cost_basis', 'unrealized_pnl', 'realized_pnl', 'total_return', 'return_rate', 'equity'] as const) {
    expectClose(v[k], f[k], `${label}.${k}`);
  }
  for (const p of v.positions) {
    const e = ledger.position(v.portfolio_id, p.symbol);
    if (e === undefined) throw new Error(`${label}: oracle lacks ${p.symbol}`);
    for (const k of ['quantity', 'avg_cost', 'last_price', 'market_value', 'unrealized_pnl', 'realized_pnl', 'return_rate', 'weight'] as const) {
      expectClose(p[k], e[k], `${label}.${p.symbol}.${k}`);
    }
  }
  expect(v.positions.length, `${label} open positions`).toBe(f.positions.filter((p) => !p.quantity.isZero()).length);
}

interface Receiver {
  name: string;
  view(id: string): PortfolioSnapshot | null;
  gaps(): number;
}

/**
 * The update a non-snapshot message carries: decoded from its bytes for a bytes listener, its tick
 * records against the positions of the listener's view (its snapshot plus the updates since).
 */
function updateOf(m: Exclude<EngineMessage, { kind: 'snapshot' }>, view: PortfolioSnapshot | null): PortfolioUpdate {
  if (m.kind === 'update') return m.update;
  const d = decodeDelta(m.delta.bytes, view === null ? null : heldPositionsOf(view));
  if (!d.ok) throw new Error(d.reason);
  const { from_seq: _f, ...rest } = d.value;
  return rest;
}

function listen(engine: MtmEngine, bytes: boolean): Receiver & { tickRecords(): number } {
  const views = new Map<string, PortfolioSnapshot>();
  let gaps = 0;
  let tickRecords = 0;
  for (const id of portfolios) {
    const r = engine.subscribe(
      id,
      (m) => {
        if (m.kind === 'snapshot') return void views.set(id, m.snapshot);
        const v = views.get(id);
        if (v === undefined) return;
        if (m.kind === 'delta') tickRecords += tickRecordsOf(m.delta.bytes);
        const u = updateOf(m, v);
        if (u.seq !== v.seq + 1) gaps++;
        views.set(id, applyUpdate(v, u));
      },
      { bytes },
    );
    if (!r.ok) throw new Error(r.error.message);
  }
  return { name: bytes ? 'in-process bytes' : 'in-process objects', view: (id) => views.get(id) ?? null, gaps: () => gaps, tickRecords: () => tickRecords };
}

async function sdk(url: string, name: string, options: Parameters<MtmClient['subscribe']>[2]): Promise<Receiver & { client: MtmClient }> {
  const client = await MtmClient.connect({ url, reconnect: false });
  client.subscribe(portfolios, {}, options);
  return { name, client, view: (id) => client.portfolio(id), gaps: () => client.stats.gaps };
}

describe('the update stream holds the snapshot figures at the same seq', () => {
  it('for every encoding and framing, throttled or not, across shard restarts, equal to the oracle', async () => {
    let run = 0;
    let tickRuns = 0;
    let tickRecordRuns = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 25, maxLength: 60 }), async (steps) => {
        run++;
        const dir = tempDir();
        dirs.push(dir);
        const clock = { now: T0 };
        const engine = await createEngine({ dataDir: dir.path, workers: 2, suspectMovePct: 0, snapshotIntervalMs: 3_600_000, allowFaultInjection: true, clock: { now: () => clock.now } });
        let server: RunningServer | null = null;
        const clients: (Receiver & { client: MtmClient })[] = [];
        try {
          const ledger = new Ledger();
          for (const id of portfolios) {
            expect((await engine.createPortfolio({ id, cash: 1_000_000 })).ok).toBe(true);
            ledger.createPortfolio(id, 1_000_000);
          }
          server = await startServer(engine, { port: 0, log: null });
          clients.push(
            await sdk(server.url, 'json single', {}),
            await sdk(server.url, 'binary single', { encoding: 'binary' }),
            await sdk(server.url, 'json per-connection', { frames: 'connection' }),
            await sdk(server.url, 'binary per-connection', { encoding: 'binary', frames: 'connection' }),
            await sdk(server.url, 'binary throttled per-connection', { encoding: 'binary', frames: 'connection', throttleMs: 20 }),
            await sdk(server.url, 'json throttled', { throttleMs: 20 }),
          );
          const inBytes = listen(engine, true);
          const receivers: Receiver[] = [...clients, listen(engine, false), inBytes];
          const held = new Map<string, number>();
          let n = 0;
          for (const st of steps) {
            n++;
            clock.now += 1_000;
            if (st.k === 'trade') {
              const id = portfolios[st.p];
              const symbol = symbols[st.s];
              const position = held.get(id + symbol) ?? 0;
              const quantity = st.close && position !== 0 ? Math.abs(position) : st.q;
              const side = st.close && position !== 0 ? (position > 0 ? 'sell' : 'buy') : st.buy ? 'buy' : 'sell';
              const r = await engine.trade(id, { trade_id: `r${run}t${n}`, symbol, side, quantity, price: st.px });
              if (!r.ok && r.error.code === 'shard_restarting') continue;
              if (!r.ok) throw new Error(`trade refused: ${r.error.message}`);
              ledger.trade(id, { symbol, side, quantity, price: st.px });
              held.set(id + symbol, Math.round((position + (side === 'buy' ? quantity : -quantity)) * 1e4) / 1e4);
            } else if (st.k === 'ticks') {
              const r = engine.ingestTicks(st.moves.map((m) => ({ symbol: symbols[m.s], price: m.px })));
              expect(r.rejected).toEqual([]);
              for (const m of st.moves) ledger.tick(symbols[m.s], m.px);
            } else {
              const restarts = engine.shardStats()[st.shard].restarts;
              expect(engine.crashShard(st.shard, 'exit').ok).toBe(true);
              await until(() => engine.shardStats()[st.shard].restarts > restarts && engine.shardStats()[st.shard].state === 'ready', 20_000, 'the shard back');
              await sleep(50);
            }
          }
          await engine.drain();
          for (const id of portfolios) {
            const r = await engine.snapshot(id);
            if (!r.ok) throw new Error(r.error.message);
            const snap = r.value;
            expectOracle(snap, ledger, `snapshot ${id}`);
            for (const c of receivers) {
              await until(() => (c.view(id)?.seq ?? -1) >= snap.seq, 10_000, `${c.name} at seq ${snap.seq} of ${id} (has ${c.view(id)?.seq})`);
              const v = c.view(id) as PortfolioSnapshot;
              expect(figures(v), `${c.name}, ${id}`).toEqual(figures(snap));
              expectOracle(v, ledger, `${c.name} ${id}`);
            }
          }
          for (const c of receivers) expect(c.gaps(), `${c.name}: gaps`).toBe(0);
          // The compact records were exercised: positions a tick only re-marked went as tick records.
          if (steps.some((st) => st.k === 'ticks')) tickRuns++;
          if (inBytes.tickRecords() > 0) tickRecordRuns++;
        } finally {
          for (const c of clients) c.client.close();
          await server?.close();
          await engine.close();
        }
      }),
      // No shrinking: each run drives a whole engine and server; the failing history is printed as found.
      { numRuns: Number(process.env.STREAM_RUNS ?? 6), endOnFailure: true },
    );
    // Not every random history re-marks an open position without trading it; most do.
    expect(tickRecordRuns, `runs with tick records of ${tickRuns} with ticks`).toBeGreaterThan(0);
  }, 600_000);
});

describe('subscriptions during a stream, and bad subscribe options', () => {
  let engine: MtmEngine;
  let server: RunningServer;
  beforeAll(async () => {
    engine = await createEngine({ workers: 2, suspectMovePct: 0 });
    for (let i = 0; i < 20; i++) {
      await engine.createPortfolio({ id: `m${i}`, cash: 100_000 });
      for (const s of symbols) await engine.trade(`m${i}`, { trade_id: `m${i}${s}`, symbol: s, side: 'buy', quantity: 1 + i, price: 100 });
    }
    server = await startServer(engine, { port: 0, log: null });
  });
  afterAll(async () => {
    await server.close();
    await engine.close();
  });

  it('a subscription started while batches flow sees no delta older than its snapshot and no gap without from_seq', async () => {
    let running = true;
    const feed = (async () => {
      let k = 0;
      while (running) {
        engine.ingestTicks(symbols.map((s, i) => ({ symbol: s, price: 100 + ((k + i) % 17) / 4 })));
        k++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const ids = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const sockets: { s: TestSocket; binary: boolean }[] = [];
    try {
      for (const [encoding, frames] of [['json', 'single'], ['binary', 'single'], ['json', 'connection'], ['binary', 'connection']] as const) {
        for (let rep = 0; rep < 3; rep++) {
          const s = await TestSocket.open(server.url.replace('http', 'ws') + '/ws');
          s.send({ op: 'subscribe', portfolios: ids, encoding, frames });
          sockets.push({ s, binary: encoding === 'binary' });
          await sleep(5 + rep * 7);
        }
      }
      await sleep(300);
    } finally {
      running = false;
      await feed;
    }
    await engine.drain();
    await sleep(100);
    for (const { s, binary } of sockets) {
      const last = new Map<string, number>();
      const views = new Map<string, PortfolioSnapshot>();
      let updates = 0;
      const onUpdate = (u: { portfolio_id: string; seq: number; from_seq?: number }) => {
        const have = last.get(u.portfolio_id);
        expect(have, `update of ${u.portfolio_id} before its snapshot`).toBeDefined();
        expect(u.seq, `delta older than what ${u.portfolio_id} holds`).toBeGreaterThan(have as number);
        expect(u.from_seq ?? u.seq, `gap in ${u.portfolio_id}`).toBe((have as number) + 1);
        last.set(u.portfolio_id, u.seq);
        updates++;
      };
      for (const m of s.messages) {
        if (Buffer.isBuffer(m)) {
          expect(binary).toBe(true);
          const bytes = new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
          const records = bytes[0] === 0x02 ? splitUpdatesFrame(bytes) : { ok: true as const, value: [bytes] };
          if (!records.ok) throw new Error(records.reason);
          for (const r of records.value) {
            // Tick records decode against the positions the socket's view holds (snapshot plus updates).
            const id = new TextDecoder().decode(r.subarray(DeltaHead.id, DeltaHead.id + r[DeltaHead.idLength]));
            const v = views.get(id);
            expect(v, `update of ${id} before its snapshot`).toBeDefined();
            const d = decodeDelta(r, heldPositionsOf(v as PortfolioSnapshot));
            if (!d.ok) throw new Error(d.reason);
            onUpdate(d.value.from_seq < d.value.seq ? d.value : { ...d.value, from_seq: undefined });
            views.set(id, applyUpdate(v as PortfolioSnapshot, d.value));
          }
        } else if (m.type === 'snapshot') {
          last.set(m.portfolio_id, m.seq);
          const { type: _t, resync: _r, ...snap } = m;
          views.set(m.portfolio_id, snap as PortfolioSnapshot);
        }
        else if (m.type === 'update') onUpdate(m);
        else if (m.type === 'updates') for (const u of m.updates) onUpdate(u);
      }
      expect(last.size).toBe(20);
      expect(updates).toBeGreaterThan(0);
      await s.close();
    }
  });

  it('refuses unknown frame options, absurd throttles and 100k subscriptions in one message, and changes nothing', async () => {
    const s = await TestSocket.open(server.url.replace('http', 'ws') + '/ws');
    s.send({ op: 'subscribe', id: 1, portfolios: ['m0'], frames: 'batch' });
    expect(await s.next(isType('error'))).toMatchObject({ id: 1, code: 'invalid_field', field: 'frames', message: "frames must be 'single' or 'connection'" });
    s.send({ op: 'subscribe', id: 2, portfolios: ['m0'], frames: 7 });
    expect(await s.next(isType('error'))).toMatchObject({ id: 2, code: 'invalid_field', field: 'frames' });
    for (const [i, t] of [1e12, -5, 1.5, 'fast', 5].entries()) {
      s.send({ op: 'subscribe', id: 10 + i, portfolios: ['m0'], throttle_ms: t });
      expect(await s.next(isType('error'))).toMatchObject({ id: 10 + i, code: 'invalid_field', field: 'throttle_ms' });
    }
    // 16k ids fit in one frame (under maxPayloadBytes, 64 KiB) and are refused by their count...
    s.send({ op: 'subscribe', id: 3, portfolios: Array.from({ length: 16_000 }, () => 'x') });
    expect(await s.next(isType('error'))).toMatchObject({ id: 3, code: 'limit_exceeded', field: 'portfolios' });
    // ...100k do not fit: uWS closes that socket (1009; the client may see 1006 when it is closed while
    // still sending), and nothing else is touched.
    const big = await TestSocket.open(server.url.replace('http', 'ws') + '/ws');
    big.send({ op: 'subscribe', id: 4, portfolios: Array.from({ length: 100_000 }, () => 'x') });
    expect([1009, 1006]).toContain(await big.closed);
    // Nothing was subscribed: ticks bring this socket no snapshot and no update.
    engine.ingestTicks([{ symbol: 'AA', price: 321 }]);
    await engine.drain();
    await sleep(100);
    expect(s.all((m) => Buffer.isBuffer(m) || m.type === 'snapshot' || m.type === 'update' || m.type === 'updates' || m.type === 'subscribed')).toEqual([]);
    s.send({ op: 'ping', id: 'alive' });
    expect(await s.next(isType('pong'))).toMatchObject({ id: 'alive' });
    await s.close();
  });
});

describe('the shard writes foreign-currency and multiplier positions from its per-row slots', () => {
  // Pins the delta writer's row slots (quantity shown, realized P&L, currency, quoted: refreshed when a
  // command replaces a book's state): a position in EUR before any EURUSD tick (unconverted), the
  // same after the first rate tick, a futures position at multiplier 50 (quantity shown is the book's,
  // values carry the multiplier), a partial sale (realized P&L), and rate ticks alone. After every step
  // a client applying the deltas (bytes decoded, and objects) holds the snapshot's figures bit for bit.
  // Also pins a bug it found in applyUpdate (src/protocol/view.ts): it gave an unconverted position
  // (fx_rate null) a weight, where snapshots give it 0.
  it('equal to the snapshot at the same seq after every step', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const engine = await createEngine({ dataDir: dir.path, workers: 1, suspectMovePct: 0 });
    try {
      expect((await engine.defineInstrument('FUT', { asset_class: 'future', currency: 'USD', multiplier: 50 })).ok).toBe(true);
      expect((await engine.createPortfolio({ id: 'fxm', cash: 1_000_000 })).ok).toBe(true);
      const views = { bytes: null as PortfolioSnapshot | null, objects: null as PortfolioSnapshot | null };
      let tickRecords = 0;
      for (const kind of ['bytes', 'objects'] as const) {
        const r = engine.subscribe(
          'fxm',
          (m) => {
            if (m.kind === 'snapshot') return void (views[kind] = m.snapshot);
            if (views[kind] === null) return;
            if (m.kind === 'delta') tickRecords += tickRecordsOf(m.delta.bytes);
            const u = updateOf(m, views[kind]);
            views[kind] = applyUpdate(views[kind] as PortfolioSnapshot, u);
          },
          { bytes: kind === 'bytes' },
        );
        expect(r.ok).toBe(true);
      }
      const check = async (label: string) => {
        await engine.drain();
        const r = await engine.snapshot('fxm');
        if (!r.ok) throw new Error(r.error.message);
        for (const kind of ['bytes', 'objects'] as const) {
          await until(() => (views[kind]?.seq ?? -1) >= r.value.seq, 5_000, `${kind} at seq ${r.value.seq} (${label})`);
          expect(figures(views[kind] as PortfolioSnapshot), `${kind}: ${label}`).toEqual(figures(r.value));
        }
        return r.value;
      };
      const trade = async (id: string, t: Record<string, unknown>) => {
        const r = await engine.trade('fxm', { trade_id: id, ...t } as never);
        if (!r.ok) throw new Error(r.error.message);
      };
      await trade('a', { symbol: 'SAP', side: 'buy', quantity: 10, price: 100, currency: 'EUR', fx_rate: 1.08 });
      await trade('b', { symbol: 'FUT', side: 'buy', quantity: 3, price: 4_000 });
      await trade('c', { symbol: 'IBM', side: 'buy', quantity: 7, price: 150 });
      let s = await check('EUR position without a rate');
      expect(s.unconverted_positions).toBe(2); // the EUR position and the EUR cash balance
      engine.ingestTicks([{ symbol: 'SAP', price: 101 }, { symbol: 'FUT', price: 4_010 }]);
      s = await check('ticks, EUR still unconverted');
      expect(s.positions.find((p) => p.symbol === 'SAP')?.fx_rate).toBeNull();
      engine.ingestTicks([{ symbol: 'EURUSD', price: 1.1 }]);
      s = await check('the first EURUSD tick');
      expect(s.unconverted_positions).toBe(0);
      expect(s.positions.find((p) => p.symbol === 'FUT')?.quantity).toBe(3);
      await trade('d', { symbol: 'IBM', side: 'sell', quantity: 2, price: 160 });
      await trade('e', { symbol: 'SAP', side: 'sell', quantity: 4, price: 105, currency: 'EUR' });
      s = await check('partial sales: realized P&L per position');
      expect(s.positions.find((p) => p.symbol === 'IBM')?.realized_pnl).toBe(20);
      engine.ingestTicks([{ symbol: 'EURUSD', price: 1.2 }]);
      await check('a rate tick alone');
      engine.ingestTicks([{ symbol: 'FUT', price: 3_990 }, { symbol: 'IBM', price: 149.5 }, { symbol: 'EURUSD', price: 1.15 }]);
      await check('every symbol moves');
      await trade('f', { symbol: 'FUT', side: 'sell', quantity: 3, price: 3_995 });
      s = await check('the futures position closed');
      expect(s.positions.map((p) => p.symbol).sort()).toEqual(['IBM', 'SAP']);
      // IBM re-marked by ticks went as tick records (the futures position, multiplier 50, never does).
      expect(tickRecords).toBeGreaterThan(0);
    } finally {
      await engine.close();
    }
  }, 60_000);
});
