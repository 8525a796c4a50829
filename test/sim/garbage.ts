// Malformed input for every entry point of the engine API: NaN, Infinity, negative, zero, wrong types,
// unknown ids, oversize strings, unknown fields. README: "Operating errors are returned as
// { ok: false, error } ... nothing in the API throws on bad input", and a failure changes nothing.
// Each case says how its answer must look; the simulator then checks that nothing was applied.

import type { EngineCall } from './protocol.js';
import type { Rng } from './rng.js';

export type Refusal =
  /** A Result with ok: false. */
  | 'result'
  /** ingestTick: a non-null error code. */
  | 'code'
  /** ingestTicks: nothing accepted, every entry rejected. */
  | 'ticks'
  /** Must not throw; may answer anything (reads with odd filters). */
  | 'no-throw';

export interface GarbageCase {
  name: string;
  call: EngineCall;
  refusal: Refusal;
}

export interface GarbageContext {
  /** A portfolio that exists (any state), if any. */
  known: string | null;
  /** A symbol name not used yet anywhere (a bad tick must not register it). */
  freshSymbol: string;
  now: number;
  ticksPerCallMax: number;
  workers: number;
}

const huge = 'x'.repeat(100_000);
const bad = [NaN, Infinity, -Infinity, -1, 0, '10', null, undefined, {}, [], true, 1e300] as const;
const badIds = ['', ' ', 'has space', 'p'.repeat(65), huge, 42, null, undefined, {}, ['p0'], 'é', 'a/b'] as const;

function trade(over: Record<string, unknown>): Record<string, unknown> {
  return { trade_id: 'g-trade', symbol: 'S0', side: 'buy', quantity: 1, price: 10, fee: 0, ...over };
}

