// Proves the market alert rules: a price move of more than move_pct within window_ms fires exactly
// once per move (cooldown and window restart) and not on a near miss, at the threshold, or over a
// longer span than the window; a z-score outlier over the last K returns fires once and not on a near
// miss or before K returns exist; a symbol silent longer than silent_ms while others tick fires once
// per silence and not when the whole feed is silent; rules and limits are validated with errors
// naming the field; and the market modules read no clock.

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMarketAlerts, validateAlertRules, type MarketAlert, type MarketAlerts } from '../src/market/index.js';
import { unwrap, utc } from './support/marketSupport.js';

const t0 = utc('2025-01-06T10:00:00Z');
const sec = 1000;

function alertsFor(rules: unknown[]): { alerts: MarketAlerts; fired: MarketAlert[] } {
  const fired: MarketAlert[] = [];
  const alerts = unwrap(createMarketAlerts(rules, { sink: (a) => fired.push(a) }));
  return { alerts, fired };
}

const moveRule = { id: 'move5', name: '5% in a minute', kind: 'move', move_pct: 5, window_ms: 60_000, cooldown_ms: 60_000 };

describe('move rule', () => {
  it('fires exactly once for one move, with the figures that tripped it', () => {
    const { alerts, fired } = alertsFor([moveRule]);
    const path: [number, number][] = [
      [0, 100],
      [10, 102],
      [20, 104.9],
      [30, 105.5],
      [31, 106],
      [40, 107],
      [50, 108],
    ];
    const counts = path.map(([s, price]) => alerts.onTick('AAA', price, t0 + s * sec));
    expect(counts).toEqual([0, 0, 0, 1, 0, 0, 0]);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({
      rule: { id: 'move5', name: '5% in a minute' },
      kind: 'move',
      symbol: 'AAA',
      ts: t0 + 30 * sec,
      threshold_pct: 5,
      window_ms: 60_000,
      price: 105.5,
      ref_price: 100,
      ref_ts: t0,
    });
    expect(fired[0].kind === 'move' && fired[0].move_pct).toBeCloseTo(5.5, 12);
  });

  it('fires again for a second move after the cooldown', () => {
    const { alerts, fired } = alertsFor([moveRule]);
    for (const [s, price] of [[0, 100], [30, 105.5], [40, 107], [50, 108], [100, 113]] as const) alerts.onTick('AAA', price, t0 + s * sec);
    expect(fired.map((a) => [a.ts - t0, a.kind === 'move' && a.ref_price])).toEqual([
      [30 * sec, 100],
      [100 * sec, 107],
    ]);
  });

  it('does not fire on a near miss, at exactly the threshold, or over more than the window', () => {
    const { alerts, fired } = alertsFor([moveRule]);
    for (const [s, price] of [[0, 100], [20, 104.99], [40, 104.99], [50, 101]] as const) alerts.onTick('NEAR', price, t0 + s * sec);
    alerts.onTick('EXACT', 100, t0);
    alerts.onTick('EXACT', 105, t0 + sec);
    alerts.onTick('SLOW', 100, t0);
    alerts.onTick('SLOW', 105.5, t0 + 60_001);
    expect(fired).toEqual([]);
    alerts.onTick('EDGE', 100, t0);
    alerts.onTick('EDGE', 105.5, t0 + 60_000); // the window includes its left edge
    expect(fired.map((a) => a.symbol)).toEqual(['EDGE']);
  });

  it('fires on a fall, negative, and per symbol independently', () => {
    const { alerts, fired } = alertsFor([moveRule]);
    alerts.onTick('UP', 100, t0);
    alerts.onTick('DOWN', 100, t0);
    alerts.onTick('DOWN', 94.5, t0 + sec);
    alerts.onTick('UP', 106, t0 + sec);
    expect(fired.map((a) => a.symbol)).toEqual(['DOWN', 'UP']);
    expect(fired[0].kind === 'move' && fired[0].move_pct).toBeCloseTo(-5.5, 12);
    expect(fired[0]).toMatchObject({ ref_price: 100 });
  });

  it('stays correct past the initial window capacity, and a short windowTicksMax shortens the window instead of growing', () => {
    const { alerts, fired } = alertsFor([{ ...moveRule, window_ms: 1_000_000 }]);
    for (let i = 0; i < 600; i++) alerts.onTick('RUN', 100 + i * 0.01, t0 + i);
    expect(fired.map((a) => a.kind === 'move' && a.ref_price)).toEqual([100]); // 100 -> 105.01, 501 ticks into the window
    const bounded: MarketAlert[] = [];
    const small = unwrap(createMarketAlerts([{ ...moveRule, window_ms: 1_000_000 }], { sink: (a) => bounded.push(a), limits: { windowTicksMax: 16 } }));
    for (let i = 0; i < 600; i++) small.onTick('RUN', 100 + i * 0.01, t0 + i);
    expect(bounded).toEqual([]); // only the last 16 rising ticks are remembered: a 0.15% move
  });
});

