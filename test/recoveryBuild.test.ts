// Proves that the recovery bench's bulk base (bench/scenarios/bulkBase.ts, which replaced building
// 100,000 x 25 through the engine's API: over an hour) writes the state the engine's own write path
// writes. For the same workload (the bench's holdings, 40 portfolios x 25 positions), real LMDB and
// real shard workers: the same events with the same bodies, in the same order for each portfolio, and
// the same trade results; and an engine started on either directory shows the same figures for every
// portfolio. Only what the bench does not compare differs: timestamps, the interleaving of different
// portfolios' seqs, and per-portfolio update seqs.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bulkBase } from '../bench/scenarios/bulkBase.js';
import { W1, holdingsOf, loadWorkload, portfolioId, type Workload } from '../bench/workload.js';
import type { StoredEvent } from '../src/domain/types.js';
import { createEngine } from '../src/engine/engine.js';
import { openStore } from '../src/store/store.js';
import { ensureBuilt, tempDir } from './support/engine.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
beforeAll(() => ensureBuilt());

function dir(): string {
  const d = tempDir('mtm-bulk-');
  cleanups.push(() => d.remove());
  return d.path;
}

const w: Workload = { ...W1, portfolios: 40, positionsPerPortfolio: 25 };

/** Each portfolio's events in log order, without what differs by construction (time, global seq). */
function eventsByPortfolio(path: string): Map<string, object[]> {
  const opened = openStore({ path });
  if (!opened.ok) throw new Error(opened.error.message);
  const out = new Map<string, object[]>();
  for (const e of opened.value.eventsAfter(0)) {
    const { seq: _seq, ts: _ts, ...body } = e as StoredEvent & { trade_ts?: number };
    if ('trade_ts' in body) delete body.trade_ts;
    const list = out.get(e.portfolio_id) ?? [];
    list.push(body);
    out.set(e.portfolio_id, list);
  }
  out.set(
    '_results',
    holdingsOf(w).map((h, n) => ({ trade_id: 'seed-' + n, result: opened.value.tradeResult(h.portfolio, 'seed-' + n) })),
  );
  void opened.value.close();
  return out;
}

async function figures(path: string): Promise<object[]> {
  const engine = await createEngine({ dataDir: path, workers: 2 });
  try {
    const out: object[] = [];
    for (let p = 0; p < w.portfolios; p++) {
      const s = await engine.snapshot(portfolioId(p));
      if (!s.ok) throw new Error(s.error.message);
      const { seq: _seq, as_of: _asOf, ...rest } = s.value;
      out.push({ ...rest, positions: rest.positions.map(({ price_age_ms: _age, ...p }) => p) });
    }
    return out;
  } finally {
    await engine.close();
  }
}

describe('the recovery bench bulk base', () => {
  it('writes the events, trade results and figures the engine API writes for the same workload', async () => {
    const viaEngine = dir();
    const engine = await createEngine({ dataDir: viaEngine, workers: 2 });
    await loadWorkload(engine, w);
    await engine.close();
    const viaBulk = dir();
    const written = await bulkBase(viaBulk, w);
    expect(written).toBe(w.portfolios + 2 * holdingsOf(w).length);

    const a = eventsByPortfolio(viaEngine);
    const b = eventsByPortfolio(viaBulk);
    expect(b.size).toBe(w.portfolios + 1);
    expect((b.get('_results') as { result: unknown }[]).filter((r) => r.result === undefined)).toEqual([]);
    expect(b).toEqual(a);
    expect(await figures(viaBulk)).toEqual(await figures(viaEngine));
  }, 60_000);
});