export function garbageCase(rng: Rng, ctx: GarbageContext): GarbageCase {
  const id = ctx.known ?? 'p0';
  const pick = <T>(xs: readonly T[]) => rng.pick(xs);
  const cases: (() => GarbageCase)[] = [
    () => ({ name: 'trade: unknown portfolio', call: { method: 'trade', args: ['nobody-' + rng.int(0, 1e6), trade({ trade_id: 'g' + rng.int(0, 1e9) })] }, refusal: 'result' }),
    () => ({ name: 'trade: bad portfolio id', call: { method: 'trade', args: [pick(badIds), trade({})] }, refusal: 'result' }),
    () => {
      const field = pick(['quantity', 'price', 'fee', 'side', 'symbol', 'trade_id', 'ts'] as const);
      const values: Record<typeof field, readonly unknown[]> = {
        quantity: [NaN, Infinity, -1, 0, 1e-9, 0.123456789, 90_000_001, 1e300, '5', null, undefined, {}],
        price: [NaN, Infinity, -1, 0, 1e12 * 10, '10', null, undefined, -0],
        fee: [NaN, Infinity, -0.01, '1', 1e16, {}],
        side: ['hold', 'BUY', '', 1, null, undefined],
        symbol: ['', 'has space', 'S'.repeat(33), huge, 5, null, undefined, 'bad!'],
        trade_id: ['', 'has space', 't'.repeat(129), huge, 7, null, undefined],
        ts: [NaN, -1, 1.5, 8.64e15 + 1, 'now', Infinity],
      };
      const v = pick(values[field]);
      return { name: `trade: ${field}=${label(v)}`, call: { method: 'trade', args: [id, trade({ trade_id: 'g' + rng.int(0, 1e9), symbol: ctx.freshSymbol, [field]: v })] }, refusal: 'result' };
    },
    () => ({ name: 'trade: not an object', call: { method: 'trade', args: [id, pick([null, undefined, 42, 'trade', [], true])] }, refusal: 'result' }),
    () => {
      const v = pick(bad);
      return { name: `cash: amount=${label(v)}`, call: { method: 'cash', args: [id, { type: rng.chance(0.5) ? 'deposit' : 'withdraw', amount: v }] }, refusal: 'result' };
    },
    () => ({ name: 'cash: bad type', call: { method: 'cash', args: [id, pick([{ type: 'steal', amount: 5 }, { amount: 5 }, null, 'deposit', 5])] }, refusal: 'result' }),
    () => ({ name: 'cash: unknown portfolio', call: { method: 'cash', args: [pick(badIds), { type: 'deposit', amount: 5 }] }, refusal: 'result' }),
    () => {
      const input = pick<unknown>([
        { id: pick(badIds.filter((x) => x !== undefined)), cash: 10 },
        { id: 'g-new', cash: pick([NaN, -1, Infinity, '100', 1e16]) },
        { id: 'g-new', limits: { max_loss: pick([-1, NaN, Infinity, '5']) } },
        { id: 'g-new', limits: { max_drawdown_pct: pick([101, -5, NaN]) } },
        { id: 'g-new', limits: { unknown_limit: 5 } },
        { id: 'g-new', limits: 'tight' },
        { id: 'g-new', name: 'n'.repeat(129) },
        { id: 'g-new', name: 42 },
        42,
        'portfolio',
        [],
      ]);
      return { name: `createPortfolio: ${label(input)}`, call: { method: 'createPortfolio', args: [input] }, refusal: 'result' };
    },
    () =>
      ctx.known === null
        ? { name: 'createPortfolio: bad id', call: { method: 'createPortfolio', args: [{ id: 'has space', cash: 5 }] }, refusal: 'result' }
        : { name: 'createPortfolio: existing id', call: { method: 'createPortfolio', args: [{ id: ctx.known, cash: 5 }] }, refusal: 'result' },
    () => {
      const limits = pick<unknown>([{ max_drawdown_pct: 101 }, { max_loss: NaN }, { max_loss: -1 }, { max_position_weight_pct: Infinity }, { nope: 1 }, 'none', 5, [1]]);
      return { name: `setLimits: ${label(limits)}`, call: { method: 'setLimits', args: [id, limits] }, refusal: 'result' };
    },
    () => {
      const method = pick(['pause', 'resume', 'closePortfolio', 'snapshot', 'setLimits'] as const);
      const target = rng.chance(0.5) ? pick(badIds) : 'nobody-' + rng.int(0, 1e6);
      return { name: `${method}: id=${label(target)}`, call: { method, args: method === 'setLimits' ? [target, {}] : [target] }, refusal: 'result' };
    },
    () => ({ name: 'snapshotAt: bad instant', call: { method: 'snapshotAt', args: [id, pick([NaN, Infinity, '2020', undefined])] }, refusal: 'result' }),
    () => {
      // A tick for a fresh, valid symbol with a bad price/timestamp/size: refused, and must not register the symbol.
      const which = pick(['price', 'ts', 'size'] as const);
      const args: unknown[] =
        which === 'price'
          ? [ctx.freshSymbol, pick([NaN, Infinity, 0, -3, 1e13, '5']), ctx.now]
          : which === 'ts'
            ? [ctx.freshSymbol, 10, pick([NaN, -1, Infinity, 8.64e15 + 10])]
            : [ctx.freshSymbol, 10, ctx.now, pick([NaN, -1, Infinity])];
      return { name: `ingestTick: fresh symbol, bad ${which}=${label(args[which === 'price' ? 1 : which === 'ts' ? 2 : 3])}`, call: { method: 'ingestTick', args }, refusal: 'code' };
    },
    () => ({ name: 'ingestTick: bad symbol', call: { method: 'ingestTick', args: [pick(['', 'a b', 'S'.repeat(33), huge, 5, null]), 10, ctx.now] }, refusal: 'code' }),
    () => {
      const entries = Array.from({ length: rng.int(1, 5) }, () =>
        pick<unknown>([null, 5, 'tick', { symbol: 5, price: 1 }, { symbol: ctx.freshSymbol, price: 'x' }, { symbol: ctx.freshSymbol, price: NaN }, { symbol: ctx.freshSymbol, price: 1, ts: 'now' }, { symbol: ctx.freshSymbol, price: 1, size: 'big' }, { price: 3 }]),
      );
      return { name: `ingestTicks: ${entries.length} bad entries`, call: { method: 'ingestTicks', args: [entries] }, refusal: 'ticks' };
    },
    () => ({ name: 'ingestTicks: not an array', call: { method: 'ingestTicks', args: [pick([null, 5, 'ticks', { symbol: 'S0', price: 1 }])] }, refusal: 'ticks' }),
    () => {
      const n = ctx.ticksPerCallMax + 1;
      const ticks = Array.from({ length: n }, () => ({ symbol: ctx.freshSymbol, price: 1, ts: ctx.now }));
      return { name: `ingestTicks: ${n} ticks (over ticksPerCallMax)`, call: { method: 'ingestTicks', args: [ticks] }, refusal: 'ticks' };
    },
    () => ({ name: 'queryEvents: odd filters', call: { method: 'queryEvents', args: [pick<unknown>([null, undefined, 5, { limit: -5 }, { limit: NaN }, { portfolio_id: 5 }, { order: 'sideways' }, { from: 'yesterday' }, { portfolio_id: huge }])] }, refusal: 'no-throw' }),
    () => ({ name: 'crashShard: not a shard', call: { method: 'crashShard', args: [pick([-1, ctx.workers, 1.5, NaN, '0', null])] }, refusal: 'result' }),
    () => ({ name: 'crashShard: unknown fault', call: { method: 'crashShard', args: [rng.int(0, ctx.workers - 1), pick(['explode', '', 5, null])] }, refusal: 'result' }),
  ];
  return rng.pick(cases)();
}

function label(v: unknown): string {
  if (typeof v === 'string') return v.length > 20 ? `'${v.slice(0, 8)}...'(${v.length})` : `'${v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  try {
    const s = JSON.stringify(v);
    return s.length > 60 ? s.slice(0, 57) + '...' : s;
  } catch {
    return typeof v;
  }
}
