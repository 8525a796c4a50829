// Proves the bulk import's batched path (server/tradeImport.ts chunks -> engine/bulkImport.ts ->
// one packed message per shard -> Shard.tradeChunk, one 'trades' actor event per portfolio run) books
// exactly what the single-trade route books, on a real engine behind the real uWS server (no mocks):
// - the same seeded trades (buys and sells that open, add to, reduce, close and flip positions, with
//   fees, fractional quantities and prices), imported into one portfolio and posted one by one to
//   its twin, give every answer line the realized P&L the single route answered, and leave both
//   portfolios with the same figures, each equal to the exact decimal oracle (test/oracle/), for an
//   average-cost portfolio (the one-event run), a fifo one, and one with a risk limit (trade by trade);
// - chunks are small (importChunkTradesMax 7, 2 in flight) so a file spans many chunks: a trade id
//   repeated inside one chunk and across chunks is answered duplicate, with the first booking's
//   realized P&L, and booked once; the same file again answers every line duplicate;
// - a trade the actor refuses inside a run (a foreign currency without a rate) is answered with the
//   single route's error code, and the trades after it in the run still book;
// - regression: a body read whole while the import had paused it (chunks in flight full) left the
//   socket paused, so the next request on that kept-alive connection was never read (ECONNRESET);
//   every request after an import here reuses the connection;
// - regression: a body whose chunks were all answered at the boundary (every line refused) stalled
//   once importChunksInFlightMax such chunks were cut (nothing left to wake the paused reader).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startHarness, type Harness } from './support/serverHarness.js';
import { OracleBook, type Method } from './oracle/lots.js';
import { comparisonCount, expectClose } from './oracle/compare.js';
import { seeded } from '../src/sim/random.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ limits: { commandsPerSecond: 1_000_000, importChunkTradesMax: 7, importChunksInFlightMax: 2 } as never });
});

afterAll(async () => {
  await h?.close();
});

interface Answer {
  line?: number;
  trade_id?: string;
  result?: string;
  realized_pnl?: number;
  error?: { code: string };
  summary?: { lines: number; applied: number; duplicate: number; errors: number; stopped: boolean };
}

async function importBody(body: string): Promise<Answer[]> {
  const r = await fetch(h.url + '/api/v1/trades/import', { method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' }, body });
  expect(r.status).toBe(200);
  return (await r.text())
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Answer);
}

/** A seeded generator (src/sim/random.ts, mulberry32): the same trades every run. */
function random(seed: number): () => number {
  const g = seeded(seed);
  return () => g.next();
}

interface T {
  trade_id: string;
  symbol: string;
  side: 'buy' | 'sell';
  quantity: number;
  price: number;
  fee: number;
  ts: number;
  currency?: string;
}

function trades(seed: number, n: number): T[] {
  const r = random(seed);
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      trade_id: `s${seed}-${i}`,
      symbol: ['BLK', 'BLL', 'BLM'][Math.floor(r() * 3)],
      side: r() < 0.55 ? 'buy' : 'sell',
      quantity: Math.round((0.5 + r() * 20) * 1e4) / 1e4,
      price: Math.round((5 + r() * 200) * 1e3) / 1e3,
      fee: r() < 0.3 ? Math.round(r() * 300) / 100 : 0,
      ts: 1_765_000_000_000 + i,
    });
  }
  return out;
}

