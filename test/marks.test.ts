// Proves honest marks on a real engine (real shard worker threads, real LMDB in a temp dir, an
// injected clock) and a real uWS server:
// - every position says how old its mark is: price_ts (source ts of the tick behind it, null while the
//   symbol never ticked), price_age_ms = as_of - price_ts, stale (unpriced or older than staleAfterMs),
//   in snapshots, updates and trade results; totals count stale and unpriced open positions;
// - marks restored after a restart keep their source timestamps (a restart makes nothing fresh), and a
//   past snapshot (as_of) ages its marks as they were then;
// - a tick moving a price more than suspectMovePct from the last applied one is held: it changes no
//   figure, no update, no risk check; the next tick confirms it (near the held price) or rejects it
//   (back near the reference); a newer suspect tick replaces it; an admin confirms or rejects it over
//   HTTP; every step is an audit event under '_market', counted in the feed acks and the metrics;
// - suspectMovePct 0 disables the filter; rescaleMarkReference moves the reference (a split).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, EngineStartError, type MtmEngine } from '../src/engine/engine.js';
import { EngineMetrics } from '../src/metrics/engineMetrics.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { CONFIRM, HOLD, PASS, REJECT, REPLACE, SuspectFilter } from '../src/engine/suspect.js';
import { encodeFeedRegister, encodeFeedTicks } from '../src/protocol/binary.js';
import type { PortfolioSnapshot, StoredEvent } from '../src/domain/types.js';
import { Inbox, ensureBuilt, tempDir } from './support/engine.js';
import { TestSocket, http, isType } from './support/serverHarness.js';

const T0 = 1_700_000_000_000;
const sec = 1_000;

beforeAll(() => ensureBuilt());

