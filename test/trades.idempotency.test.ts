// Proves how the commit station remembers settled trade ids (issue 15, item 3: the main heap's trade
// results), on a real engine, real LMDB and a real shard worker:
// - a repeat of a settled id is answered with the first result (applied: false, the same figures),
//   whether the id is within tradeIdsRememberedMax (its body read back by number), past it (read from
//   the store by id), while its key still lags the index, or after a restart;
// - settled ids cost the main heap a few hundred bytes each at most: before, every one held a settled
//   Promise with its result object (~1 KB an id, ~150 MB of the server at the default 200,000).
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine.js';
import type { TradeInput, TradeResult } from '../src/domain/types.js';
import { ensureBuilt, tempDir } from './support/engine.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

beforeAll(() => ensureBuilt());

const buy = (id: string, price: number): TradeInput => ({ trade_id: id, symbol: 'IDM', side: 'buy', quantity: 1, price });

function firstResult(r: Awaited<ReturnType<Awaited<ReturnType<typeof createEngine>>['trade']>>): TradeResult {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
}

describe('settled trade ids', () => {
  it('answers a repeat with the first result inside and past tradeIdsRememberedMax, while the key lags and after a restart', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    // Index lag of an hour: every key stays in the lagging index until close.
    let engine = await createEngine({ dataDir: dir.path, workers: 1, limits: { tradeIdsRememberedMax: 3 }, store: { indexLagMaxMs: 3_600_000 } });
    await engine.createPortfolio({ id: 'idm', cash: 1_000_000 });
    const first: TradeResult[] = [];
    for (let i = 0; i < 8; i++) first.push(firstResult(await engine.trade('idm', buy(`k${i}`, 10 + i))));
    expect(first.every((r) => r.applied)).toBe(true);
    // Ids k5..k7 are remembered by number; k0..k4 were evicted and come from the store.
    const again = async (): Promise<void> => {
      for (let i = 7; i >= 0; i--) {
        // A different price: the answer is the first result, never a new booking.
        const r = firstResult(await engine.trade('idm', buy(`k${i}`, 99)));
        // As a client reads it (JSON): a body read back from LMDB (msgpack) has 0 where the first answer had -0.
        expect(JSON.parse(JSON.stringify(r))).toEqual(JSON.parse(JSON.stringify({ ...first[i], applied: false })));
      }
      const s = await engine.snapshot('idm');
      expect(s.ok && s.value.positions.find((p) => p.symbol === 'IDM')?.quantity).toBe(8);
    };
    await again();
    await engine.close();
    engine = await createEngine({ dataDir: dir.path, workers: 1, limits: { tradeIdsRememberedMax: 3 } });
    cleanups.push(() => engine.close());
    await again();
  });

  it('keeps the main heap within a few hundred bytes per settled id', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    // A short index lag: the store's own memory of lagging keys empties at once (it is bounded apart).
    const engine = await createEngine({ dataDir: dir.path, workers: 1, store: { indexLagMaxMs: 1 } });
    cleanups.push(() => engine.close());
    const portfolios = 50;
    for (let p = 0; p < portfolios; p++) await engine.createPortfolio({ id: `h${p}`, cash: 1e9 });
    const run = async (from: number, n: number): Promise<void> => {
      const slots = Array.from({ length: portfolios }, async (_, p) => {
        for (let i = from + p; i < from + n; i += portfolios) {
          const r = await engine.trade(`h${p}`, { trade_id: `heap-${i}`, symbol: `H${i % 10}`, side: i % (2 * portfolios) < portfolios ? 'buy' : 'sell', quantity: 1, price: 100 });
          if (!r.ok) throw new Error(r.error.message);
        }
      });
      await Promise.all(slots);
      await engine.drain();
    };
    // Both measurements once the store has settled (its lagging index taken and committed): what
    // waits for the index is bounded apart (indexLaggingMax), and a backlog still waiting after a fixed
    // pause on a loaded machine counted as "per settled id" (2,943 bytes an id in a loaded run).
    const storeSettled = async (): Promise<void> => {
      for (let waited = 0; waited < 10_000; waited += 10) {
        const s = engine.storeStats();
        if (s.indexLagging === 0 && s.pendingWrites === 0 && s.commitsInFlight === 0) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`the store did not settle in 10 s: ${JSON.stringify(engine.storeStats())}`);
    };
    await run(0, 2_000);
    await storeSettled();
    await new Promise((r) => setTimeout(r, 50));
    gc();
    const before = process.memoryUsage().heapUsed;
    const ids = 10_000;
    await run(2_000, ids);
    await storeSettled();
    await new Promise((r) => setTimeout(r, 50));
    gc();
    const perId = (process.memoryUsage().heapUsed - before) / ids;
    expect(perId).toBeLessThan(400);
  });
});