async function create(id: string, method: Method, limits?: object): Promise<void> {
  const r = await http(h.url, 'POST', '/api/v1/portfolios', { id, cash: 10_000_000, cost_basis_method: method, ...(limits === undefined ? {} : { limits }) });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

async function snapshot(id: string): Promise<{ cash: number; realized_pnl: number; positions: { symbol: string; quantity: number; avg_cost: number; realized_pnl: number }[] }> {
  const s = await http(h.url, 'GET', `/api/v1/portfolios/${id}`);
  return s.body as never;
}

describe('bulk import, the batched path', () => {
  for (const [name, method, limits] of [
    ['average cost (one actor event a run)', 'average', undefined],
    ['fifo lots', 'fifo', undefined],
    ['a risk limit set (trade by trade)', 'average', { max_loss: 1e12 }],
  ] as const) {
    it(`books what the single-trade route books, equal to the oracle: ${name}`, async () => {
      const bulk = `bulk-${method}-${limits === undefined ? 'n' : 'l'}`;
      const single = `single-${method}-${limits === undefined ? 'n' : 'l'}`;
      await create(bulk, method, limits);
      await create(single, method, limits);
      const ts = trades(name.length * 7919, 60);
      // A foreign trade without a rate (none ticked): refused by the actor, mid-run.
      ts.splice(20, 0, { trade_id: 'fx-no-rate', symbol: 'BLX', side: 'buy', quantity: 1, price: 10, fee: 0, ts: 1_765_000_000_500, currency: 'EUR' });
      const oracle = new OracleBook('USD', method, 10_000_000);
      const singleAnswers: { realized: number | null; code: string | null }[] = [];
      for (const t of ts) {
        const r = await http(h.url, 'POST', `/api/v1/portfolios/${single}/trades`, t);
        if (r.status === 201) singleAnswers.push({ realized: r.body.realized_pnl as number, code: null });
        else singleAnswers.push({ realized: null, code: (r.body.error as { code: string }).code });
      }
      const answers = (await importBody(ts.map((t) => JSON.stringify({ portfolio_id: bulk, ...t })).join('\n') + '\n')).filter((a) => a.summary === undefined);
      expect(answers.map((a) => a.trade_id)).toEqual(ts.map((t) => t.trade_id));
      for (let i = 0; i < ts.length; i++) {
        const t = ts[i];
        const a = answers[i];
        if (singleAnswers[i].code !== null) {
          expect(a.result, t.trade_id).toBe('error');
          expect(a.error?.code).toBe(singleAnswers[i].code);
          continue;
        }
        expect(a.result, t.trade_id).toBe('applied');
        expect(a.realized_pnl, t.trade_id).toBe(singleAnswers[i].realized);
        const realized = oracle.trade(t.symbol, 'USD', { id: t.trade_id, side: t.side, quantity: t.quantity, price: t.price, fee: t.fee, ts: t.ts });
        expectClose(a.realized_pnl as number, realized, `${t.trade_id} realized`);
      }
      expect(singleAnswers.filter((a) => a.code === 'fx_rate_unknown')).toHaveLength(1);
      const [b, s] = [await snapshot(bulk), await snapshot(single)];
      expect(b.cash).toBe(s.cash);
      expect(b.realized_pnl).toBe(s.realized_pnl);
      expect(b.positions.map((p) => [p.symbol, p.quantity, p.avg_cost, p.realized_pnl])).toEqual(s.positions.map((p) => [p.symbol, p.quantity, p.avg_cost, p.realized_pnl]));
      expectClose(b.cash, oracle.cash, `${bulk} cash`);
      expectClose(b.realized_pnl, oracle.realized, `${bulk} realized`);
      for (const p of b.positions) {
        const o = oracle.positions.get(p.symbol);
        expect(o, p.symbol).toBeDefined();
        expectClose(p.quantity, o!.position.qty, `${bulk} ${p.symbol} quantity`);
        expectClose(p.avg_cost, o!.position.avg, `${bulk} ${p.symbol} avg_cost`);
      }
      expect(comparisonCount()).toBeGreaterThan(0);
    });
  }

  it('answers an id repeated inside a chunk and across chunks as a duplicate of the first booking, booked once', async () => {
    await create('bulk-dup', 'average');
    const t = (id: string, side: 'buy' | 'sell', quantity: number, price: number) => JSON.stringify({ portfolio_id: 'bulk-dup', trade_id: id, symbol: 'DUP', side, quantity, price }) + '\n';
    // Chunks of 7 lines: d2 repeats inside the first chunk, d1 and d3 across chunks.
    const body =
      t('d1', 'buy', 10, 100) + t('d2', 'sell', 4, 110) + t('d2', 'sell', 4, 110) + t('d3', 'sell', 1, 120) + t('d4', 'buy', 1, 90) + t('d5', 'buy', 1, 90) + t('d6', 'buy', 1, 90) +
      t('d7', 'buy', 1, 90) + t('d1', 'buy', 10, 100) + t('d3', 'sell', 1, 120) + t('d8', 'buy', 1, 90);
    const answers = (await importBody(body)).filter((a) => a.summary === undefined);
    expect(answers.map((a) => [a.line, a.trade_id, a.result, a.realized_pnl])).toEqual([
      [1, 'd1', 'applied', 0],
      [2, 'd2', 'applied', 40],
      [3, 'd2', 'duplicate', 40],
      [4, 'd3', 'applied', 20],
      [5, 'd4', 'applied', 0],
      [6, 'd5', 'applied', 0],
      [7, 'd6', 'applied', 0],
      [8, 'd7', 'applied', 0],
      [9, 'd1', 'duplicate', 0],
      [10, 'd3', 'duplicate', 20],
      [11, 'd8', 'applied', 0],
    ]);
    const s = await snapshot('bulk-dup');
    expect(s.positions.find((p) => p.symbol === 'DUP')?.quantity).toBe(10 - 4 - 1 + 5);
    // Again: every line a duplicate, with the first booking's realized P&L; nothing booked.
    const again = await importBody(body);
    expect(again.filter((a) => a.summary === undefined).map((a) => [a.result, a.realized_pnl])).toEqual(answers.map((a) => ['duplicate', a.realized_pnl]));
    expect(again[again.length - 1].summary).toEqual({ lines: 11, applied: 0, duplicate: 11, errors: 0, stopped: false });
    // The single route answers an imported id as a duplicate with that realized P&L and the portfolio as it is.
    const single = await http(h.url, 'POST', '/api/v1/portfolios/bulk-dup/trades', { trade_id: 'd2', symbol: 'DUP', side: 'sell', quantity: 4, price: 110 });
    expect(single.status).toBe(200);
    expect(single.body).toMatchObject({ applied: false, realized_pnl: 40, position: { symbol: 'DUP', quantity: 10 } });
    expect((await snapshot('bulk-dup')).positions.find((p) => p.symbol === 'DUP')?.quantity).toBe(10);
  });

  it('goes through a body of refused lines longer than the chunks in flight, then books what follows', async () => {
    await create('bulk-after-refused', 'average');
    let body = '';
    for (let i = 0; i < 40; i++) body += JSON.stringify({ portfolio_id: 'no-such-portfolio', trade_id: `r${i}`, symbol: 'REF', side: 'buy', quantity: 1, price: 1 }) + '\n';
    body += JSON.stringify({ portfolio_id: 'bulk-after-refused', trade_id: 'r-ok', symbol: 'REF', side: 'buy', quantity: 3, price: 1 }) + '\n';
    const answers = await importBody(body);
    expect(answers.slice(0, 40).every((a) => a.result === 'error' && a.error?.code === 'portfolio_not_found')).toBe(true);
    expect(answers[40]).toMatchObject({ line: 41, trade_id: 'r-ok', result: 'applied' });
    expect(answers[41].summary).toEqual({ lines: 41, applied: 1, duplicate: 0, errors: 40, stopped: false });
    expect((await snapshot('bulk-after-refused')).positions.find((p) => p.symbol === 'REF')?.quantity).toBe(3);
  });
});