/** Prices whose log returns alternate +step, -step: mean ~0, sigma ~step. */
function calmPath(alerts: MarketAlerts, symbol: string, ticks: number, step = 0.001): { price: number; ts: number } {
  let price = 100;
  let ts = t0;
  alerts.onTick(symbol, price, ts);
  for (let i = 1; i < ticks; i++) {
    price *= Math.exp(i % 2 === 1 ? step : -step);
    ts += sec;
    alerts.onTick(symbol, price, ts);
  }
  return { price, ts };
}

describe('z-score rule', () => {
  const zRule = { id: 'z4', kind: 'zscore', z: 4, returns: 20, cooldown_ms: 60_000 };

  it('fires once for an outlier move, with z, sigma and the return', () => {
    const { alerts, fired } = alertsFor([zRule]);
    const end = calmPath(alerts, 'Z', 21);
    expect(fired).toEqual([]);
    const jump = end.price * Math.exp(0.005);
    expect(alerts.onTick('Z', jump, end.ts + sec)).toBe(1);
    // The move goes on: a second jump within the cooldown is the same move.
    expect(alerts.onTick('Z', jump * Math.exp(0.005), end.ts + 2 * sec)).toBe(0);
    expect(fired).toHaveLength(1);
    const alert = fired[0];
    expect(alert).toMatchObject({ kind: 'zscore', symbol: 'Z', threshold_z: 4, returns: 20, price: jump, prev_price: end.price });
    if (alert.kind !== 'zscore') throw new Error('kind');
    expect(alert.z).toBeCloseTo(5, 6);
    expect(alert.sigma).toBeCloseTo(0.001, 9);
    expect(alert.ret).toBeCloseTo(0.005, 12);
  });

  it('does not fire on a near miss, nor before the window holds K returns', () => {
    const { alerts, fired } = alertsFor([zRule]);
    const end = calmPath(alerts, 'Z', 21);
    alerts.onTick('Z', end.price * Math.exp(0.0039), end.ts + sec); // z = 3.9
    const early = calmPath(alerts, 'EARLY', 20); // 19 returns only
    alerts.onTick('EARLY', early.price * 1.5, early.ts + sec);
    expect(fired).toEqual([]);
  });

  it('does not fire on identical returns, whose float sigma is noise', () => {
    const { alerts, fired } = alertsFor([zRule]);
    for (let i = 0; i < 30; i++) alerts.onTick('FLAT', 100, t0 + i);
    alerts.onTick('FLAT', 100.01, t0 + 30);
    expect(fired).toEqual([]);
  });
});

describe('silence rule', () => {
  const silenceRule = { id: 'quiet', kind: 'silence', silent_ms: 30_000, cooldown_ms: 0 };

  it('fires once per silence while other symbols tick', () => {
    const { alerts } = alertsFor([silenceRule]);
    alerts.onTick('A', 1, t0);
    for (let s = 0; s <= 40; s += 10) alerts.onTick('B', 1, t0 + s * sec);
    expect(alerts.checkSilence(t0 + 30 * sec)).toEqual([]); // exactly at the threshold: a near miss
    const fired = alerts.checkSilence(t0 + 31 * sec);
    expect(fired).toEqual([{ rule: { id: 'quiet', name: 'quiet' }, kind: 'silence', symbol: 'A', ts: t0 + 31 * sec, silent_ms: 31_000, threshold_ms: 30_000, last_ts: t0 }]);
    expect(alerts.checkSilence(t0 + 40 * sec)).toEqual([]);
    // A new silence after A ticks again is a new alert.
    alerts.onTick('A', 1, t0 + 41 * sec);
    alerts.onTick('B', 1, t0 + 80 * sec);
    expect(alerts.checkSilence(t0 + 80 * sec).map((a) => [a.symbol, a.kind === 'silence' && a.last_ts])).toEqual([['A', t0 + 41 * sec]]);
  });

  it('does not fire when the whole feed is silent', () => {
    const { alerts } = alertsFor([silenceRule]);
    alerts.onTick('A', 1, t0);
    alerts.onTick('B', 1, t0 + 5 * sec);
    expect(alerts.checkSilence(t0 + 3600 * sec)).toEqual([]);
  });

  it('bounds each check by alertsPerCheckMax', () => {
    const fired: MarketAlert[] = [];
    const alerts = unwrap(createMarketAlerts([silenceRule], { sink: (a) => fired.push(a), limits: { alertsPerCheckMax: 2 } }));
    for (let i = 0; i < 3; i++) alerts.onTick(`S${i}`, 1, t0);
    alerts.onTick('LIVE', 1, t0 + 60 * sec);
    const now = t0 + 60 * sec;
    expect([alerts.checkSilence(now).length, alerts.checkSilence(now).length, alerts.checkSilence(now).length]).toEqual([2, 1, 0]);
  });
});

