// Proves market alerts and feed gaps end to end (real engine, market worker, LMDB, server, WebSocket):
// - a move rule and a z-score rule each fire exactly once for one move, as a MarketAlert event with
//   the rule, symbol, figures and cooldown, stored in the event log under '_market' (events API),
//   streamed to a subscribe_events client, and counted per rule (alertCounts);
// - a silence rule fires once per silence (not again on the next check), and again for a later silence;
// - a symbol silent past feedGapMs while another ticks is a FeedGap event (open), then a closed
//   FeedGap when it ticks again; none when the whole feed is quiet;
// - rules load from an alerts file ({"rules": [...]} or a bare array); a bad file stops the start
//   with a message naming the file and the field.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine.js';
import { startMarketService } from '../src/market/service.js';
import { TestSocket, http, isType, until } from './support/serverHarness.js';
import { startMarketHarness, type MarketHarness } from './support/marketServer.js';

const sec = 1000;
const t0 = Date.UTC(2025, 0, 6, 10, 0);
const harnesses: MarketHarness[] = [];
const sockets: TestSocket[] = [];

afterAll(async () => {
  for (const s of sockets) await s.close();
  for (const h of harnesses) await h.stop(true);
});

async function harness(o: Parameters<typeof startMarketHarness>[0]): Promise<MarketHarness> {
  const h = await startMarketHarness(o);
  harnesses.push(h);
  return h;
}

async function marketEvents(h: MarketHarness, type: string): Promise<any[]> {
  const r = await http(h.url, 'GET', `/api/v1/portfolios/_market/events?type=${type}&limit=1000`);
  expect(r.status).toBe(200);
  return r.body.events;
}

describe('move and z-score alerts', () => {
  it('fire once per move, stored, streamed and counted', async () => {
    const rules = [
      { id: 'move5', name: '5% in a minute', kind: 'move', move_pct: 5, window_ms: 60_000, cooldown_ms: 60_000 },
      { id: 'z4', kind: 'zscore', z: 4, returns: 20, cooldown_ms: 60_000 },
    ];
    const h = await harness({ rules, now: t0 + 120 * sec });
    const s = await TestSocket.open(h.wsUrl + '/ws');
    sockets.push(s);
    s.send({ op: 'subscribe_events', id: 1, portfolios: ['_market'], types: ['MarketAlert'] });
    await s.next(isType('events_subscribed'));

    // MOVE: +5.5% from the window's low at +30 s; the rise goes on, but it is one move.
    const path: [number, number][] = [[0, 100], [10, 102], [20, 104.9], [30, 105.5], [31, 106], [40, 107], [50, 108]];
    await h.ticks(path.map(([s, price]) => ({ symbol: 'MOVE', price, ts: t0 + s * sec })));
    // ZZZ: 30 returns of +-0.1%, then one of +3% (z ~ 30), then back to small returns.
    const ticks = [];
    let price = 100;
    for (let i = 1; i <= 40; i++) {
      price *= i === 31 ? 1.03 : i % 2 === 0 ? 1.001 : 0.999;
      ticks.push({ symbol: 'ZZZ', price, ts: t0 + i * sec });
    }
    await h.ticks([{ symbol: 'ZZZ', price: 100, ts: t0 }, ...ticks]);

    const stored = await marketEvents(h, 'MarketAlert');
    expect(stored.map((e) => [e.rule_id, e.symbol])).toEqual([
      ['move5', 'MOVE'],
      ['z4', 'ZZZ'],
    ]);
    expect(stored[0]).toMatchObject({
      type: 'MarketAlert', portfolio_id: '_market', ts: t0 + 30 * sec, rule_id: 'move5', rule_name: '5% in a minute', kind: 'move', cooldown_ms: 60_000,
      figures: { threshold_pct: 5, window_ms: 60_000, price: 105.5, ref_price: 100, ref_ts: t0 },
    });
    expect(stored[0].figures.move_pct).toBeCloseTo(5.5, 9);
    expect(stored[1]).toMatchObject({ kind: 'zscore', ts: t0 + 31 * sec, cooldown_ms: 60_000, figures: { threshold_z: 4, returns: 20 } });
    expect(stored[1].figures.z).toBeGreaterThan(20);
    await until(() => s.all(isType('event')).length === 2, 5000, 'two alert events streamed');
    expect(s.all(isType('event')).map((m) => m.event)).toEqual(stored);
    expect(Object.fromEntries(h.market.alertCounts)).toEqual({ move5: 1, z4: 1 });
  });
});