function must<T>(r: { ok: true; value: T } | { ok: false; error: { message: string } }): T {
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

async function snap(engine: MtmEngine, id: string): Promise<PortfolioSnapshot> {
  return must(await engine.snapshot(id));
}

async function marketEvents(engine: MtmEngine, type: StoredEvent['type']): Promise<StoredEvent[]> {
  return must(await engine.queryEvents({ portfolio_id: '_market', type }));
}

/** Every figure of a snapshot but the ones that move with the clock alone. */
function figures(s: PortfolioSnapshot): unknown {
  const { as_of: _a, ...rest } = s;
  return { ...rest, positions: s.positions.map(({ price_age_ms: _p, ...p }) => p) };
}

describe('price age and staleness (staleAfterMs 60 s)', () => {
  const clock = { now: T0 };
  let engine: MtmEngine;

  beforeAll(async () => {
    engine = await createEngine({ workers: 1, clock: { now: () => clock.now } });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('worked example: unpriced, fresh, exactly at the bound, stale; counts over open positions only', async () => {
    must(await engine.createPortfolio({ id: 'age', cash: 10_000 }));
    const buy = must(await engine.trade('age', { trade_id: 'a1', symbol: 'AGE', side: 'buy', quantity: 10, price: 100 }));
    // Never ticked: marked at the trade price, unpriced, so stale.
    expect(buy.position).toMatchObject({ last_price: 100, price_ts: null, price_age_ms: null, stale: true });
    expect(buy.totals).toMatchObject({ stale_positions: 1, unpriced_positions: 1 });

    expect(engine.ingestTick('AGE', 101, T0 - 5 * sec)).toBeNull();
    await engine.drain();
    clock.now = T0 + 1 * sec;
    let s = await snap(engine, 'age');
    // age = as_of - price_ts = (T0 + 1 s) - (T0 - 5 s) = 6 s
    expect(s.as_of).toBe(T0 + 1 * sec);
    expect(s.positions[0]).toMatchObject({ symbol: 'AGE', last_price: 101, price_ts: T0 - 5 * sec, price_age_ms: 6 * sec, stale: false });
    expect(s).toMatchObject({ stale_positions: 0, unpriced_positions: 0 });

    // Exactly staleAfterMs old is not stale yet (the rule is age > staleAfterMs); one ms more is.
    clock.now = T0 + 55 * sec;
    s = await snap(engine, 'age');
    expect(s.positions[0]).toMatchObject({ price_age_ms: 60 * sec, stale: false });
    clock.now = T0 + 55 * sec + 1;
    s = await snap(engine, 'age');
    expect(s.positions[0]).toMatchObject({ price_age_ms: 60 * sec + 1, stale: true });
    expect(s).toMatchObject({ stale_positions: 1, unpriced_positions: 0 });

    // A second, never-ticked symbol: stale_positions counts it too (unpriced is stale).
    const b = must(await engine.trade('age', { trade_id: 'a2', symbol: 'NEVER', side: 'buy', quantity: 1, price: 7 }));
    expect(b.position).toMatchObject({ price_ts: null, price_age_ms: null, stale: true });
    expect(b.totals).toMatchObject({ stale_positions: 2, unpriced_positions: 1 });
    // A closed position counts nowhere.
    const c = must(await engine.trade('age', { trade_id: 'a3', symbol: 'NEVER', side: 'sell', quantity: 1, price: 7 }));
    expect(c.position).toMatchObject({ quantity: 0 });
    expect(c.totals).toMatchObject({ stale_positions: 1, unpriced_positions: 0 });
  });

  it('updates report ages as of their own as_of', async () => {
    must(await engine.createPortfolio({ id: 'upd', cash: 10_000 }));
    must(await engine.trade('upd', { trade_id: 'u1', symbol: 'UPA', side: 'buy', quantity: 1, price: 10 }));
    must(await engine.trade('upd', { trade_id: 'u2', symbol: 'UPB', side: 'buy', quantity: 1, price: 20 }));
    const inbox = new Inbox();
    must(engine.subscribe('upd', inbox.listener));
    await inbox.until(() => inbox.snapshots().length === 1);
    clock.now = T0 + 100 * sec;
    engine.ingestTick('UPA', 11, T0 + 99 * sec);
    await engine.drain();
    await inbox.until(() => inbox.updates().length === 1);
    const u = inbox.updates()[0];
    expect(u.as_of).toBe(T0 + 100 * sec);
    expect(u.positions).toEqual([expect.objectContaining({ symbol: 'UPA', price_ts: T0 + 99 * sec, price_age_ms: 1 * sec, stale: false })]);
    // UPB never ticked: not in the update, but counted in its totals.
    expect(u).toMatchObject({ stale_positions: 1, unpriced_positions: 1 });
  });

  it('refuses bad mark options, naming the option and the rule', async () => {
    await expect(createEngine({ staleAfterMs: -1 })).rejects.toThrow(EngineStartError);
    await expect(createEngine({ staleAfterMs: 1.5 })).rejects.toThrow(/staleAfterMs must be a whole number of milliseconds >= 0/);
    await expect(createEngine({ suspectMovePct: Number.NaN })).rejects.toThrow(/suspectMovePct must be a finite number >= 0/);
  });
});

describe('after a restart', () => {
  it('marks keep their source timestamps, and the first tick is judged against the restored price', async () => {
    const dir = tempDir();
    const clock = { now: T0 };
    try {
      let engine = await createEngine({ workers: 2, dataDir: dir.path, clock: { now: () => clock.now } });
      must(await engine.createPortfolio({ id: 'rs', cash: 10_000 }));
      must(await engine.trade('rs', { trade_id: 'r1', symbol: 'RST', side: 'buy', quantity: 2, price: 50 }));
      engine.ingestTick('RST', 52, T0 - 1 * sec);
      await engine.drain();
      clock.now = T0 + 1 * sec;
      expect((await snap(engine, 'rs')).positions[0]).toMatchObject({ price_ts: T0 - 1 * sec, price_age_ms: 2 * sec, stale: false });
      await engine.close();

      clock.now = T0 + 120 * sec;
      engine = await createEngine({ workers: 2, dataDir: dir.path, clock: { now: () => clock.now } });
      try {
        const s = await snap(engine, 'rs');
        // Not fresh because the process restarted: the mark is the tick from 121 s ago.
        expect(s.positions[0]).toMatchObject({ last_price: 52, price_ts: T0 - 1 * sec, price_age_ms: 121 * sec, stale: true });
        expect(s).toMatchObject({ stale_positions: 1, unpriced_positions: 0 });
        // A past state ages its marks as they were then.
        const past = must(await engine.snapshotAt('rs', T0 + 1 * sec));
        expect(past.positions[0]).toMatchObject({ last_price: 52, price_ts: T0 - 1 * sec, price_age_ms: 2 * sec, stale: false });
        // The restored price is the reference: a jump right after the restart is held.
        expect(engine.ingestTicks([{ symbol: 'RST', price: 104, ts: T0 + 119 * sec }])).toEqual({ accepted: 1, rejected: [], held: 1 });
        expect(engine.suspectTicks()).toEqual([{ symbol: 'RST', price: 104, tick_ts: T0 + 119 * sec, ref_price: 52, move_pct: 100 }]);
      } finally {
        await engine.close();
      }
    } finally {
      dir.remove();
    }
  });
});

describe('after a shard worker restart', () => {
  it('restored marks keep their source timestamps', async () => {
    const clock = { now: T0 };
    const engine = await createEngine({ workers: 1, allowFaultInjection: true, clock: { now: () => clock.now } });
    try {
      must(await engine.createPortfolio({ id: 'cr', cash: 1_000 }));
      must(await engine.trade('cr', { trade_id: 'c1', symbol: 'CRS', side: 'buy', quantity: 1, price: 10 }));
      engine.ingestTick('CRS', 11, T0 - 30 * sec);
      await engine.drain();
      expect(engine.crashShard(0, 'exit').ok).toBe(true);
      clock.now = T0 + 40 * sec;
      let s: PortfolioSnapshot | null = null;
      for (let i = 0; i < 200 && (s === null || engine.stats().shardRestarts === 0); i++) {
        const r = await engine.snapshot('cr');
        s = r.ok ? r.value : null;
        if (s === null || engine.stats().shardRestarts === 0) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(engine.stats().shardRestarts).toBe(1);
      expect(s?.positions[0]).toMatchObject({ last_price: 11, price_ts: T0 - 30 * sec, price_age_ms: 70 * sec, stale: true });
    } finally {
      await engine.close();
    }
  });
});

describe('suspect ticks (suspectMovePct 50)', () => {
  const clock = { now: T0 };
  let engine: MtmEngine;
  let metrics: EngineMetrics;

  beforeAll(async () => {
    engine = await createEngine({ workers: 2, clock: { now: () => clock.now } });
    metrics = new EngineMetrics({ engine, uwsBinary: 'native', sampleIntervalMs: 3_600_000 });
  });
  afterAll(async () => {
    metrics?.close();
    await engine?.close();
  });

  async function metric(name: string, labels = ''): Promise<number> {
    const text = (await metrics.scrape()).body;
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
    return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  it('the first tick of a symbol is never suspect; a jump is held and changes no figure, update or risk check', async () => {
    must(await engine.createPortfolio({ id: 'sus', cash: 100_000 }));
    must(await engine.trade('sus', { trade_id: 's1', symbol: 'SUS', side: 'sell', quantity: 10, price: 100 }));
    // First tick: 3x the trade price, yet applied (there is no reference yet).
    expect(engine.ingestTicks([{ symbol: 'SUS', price: 300, ts: T0 }])).toEqual({ accepted: 1, rejected: [], held: 0 });
    await engine.drain();
    // Short 10 from 100: a loss of 2000 at 300; the print at 500 would lose 4000 and pause the portfolio.
    must(await engine.setLimits('sus', { max_loss: 3_000 }));
    const inbox = new Inbox();
    must(engine.subscribe('sus', inbox.listener));
    await inbox.until(() => inbox.snapshots().length === 1);
    const before = await snap(engine, 'sus');
    const heldBefore = await metric('mtm_ticks_suspect_total', '{outcome="held"}');

    // 300 -> 500: a move of 66.7 % > 50 %: held.
    clock.now = T0 + 1 * sec;
    expect(engine.ingestTicks([{ symbol: 'SUS', price: 500, ts: T0 + 1 * sec }])).toEqual({ accepted: 1, rejected: [], held: 1 });
    await engine.drain();
    const during = await snap(engine, 'sus');
    expect(figures(during)).toEqual(figures(before));
    expect(during.state).toBe('active');
    expect(during.positions[0]).toMatchObject({ last_price: 300, price_ts: T0 });
    expect(inbox.updates()).toEqual([]);
    expect(engine.suspectTicks()).toEqual([{ symbol: 'SUS', price: 500, tick_ts: T0 + 1 * sec, ref_price: 300, move_pct: (500 / 300 - 1) * 100 }]);
    const [held] = await marketEvents(engine, 'SuspectTickHeld');
    expect(held).toMatchObject({ type: 'SuspectTickHeld', portfolio_id: '_market', symbol: 'SUS', price: 500, ref_price: 300, tick_ts: T0 + 1 * sec, ts: T0 + 1 * sec });
    expect(held.type === 'SuspectTickHeld' && held.move_pct).toBeCloseTo(66.667, 3);
    expect(await metric('mtm_ticks_suspect_total', '{outcome="held"}')).toBe(heldBefore + 1);
    expect(await metric('mtm_suspect_ticks_held')).toBe(1);
    expect(must(await engine.queryEvents({ portfolio_id: 'sus', type: 'RiskLimitBreached' }))).toEqual([]);
  });

  it('a next tick within the bound of the held price confirms it: the new level is real, the newer tick applies', async () => {
    const confirmedBefore = await metric('mtm_ticks_suspect_total', '{outcome="confirmed"}');
    clock.now = T0 + 2 * sec;
    // 520 is 4 % from the held 500 and 73 % from the reference 300.
    expect(engine.ingestTicks([{ symbol: 'SUS', price: 520, ts: T0 + 2 * sec }])).toEqual({ accepted: 1, rejected: [], held: 0 });
    await engine.drain();
    const s = await snap(engine, 'sus');
    expect(s.positions[0]).toMatchObject({ last_price: 520, price_ts: T0 + 2 * sec });
    // The real move is a real loss: (100 - 520) * 10 = -4200 passes max_loss 3000, so the portfolio pauses.
    expect(s.unrealized_pnl).toBe(-4_200);
    expect(s.state).toBe('paused');
    expect(engine.suspectTicks()).toEqual([]);
    const confirmed = await marketEvents(engine, 'SuspectTickConfirmed');
    expect(confirmed).toEqual([expect.objectContaining({ symbol: 'SUS', price: 500, ref_price: 300, tick_ts: T0 + 1 * sec, by: 'tick' })]);
    expect(await metric('mtm_ticks_suspect_total', '{outcome="confirmed"}')).toBe(confirmedBefore + 1);
    expect(await metric('mtm_suspect_ticks_held')).toBe(0);
    // The confirming price is the new reference: 540 is an ordinary tick.
    expect(engine.ingestTicks([{ symbol: 'SUS', price: 540, ts: T0 + 3 * sec }]).held).toBe(0);
    await engine.drain();
  });

  it('a next tick back within the bound of the reference rejects the held one as a bad print', async () => {
    must(await engine.createPortfolio({ id: 'bad', cash: 10_000 }));
    must(await engine.trade('bad', { trade_id: 'b1', symbol: 'BAD', side: 'buy', quantity: 1, price: 300 }));
    engine.ingestTick('BAD', 300, T0 + 10 * sec);
    await engine.drain();
    const rejectedBefore = await metric('mtm_ticks_suspect_total', '{outcome="rejected"}');
    // A fat finger: 30 (-90 %).
    expect(engine.ingestTicks([{ symbol: 'BAD', price: 30, ts: T0 + 11 * sec }]).held).toBe(1);
    await engine.drain();
    expect((await snap(engine, 'bad')).positions[0].last_price).toBe(300);
    // 303: 1 % from the reference, 910 % from the held price.
    expect(engine.ingestTicks([{ symbol: 'BAD', price: 303, ts: T0 + 12 * sec }]).held).toBe(0);
    await engine.drain();
    expect((await snap(engine, 'bad')).positions[0]).toMatchObject({ last_price: 303, price_ts: T0 + 12 * sec });
    expect(await marketEvents(engine, 'SuspectTickRejected')).toEqual([expect.objectContaining({ symbol: 'BAD', price: 30, ref_price: 300, move_pct: 90, by: 'tick' })]);
    expect(await metric('mtm_ticks_suspect_total', '{outcome="rejected"}')).toBe(rejectedBefore + 1);
  });

  it('holds at most one tick per symbol: a newer suspect tick replaces the held one', async () => {
    engine.ingestTick('BAD', 30, T0 + 13 * sec);
    engine.ingestTick('BAD', 3_000, T0 + 14 * sec); // far from the held 30 and from the reference 303
    expect(engine.suspectTicks()).toEqual([expect.objectContaining({ symbol: 'BAD', price: 3_000, ref_price: 303, tick_ts: T0 + 14 * sec })]);
    expect(engine.suspectHeldCount).toBe(1);
    // An out-of-order tick (older than the last applied one) is not judged: it never moves the mark anyway.
    expect(engine.ingestTicks([{ symbol: 'BAD', price: 1, ts: T0 }]).held).toBe(0);
    expect(engine.suspectTicks()).toHaveLength(1);
    // Settled at last by a tick near the reference.
    engine.ingestTick('BAD', 300, T0 + 15 * sec);
    await engine.drain();
    expect(engine.suspectTicks()).toEqual([]);
    expect((await snap(engine, 'bad')).positions[0].last_price).toBe(300);
  });

  it('rescaleMarkReference moves the reference and any held price (a 2-for-1 split)', async () => {
    engine.ingestTick('SPL', 90, T0 + 20 * sec);
    engine.ingestTick('SPL', 300, T0 + 21 * sec); // held: +233 %
    expect(engine.rescaleMarkReference('SPL', 0.5).ok).toBe(true);
    expect(engine.suspectTicks()).toEqual([expect.objectContaining({ symbol: 'SPL', price: 150, ref_price: 45 })]);
    // 44 is near the rescaled reference (45; -51 % from the old one): the held tick is rejected, 44 applies.
    expect(engine.ingestTicks([{ symbol: 'SPL', price: 44, ts: T0 + 22 * sec }]).held).toBe(0);
    expect(engine.suspectTicks()).toEqual([]);
    expect(engine.rescaleMarkReference('NOPE', 2)).toMatchObject({ ok: false, error: { code: 'symbol_not_found', field: 'symbol' } });
    expect(engine.rescaleMarkReference('bad sym', 2)).toMatchObject({ ok: false, error: { code: 'invalid_symbol', field: 'symbol' } });
    for (const factor of [0, -1, Number.NaN, Infinity]) expect(engine.rescaleMarkReference('SPL', factor)).toMatchObject({ ok: false, error: { code: 'invalid_field', field: 'factor' } });
    await engine.drain();
  });
});

describe('SuspectFilter (unit)', () => {
  it('decides by the bounds of the reference and of the held price; rescale scales both', () => {
    const f = new SuspectFilter(4, 50);
    expect(f.check(0, 1_000)).toBe(PASS); // no reference yet
    f.applied(0, 100);
    expect(f.check(0, 150)).toBe(PASS); // exactly 50 %: not more than the bound
    expect(f.check(0, 150.01)).toBe(HOLD);
    f.hold(0, 200, 1, NaN);
    expect(f.check(0, 210)).toBe(CONFIRM); // 5 % from held, 110 % from ref
    expect(f.check(0, 90)).toBe(REJECT); // 10 % from ref, 55 % from held
    expect(f.check(0, 1_000)).toBe(REPLACE);
    // Within both bounds the nearer level decides.
    expect(f.check(0, 130)).toBe(REJECT); // 30 % from ref, 35 % from held
    expect(f.check(0, 150)).toBe(CONFIRM); // 50 % from ref, 25 % from held
    f.rescale(0, 0.5);
    expect([f.refOf(0), f.heldPriceOf(0)]).toEqual([50, 100]);
    f.release(0);
    expect(f.heldCount).toBe(0);
    expect(new SuspectFilter(4, 0).check(0, 1e9)).toBe(PASS);
  });
});

describe('suspect filter disabled (suspectMovePct 0)', () => {
  it('applies every in-order tick, however far it moves', async () => {
    const engine = await createEngine({ workers: 1, suspectMovePct: 0 });
    try {
      must(await engine.createPortfolio({ id: 'off', cash: 0 }));
      must(await engine.trade('off', { trade_id: 'o1', symbol: 'OFF', side: 'buy', quantity: 1, price: 10 }));
      engine.ingestTick('OFF', 10, Date.now());
      expect(engine.ingestTicks([{ symbol: 'OFF', price: 100, ts: Date.now() + 1 }])).toEqual({ accepted: 1, rejected: [], held: 0 });
      await engine.drain();
      expect((await snap(engine, 'off')).positions[0].last_price).toBe(100);
      expect(engine.suspectTicks()).toEqual([]);
      expect(engine.ticksHeldCount()).toBe(0);
    } finally {
      await engine.close();
    }
  });
});

describe('admin settlement over HTTP and feed acks', () => {
  const keys = [
    { key: 'admin-key-0123456789', name: 'admin', scopes: ['admin'] },
    { key: 'market-key-0123456789', name: 'market', scopes: ['read:market'] },
    { key: 'feeder-key-0123456789', name: 'feeder', scopes: ['feed'] },
  ];
  const [ADMIN, MARKET, FEEDER] = keys.map((k) => k.key);
  let engine: MtmEngine;
  let server: RunningServer;

  beforeAll(async () => {
    engine = await createEngine({ workers: 1 });
    server = await startServer(engine, { port: 0, log: null, keys, limits: { commandsPerSecond: 100_000 } });
    const r = await http(server.url, 'POST', '/api/v1/portfolios', { id: 'adm', cash: 10_000 }, ADMIN);
    expect(r.status).toBe(201);
    expect((await http(server.url, 'POST', '/api/v1/portfolios/adm/trades', { trade_id: 'x1', symbol: 'ADM', side: 'buy', quantity: 1, price: 100 }, ADMIN)).status).toBe(201);
  });
  afterAll(async () => {
    await server?.close();
    await engine?.close();
  });

  it('counts held ticks in the HTTP and feed acks, apart from rejected ones', async () => {
    const now = Date.now();
    const r = await http(server.url, 'POST', '/api/v1/ticks', [{ symbol: 'ADM', price: 100, ts: now }, { symbol: 'ADM', price: -1, ts: now }, { symbol: 'ADM', price: 400, ts: now + 1 }], FEEDER);
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ accepted: 2, rejected: [{ index: 1, code: 'invalid_price' }], held: 1 });
    const feed = await TestSocket.open(server.url.replace('http', 'ws') + '/ws/feed', { key: FEEDER });
    feed.send({ op: 'ticks', ticks: [{ symbol: 'FDA', price: 10, ts: now }, { symbol: 'FDA', price: 100, ts: now + 1 }] });
    expect(await feed.next(isType('feed_ack'))).toMatchObject({ accepted: 2, rejected: 0, held: 1 });
    feed.send(encodeFeedRegister(['FDB']));
    await feed.next(isType('registered'));
    feed.send(encodeFeedTicks([
      { symbolId: 0, price: 10, ts: now, size: NaN },
      { symbolId: 0, price: 1, ts: now + 1, size: NaN },
      { symbolId: 7, price: 1, ts: now + 1, size: NaN },
    ]));
    expect(await feed.next(isType('feed_ack', (m) => m.batch === 2))).toMatchObject({ accepted: 2, rejected: 1, held: 1 });
    await feed.close();
    await engine.drain();
  });

  it('lists held ticks (read:market) and lets only an admin settle them', async () => {
    const list = await http(server.url, 'GET', '/api/v1/marks/suspect', undefined, MARKET);
    expect(list.status).toBe(200);
    expect(list.body.ticks.map((t: { symbol: string; price: number; ref_price: number }) => [t.symbol, t.price, t.ref_price])).toEqual([
      ['ADM', 400, 100],
      ['FDA', 100, 10],
      ['FDB', 1, 10],
    ]);
    expect((await http(server.url, 'GET', '/api/v1/marks/suspect', undefined, FEEDER)).status).toBe(403);
    const denied = await http(server.url, 'POST', '/api/v1/marks/ADM/confirm', undefined, MARKET);
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('forbidden');
    expect(engine.suspectTicks()).toHaveLength(3);
  });

  it('an admin confirm applies the held price; a reject drops it; both are audited; mistakes are 404', async () => {
    const ok = await http(server.url, 'POST', '/api/v1/marks/ADM/confirm', undefined, ADMIN);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ symbol: 'ADM', price: 400, ref_price: 100, move_pct: 300, outcome: 'confirmed' });
    await engine.drain();
    expect((await snap(engine, 'adm')).positions[0]).toMatchObject({ last_price: 400, market_value: 400 });
    // Confirmed: 400 is the reference now.
    expect(engine.ingestTicks([{ symbol: 'ADM', price: 410, ts: Date.now() + 5 }]).held).toBe(0);

    const rej = await http(server.url, 'POST', '/api/v1/marks/FDA/reject', undefined, ADMIN);
    expect(rej.status).toBe(200);
    expect(rej.body).toMatchObject({ symbol: 'FDA', price: 100, ref_price: 10, outcome: 'rejected' });
    // Rejected: 10 stays the reference, so 100 is suspect again.
    expect(engine.ingestTicks([{ symbol: 'FDA', price: 100, ts: Date.now() + 5 }]).held).toBe(1);

    const events = await http(server.url, 'GET', '/api/v1/portfolios/_market/events?limit=1000', undefined, MARKET);
    const settled = events.body.events.filter((e: StoredEvent) => e.type === 'SuspectTickConfirmed' || e.type === 'SuspectTickRejected');
    expect(settled).toEqual([
      expect.objectContaining({ type: 'SuspectTickConfirmed', symbol: 'ADM', price: 400, by: 'admin' }),
      expect.objectContaining({ type: 'SuspectTickRejected', symbol: 'FDA', price: 100, by: 'admin' }),
    ]);

    const nothing = await http(server.url, 'POST', '/api/v1/marks/ADM/reject', undefined, ADMIN);
    expect([nothing.status, nothing.body.error.code, nothing.body.error.field]).toEqual([404, 'suspect_tick_not_found', 'symbol']);
    const unknown = await http(server.url, 'POST', '/api/v1/marks/NOPE/confirm', undefined, ADMIN);
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'symbol_not_found']);
    const malformed = await http(server.url, 'POST', '/api/v1/marks/bad%20sym/confirm', undefined, ADMIN);
    expect([malformed.status, malformed.body.error.code]).toEqual([400, 'invalid_symbol']);
    // Nothing changed by the mistakes: FDA and FDB are still held.
    expect(engine.suspectTicks().map((t) => t.symbol)).toEqual(['FDA', 'FDB']);
  });
});