describe('alert evaluation', () => {
  it('ignores stale and invalid ticks, counting them', () => {
    const { alerts, fired } = alertsFor([moveRule]);
    alerts.onTick('A', 100, t0 + 10 * sec);
    expect(alerts.onTick('A', 200, t0)).toBe(0); // older than A's last tick
    alerts.onTick('A', -1, t0 + 11 * sec);
    alerts.onTick('A', 100, Number.NaN);
    alerts.onTick('bad symbol', 100, t0);
    alerts.onTick(42, 100, t0);
    expect(fired).toEqual([]);
    expect(alerts.stats()).toEqual({ ticks: 1, alerts: 0, ignored: { invalid: 3, stale: 1, symbols_full: 0, unknown_symbol: 1 } });
  });
});

describe('rule validation', () => {
  const fieldOf = (rules: unknown): string | undefined => {
    const r = validateAlertRules(rules);
    return r.ok ? undefined : r.error.field;
  };

  it('accepts valid rules and fills defaults', () => {
    const r = validateAlertRules([{ id: 'm', kind: 'move', move_pct: 2, window_ms: 1000 }]);
    expect(r).toEqual({ ok: true, value: [{ id: 'm', name: 'm', kind: 'move', move_pct: 2, window_ms: 1000, cooldown_ms: 60_000 }] });
  });

  it('refuses bad rules, naming the field', () => {
    expect(fieldOf({})).toBe('rules');
    expect(fieldOf([{ id: 'm', kind: 'move', window_ms: 1000 }])).toBe('rules[0].move_pct');
    expect(fieldOf([{ id: 'm', kind: 'move', move_pct: 0, window_ms: 1000 }])).toBe('rules[0].move_pct');
    expect(fieldOf([{ id: 'm', kind: 'move', move_pct: 1, window_ms: 0.5 }])).toBe('rules[0].window_ms');
    expect(fieldOf([{ id: 'm', kind: 'move', move_pct: 1, window_ms: 10, z: 3 }])).toBe('rules[0].z');
    expect(fieldOf([{ id: 'z', kind: 'zscore', z: 3, returns: 1 }])).toBe('rules[0].returns');
    expect(fieldOf([{ id: 'z', kind: 'zscore', z: -3, returns: 10 }])).toBe('rules[0].z');
    expect(fieldOf([{ id: 's', kind: 'silence' }])).toBe('rules[0].silent_ms');
    expect(fieldOf([{ id: 's', kind: 'silence', silent_ms: 10, cooldown_ms: -1 }])).toBe('rules[0].cooldown_ms');
    expect(fieldOf([{ id: 's', kind: 'quiet', silent_ms: 10 }])).toBe('rules[0].kind');
    expect(fieldOf([{ id: 'bad id', kind: 'silence', silent_ms: 10 }])).toBe('rules[0].id');
    expect(fieldOf([{ id: 's', kind: 'silence', silent_ms: 10, name: 7 }])).toBe('rules[0].name');
    expect(fieldOf([{ id: 's', kind: 'silence', silent_ms: 10 }, { id: 's', kind: 'silence', silent_ms: 20 }])).toBe('rules[1].id');
    expect(validateAlertRules([1, 2, 3], 2)).toMatchObject({ ok: false, error: { code: 'limit_exceeded', field: 'rules' } });
  });

  it('refuses bad limits, naming the field', () => {
    expect(createMarketAlerts([], { sink: () => {}, limits: { windowTicksMax: 1 } })).toMatchObject({ ok: false, error: { field: 'limits.windowTicksMax' } });
    expect(createMarketAlerts([], { sink: () => {}, limits: { nope: 1 } as never })).toMatchObject({ ok: false, error: { field: 'limits.nope' } });
  });
});

describe('market modules', () => {
  it('read no clock: time comes from tick timestamps and the caller’s now', () => {
    const dir = new URL('../src/market/', import.meta.url);
    for (const file of readdirSync(dir)) {
      const source = readFileSync(new URL(file, dir), 'utf8');
      expect(source, file).not.toMatch(/Date\.now|performance\.now|new Date\(\)|process\.hrtime/);
    }
  });
});
