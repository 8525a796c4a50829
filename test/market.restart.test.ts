// Proves market data survives restarts (real engine, market worker, LMDB in a temp dir, server):
// - after a clean stop and a start on the same data dir, every closed bar and every open bar of
//   every timeframe answers as before; the restored open bar keeps aggregating (its trades go on,
//   not restart), and a late tick revises the restored recent closed bar (merged with the stored
//   one, not overwritten by a one-tick bar);
// - a market worker that dies is restarted from the store: closed bars are all there, open bars as
//   of the last checkpoint, and aggregation goes on;
// - the store's readers see bars before their commit (pending writes), and after a reopen.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openMarketStore } from '../src/market/store.js';
import type { Bar } from '../src/market/index.js';
import { http, until } from './support/serverHarness.js';
import { startMarketHarness, type MarketHarness } from './support/marketServer.js';

const sec = 1000;
const min = 60 * sec;
const t0 = Date.UTC(2025, 0, 6, 10, 0);
const dirs: string[] = [];
const running: MarketHarness[] = [];

afterAll(async () => {
  for (const h of running) await h.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mtm-market-restart-'));
  dirs.push(d);
  return d;
}

async function start(dataDir: string, now: number): Promise<MarketHarness> {
  const h = await startMarketHarness({ dataDir, now, limits: { latenessMs: 10_000 } });
  running.push(h);
  return h;
}

/** Every bar of every timeframe around t0 (1m over two hours: a week of 1m is past the span limit). */
async function allBars(h: MarketHarness, symbol: string): Promise<Record<string, any[]>> {
  const out: Record<string, any[]> = {};
  for (const tf of ['1m', '5m', '15m', '30m', '1h', '1d', '1w']) {
    const from = tf === '1m' ? t0 - 60 * min : t0 - 7 * 24 * 60 * min;
    const r = await http(h.url, 'GET', `/api/v1/bars/${symbol}?tf=${tf}&from=${from}&to=${t0 + 60 * min}`);
    expect(r.status).toBe(200);
    out[tf] = r.body.bars;
  }
  return out;
}

describe('restart', () => {
  it('keeps closed and open bars of every timeframe; the open bar and late ticks go on from them', async () => {
    const dir = tempDir();
    const a = await start(dir, t0 + 4 * min + 30 * sec);
    // Minutes 0-3 closed (three ticks each), minute 4 open (one tick).
    const ticks = [];
    for (let m = 0; m < 4; m++) for (const s of [5, 25, 45]) ticks.push({ symbol: 'KEEP', price: 100 + m + s / 100, ts: t0 + m * min + s * sec, size: 1 + m });
    ticks.push({ symbol: 'KEEP', price: 104.05, ts: t0 + 4 * min + 5 * sec, size: 5 });
    await a.ticks(ticks);
    const before = await allBars(a, 'KEEP');
    expect(before['1m'].map((b) => [(b.start - t0) / min, b.trades])).toEqual([[0, 3], [1, 3], [2, 3], [3, 3], [4, 1]]);
    expect(before['1w']).toHaveLength(1);
    await a.stop();
    running.splice(running.indexOf(a), 1);

    const b = await start(dir, t0 + 4 * min + 50 * sec);
    expect(await allBars(b, 'KEEP')).toEqual(before);

    // The restored open bar (minute 4) takes one more tick: 2 trades, not a new bar of 1.
    await b.ticks([{ symbol: 'KEEP', price: 90, ts: t0 + 4 * min + 8 * sec, size: 1 }]);
    const open = (await http(b.url, 'GET', `/api/v1/bars/KEEP?tf=1m&from=${t0 + 4 * min}&to=${t0 + 5 * min}`)).body.bars[0];
    expect(open).toMatchObject({ trades: 2, open: 104.05, low: 90, close: 90, volume: 6 });
    // 9 s behind the newest tick (latenessMs 10 s): revises the restored recent closed bar of
    // minute 3, whose three stored ticks stay in it.
    await b.ticks([{ symbol: 'KEEP', price: 200, ts: t0 + 4 * min - 1 * sec }]);
    const revised = (await http(b.url, 'GET', `/api/v1/bars/KEEP?tf=1m&from=${t0 + 3 * min}&to=${t0 + 4 * min}`)).body.bars[0];
    expect(revised).toMatchObject({ trades: 4, open: 103.05, high: 200, close: 200, volume: 12 });
    const fiveMin = (await http(b.url, 'GET', `/api/v1/bars/KEEP?tf=5m&from=${t0}&to=${t0 + 5 * min}`)).body.bars[0];
    expect(fiveMin).toMatchObject({ trades: 15, high: 200, low: 90 });

    // A restart after the revision keeps it too.
    const after = await allBars(b, 'KEEP');
    await b.stop();
    running.splice(running.indexOf(b), 1);
    const c = await start(dir, t0 + 4 * min + 55 * sec);
    expect(await allBars(c, 'KEEP')).toEqual(after);
  });

  it('restarts a dead market worker from the store', async () => {
    const h = await start(tempDir(), t0 + 2 * min + 30 * sec);
    await h.ticks([
      { symbol: 'CRASH', price: 10, ts: t0 + 10 * sec },
      { symbol: 'CRASH', price: 11, ts: t0 + min + 10 * sec },
      { symbol: 'CRASH', price: 12, ts: t0 + 2 * min + 10 * sec },
    ]);
    await h.market.checkpoint(false);
    await h.market.settle();
    await h.ticks([{ symbol: 'CRASH', price: 13, ts: t0 + 2 * min + 20 * sec }]); // after the checkpoint: lost with the worker
    await (h.market as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await until(() => h.market.stats().workerRestarts === 1, 10_000, 'worker restart');
    await until(async () => (await h.market.openBar('CRASH', '1m')) !== null, 10_000, 'restored open bar');
    const bars = (await http(h.url, 'GET', `/api/v1/bars/CRASH?tf=1m&from=${t0}&to=${t0 + 3 * min}`)).body.bars;
    expect(bars.map((b: any) => [b.start - t0, b.close, b.trades])).toEqual([[0, 10, 1], [min, 11, 1], [2 * min, 12, 1]]);
    await h.ticks([{ symbol: 'CRASH', price: 14, ts: t0 + 2 * min + 40 * sec }]);
    expect(await h.market.openBar('CRASH', '1m')).toMatchObject({ close: 14, trades: 2 });
  });
});

describe('market store', () => {
  it('reads bars before their commit, and after a reopen', async () => {
    const dir = tempDir();
    const opened = openMarketStore(join(dir, 'market'));
    if (!opened.ok) throw new Error(opened.error.message);
    const store = opened.value;
    const bar = (start: number, close: number): Bar => ({
      symbol: 'S/1', tf: '1m', start, open: close, high: close, low: close, close, volume: 1, pv: close, vwap: close, trades: 1, first_ts: start, last_ts: start,
    });
    store.putBars([bar(t0, 1), bar(t0 + min, 2), bar(t0 + 3 * min, 3)]);
    // Synchronously after putBars: nothing is committed yet.
    expect(store.stats().pendingBars).toBe(3);
    expect(store.range('S/1', '1m', t0, t0 + 10 * min).map((b) => b.close)).toEqual([1, 2, 3]);
    expect(store.get('S/1', '1m', t0 + min)?.close).toBe(2);
    expect(store.before('S/1', '1m', t0 + 3 * min)?.close).toBe(2);
    await store.idle();
    expect(store.stats().pendingBars).toBe(0);
    store.putBars([bar(t0 + min, 20)]); // a revision, pending over the committed one
    expect(store.range('S/1', '1m', t0, t0 + 10 * min).map((b) => b.close)).toEqual([1, 20, 3]);
    expect(openMarketStore(join(dir, 'market')).ok).toBe(false); // once per process
    await store.close();
    const again = openMarketStore(join(dir, 'market'));
    if (!again.ok) throw new Error(again.error.message);
    expect(again.value.range('S/1', '1m', t0, t0 + 10 * min)).toEqual([bar(t0, 1), bar(t0 + min, 20), bar(t0 + 3 * min, 3)]);
    expect(again.value.latest('S/1', '1m')?.start).toBe(t0 + 3 * min);
    expect(again.value.symbols()).toEqual(['S/1']);
    await again.value.close();
  });
});
