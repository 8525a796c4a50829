// The recovery scenario's base state written in bulk (recoveryBuild.ts): the engine's own shard code
// decides every event and trade result, and they go straight to the store in large appends.
import { holdingsOf, portfolioId, type Workload } from '../workload.js';

/** Commands per in-process shard call and store append (the store dedups the trade results of one append by scanning them: keep it short). */
const bulkCommandsPerBatch = 500;

/**
 * The base state through the engine's shard code without the engine around it: creations, then the
 * holdings' trades, each validated as the engine validates them (validateTrade), decided by an
 * in-process Shard (actors, accounting, kernel), and its events and trade results appended as the
 * engine's Commit.persist appends them, in command order. Waits on the store while it is overloaded.
 */
export async function bulkBase(dir: string, w: Workload, clock: { now(): number } = Date): Promise<number> {
  // Loaded here only: building the peer's journal must not depend on the engine's modules.
  const { Shard } = await import('../../src/shard/shard.js');
  const { openStore } = await import('../../src/store/store.js');
  const { validateTrade } = await import('../../src/domain/validate.js');
  const { defaultLimits, staleAfterMsDefault } = await import('../../src/engine/options.js');
  const { baseCurrencyDefault } = await import('../../src/domain/types.js');
  type Command = import('../../src/shard/protocol.js').Command;
  type DomainEvent = import('../../src/domain/types.js').DomainEvent;
  const opened = openStore({ path: dir });
  if (!opened.ok) throw new Error(`open store: ${opened.error.message}`);
  const store = opened.value;
  const shard = new Shard({
    shard: 0,
    kernel: 'wasm',
    positionsPerPortfolioMax: defaultLimits.positionsPerPortfolioMax,
    portfoliosMax: Math.max(defaultLimits.portfoliosMax, w.portfolios),
    symbolsMax: defaultLimits.symbolsMax,
    staleAfterMs: staleAfterMsDefault,
  });
  const holdings = holdingsOf(w);
  const symbols = [...new Set(holdings.map((h) => h.symbol))];
  shard.registerSymbols(0, symbols);
  let id = 0;
  let events = 0;
  let batch: Command[] = [];
  const run = async (): Promise<void> => {
    const out: DomainEvent[] = [];
    const trades: { portfolio_id: string; trade_id: string; result: unknown }[] = [];
    for (const r of shard.commands(batch)) {
      if (r.error !== null) throw new Error(`bulk base: ${r.error.code}: ${r.error.message}`);
      for (const e of r.events) out.push(e as DomainEvent);
      if (r.trade !== null) trades.push({ portfolio_id: r.trade.portfolio_id, trade_id: r.trade.trade_id, result: r.trade });
    }
    batch = [];
    events += out.length;
    const receipt = store.append(out, trades);
    if (store.overloaded()) await receipt.durable;
  };
  const options = { cost_basis_method: 'average', base_currency: baseCurrencyDefault } as const;
  for (let p = 0; p < w.portfolios; p++) {
    batch.push({ id: id++, kind: 'create', portfolio: portfolioId(p), name: '', cash: 1_000_000, limits: {}, options, now: clock.now() });
    if (batch.length >= bulkCommandsPerBatch) await run();
  }
  let n = 0;
  for (const h of holdings) {
    const v = validateTrade({ trade_id: 'seed-' + n++, symbol: h.symbol, side: 'buy', quantity: h.quantity, price: h.price }, clock.now());
    if (!v.ok) throw new Error(`bulk base: ${v.error.message}`);
    batch.push({ id: id++, kind: 'trade', portfolio: h.portfolio, trade: v.value, now: clock.now() });
    if (batch.length >= bulkCommandsPerBatch) await run();
  }
  if (batch.length > 0) await run();
  await store.append([]).durable;
  await store.close();
  return events;
}