describe('silence alerts and feed gaps', () => {
  it('fire once per silence while the feed is alive, and a gap opens and closes', async () => {
    const h = await harness({
      rules: [{ id: 'quiet', kind: 'silence', silent_ms: 30_000, cooldown_ms: 60_000 }],
      limits: { feedGapMs: 60_000 },
      now: t0,
    });
    await h.ticks([{ symbol: 'QUIET', price: 1, ts: t0 }]);
    const heartbeat = async (upTo: number) => {
      h.clock.now = upTo;
      await h.ticks([{ symbol: 'HEART', price: 1, ts: upTo - sec }]);
      await h.check();
    };
    await heartbeat(t0 + 20 * sec);
    expect(await marketEvents(h, 'MarketAlert')).toEqual([]);
    await heartbeat(t0 + 45 * sec);
    await heartbeat(t0 + 50 * sec); // the same silence: no second alert
    const silence = await marketEvents(h, 'MarketAlert');
    expect(silence).toHaveLength(1);
    expect(silence[0]).toMatchObject({ rule_id: 'quiet', kind: 'silence', symbol: 'QUIET', ts: t0 + 45 * sec, figures: { silent_ms: 45_000, threshold_ms: 30_000, last_ts: t0 } });
    expect(await marketEvents(h, 'FeedGap')).toEqual([]);

    await heartbeat(t0 + 65 * sec);
    const open = await marketEvents(h, 'FeedGap');
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ type: 'FeedGap', portfolio_id: '_market', symbol: 'QUIET', from: t0, to: t0 + 65 * sec, gap_ms: 65_000, state: 'open', ts: t0 + 65 * sec });

    // Within suspectMovePct of the last price: a suspect tick would be held off the tape until confirmed.
    await h.ticks([{ symbol: 'QUIET', price: 1.25, ts: t0 + 70 * sec }]);
    await heartbeat(t0 + 71 * sec);
    const gaps = await marketEvents(h, 'FeedGap');
    expect(gaps.map((g) => [g.state, g.from - t0, g.to - t0])).toEqual([
      ['open', 0, 65 * sec],
      ['closed', 0, 70 * sec],
    ]);

    // A second silence, after the cooldown: a second alert.
    await heartbeat(t0 + 106 * sec);
    expect((await marketEvents(h, 'MarketAlert')).map((a) => a.ts - t0)).toEqual([45 * sec, 106 * sec]);
    expect(h.market.alertCounts.get('quiet')).toBe(2);

    // The whole feed quiet: no gap for anyone, no silence alert.
    h.clock.now = t0 + 3_600 * sec;
    await h.check();
    expect(await marketEvents(h, 'FeedGap')).toHaveLength(2);
    expect(await marketEvents(h, 'MarketAlert')).toHaveLength(2);
  });
});

describe('alerts file', () => {
  it('loads rules from a file and refuses a bad one naming the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtm-alerts-'));
    try {
      const file = join(dir, 'alerts.json');
      writeFileSync(file, JSON.stringify({ rules: [{ id: 'f1', kind: 'move', move_pct: 2, window_ms: 1000 }] }));
      const h = await harness({ alertsFile: file });
      expect((await http(h.url, 'GET', '/api/v1/market/alerts')).body.rules.map((r: any) => r.id)).toEqual(['f1']);

      writeFileSync(file, JSON.stringify([{ id: 'f2', kind: 'zscore', z: 0, returns: 5 }]));
      const engine = await createEngine({ workers: 1 });
      try {
        await expect(startMarketService(engine, { alertsFile: file, now: Date.now })).rejects.toThrow(/alerts file .*alerts\.json: rules\[0\]\.z must be a finite number/);
        writeFileSync(file, '{nope');
        await expect(startMarketService(engine, { alertsFile: file, now: Date.now })).rejects.toThrow(/is not JSON/);
      } finally {
        await engine.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
