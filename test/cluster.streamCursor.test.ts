// Proves the engine side of exactly-once in cluster mode (engine.applyAt, src/store/streamCursor.ts),
// with a real engine, real workers and real LMDB, no NATS:
// - a command applied at a stream position moves that partition's cursor, and the cursor and the
//   command's events are both there after the engine is closed and opened again on its directory;
// - a command refused before any shard (bad input, a repeated trade id) moves the cursor alone and
//   changes nothing else; the cursor never moves back;
// - a retryable refusal (the shard's command queue full) leaves the cursor where it was, so the
//   consumer applies the message again;
// - cursors of different partitions are independent.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import type { TradeResult } from '../src/domain/types.js';

const dirs: string[] = [];
const engines: MtmEngine[] = [];
afterAll(async () => {
  await Promise.all(engines.map((e) => e.close().catch(() => undefined)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function engineIn(dataDir: string): Promise<MtmEngine> {
  const e = await createEngine({ dataDir, workers: 1, snapshotIntervalMs: 3_600_000 });
  engines.push(e);
  return e;
}

describe('engine.applyAt: the stream cursor commits with the events', () => {
  it('moves the cursor with an applied command, keeps both across a restart, moves it alone for a refusal, never backwards', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtm-stream-cursor-'));
    dirs.push(dir);
    let e = await engineIn(dir);
    expect(e.streamCursor(3)).toBe(0);
    const created = await e.applyAt({ partition: 3, seq: 1 }, () => e.createPortfolio({ id: 'sc-1', cash: 1000 }));
    expect(created.ok).toBe(true);
    expect(e.streamCursor(3)).toBe(1);
    const trade = { trade_id: 't-1', symbol: 'AAA', side: 'buy' as const, quantity: 2, price: 10 };
    const booked = await e.applyAt({ partition: 3, seq: 4 }, () => e.trade('sc-1', trade));
    expect(booked.ok && (booked.value as TradeResult).applied).toBe(true);
    expect(e.streamCursor(3)).toBe(4);
    expect(e.streamCursor(5)).toBe(0);

    // Refused before any shard: the cursor moves, nothing else does.
    const bad = await e.applyAt({ partition: 3, seq: 6 }, () => e.trade('sc-1', { ...trade, trade_id: 't-2', price: -1 }));
    expect(bad.ok).toBe(false);
    expect(e.streamCursor(3)).toBe(6);
    const again = await e.applyAt({ partition: 3, seq: 7 }, () => e.trade('sc-1', trade));
    expect(again.ok && (again.value as TradeResult).applied).toBe(false);
    expect(e.streamCursor(3)).toBe(7);
    // An older position does not move it back.
    await e.applyAt({ partition: 3, seq: 2 }, () => e.trade('sc-1', trade));
    expect(e.streamCursor(3)).toBe(7);
    // Another partition has its own cursor.
    await e.applyAt({ partition: 9, seq: 3 }, () => e.createPortfolio({ id: 'sc-9', cash: 5 }));
    expect(e.streamCursor(9)).toBe(3);

    await e.close();
    e = await engineIn(dir);
    expect(e.streamCursor(3)).toBe(7);
    expect(e.streamCursor(9)).toBe(3);
    const s = await e.snapshot('sc-1');
    expect(s.ok && s.value.positions.map((p) => [p.symbol, p.quantity])).toEqual([['AAA', 2]]);
    const trades = await e.queryEvents({ portfolio_id: 'sc-1', type: 'TradeExecuted' });
    expect(trades.ok && trades.value.map((x) => (x as { trade_id: string }).trade_id)).toEqual(['t-1']);
  }, 60_000);

  it('a retryable refusal (the shard queue full) leaves the cursor where it was; the same message applies later', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtm-stream-cursor-'));
    dirs.push(dir);
    const e = await createEngine({ dataDir: dir, workers: 1, snapshotIntervalMs: 3_600_000, limits: { commandsQueuedPerShardMax: 1 } });
    engines.push(e);
    await e.applyAt({ partition: 0, seq: 1 }, () => e.createPortfolio({ id: 'rt-1', cash: 1000 }));
    const t = (id: string) => ({ trade_id: id, symbol: 'AAA', side: 'buy' as const, quantity: 1, price: 5 });
    // A local trade takes the shard's only queue slot in this turn; the stream's trade finds it full.
    const local = e.trade('rt-1', t('local'));
    const refused = await e.applyAt({ partition: 0, seq: 2 }, () => e.trade('rt-1', t('r-1')));
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error.retryable).toBe(true);
    expect(e.streamCursor(0)).toBe(1);
    expect((await local).ok).toBe(true);
    const applied = await e.applyAt({ partition: 0, seq: 2 }, () => e.trade('rt-1', t('r-1')));
    expect(applied.ok && (applied.value as TradeResult).applied).toBe(true);
    expect(e.streamCursor(0)).toBe(2);
  }, 60_000);
});
