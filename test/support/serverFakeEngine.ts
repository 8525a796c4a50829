// A small in-memory Engine for exercising the server's transport where the real engine's timing would
// get in the way (deterministic update bursts). Accounting is deliberately naive: one price per symbol,
// positions valued at the last price; it is not a reference for the engine's numbers.

import { ErrorCode, fail, ok, type Result } from '../../src/errors.js';
import type { Engine, EngineStats, EventListener, Listener, PortfolioSummary, TickIngestResult } from '../../src/engine/api.js';
import type {
  CashInput,
  CreatePortfolioInput,
  PortfolioSnapshot,
  PortfolioUpdate,
  PositionView,
  RiskLimits,
  StoredEvent,
  TickInput,
  TradeInput,
  TradeResult,
} from '../../src/domain/types.js';

interface Pf {
  snap: PortfolioSnapshot;
  listeners: Set<Listener>;
  trades: Map<string, TradeResult>;
}

export class FakeEngine implements Engine {
  readonly kernel = 'js' as const;
  readonly workers = 1;
  private readonly pfs = new Map<string, Pf>();
  private readonly prices = new Map<string, number>();
  private readonly events: StoredEvent[] = [];
  private readonly eventListeners = new Set<EventListener>();
  private seq = 0;
  private n = 0;

  private notFound(id: string): { ok: false; error: { code: ErrorCode; message: string } } {
    return fail(ErrorCode.portfolio_not_found, `portfolio '${id}' not found`);
  }

  private emit(e: Omit<StoredEvent, 'seq' | 'ts'>): void {
    const ev = { ...e, ts: Date.now(), seq: ++this.seq } as StoredEvent;
    this.events.push(ev);
    for (const l of this.eventListeners) l(ev);
  }

  async createPortfolio(input: CreatePortfolioInput): Promise<Result<PortfolioSnapshot>> {
    const id = input.id ?? `pf-${++this.n}`;
    if (this.pfs.has(id)) return fail(ErrorCode.portfolio_exists, `id '${id}' already exists`, 'id');
    const cash = input.cash ?? 0;
    const snap: PortfolioSnapshot = {
      portfolio_id: id,
      name: input.name ?? '',
      seq: 0,
      as_of: Date.now(),
      state: 'active',
      limits: input.limits ?? {},
      equity_hwm: cash,
      positions: [],
      cash,
      capital: cash,
      holdings_value: 0,
      cost_basis: 0,
      unrealized_pnl: 0,
      realized_pnl: 0,
      total_return: 0,
      return_rate: 0,
      equity: cash,
      gross_exposure: 0,
    };
    this.pfs.set(id, { snap, listeners: new Set(), trades: new Map() });
    this.emit({ type: 'PortfolioCreated', portfolio_id: id, name: snap.name, cash, limits: snap.limits } as never);
    return ok(structuredClone(snap));
  }

  private change(pf: Pf, changed: PositionView[], tickTs: number): void {
    const s = pf.snap;
    s.seq++;
    s.as_of = Date.now();
    s.holdings_value = s.positions.reduce((a, p) => a + p.market_value, 0);
    s.gross_exposure = s.positions.reduce((a, p) => a + Math.abs(p.market_value), 0);
    s.equity = s.cash + s.holdings_value;
    s.total_return = s.equity - s.capital;
    s.equity_hwm = Math.max(s.equity_hwm, s.equity);
    const { name: _n, limits: _l, equity_hwm: _h, positions: _p, ...totals } = s;
    const u: PortfolioUpdate = { ...totals, tick_ts: tickTs, positions: changed.map((p) => ({ ...p })) };
    for (const l of pf.listeners) l({ kind: 'update', update: u });
  }

  async closePortfolio(id: string): Promise<Result<PortfolioSnapshot>> {
    const pf = this.pfs.get(id);
    if (!pf) return this.notFound(id);
    pf.snap.state = 'closed';
    this.change(pf, [], 0);
    return ok(structuredClone(pf.snap));
  }

  async trade(id: string, t: TradeInput): Promise<Result<TradeResult>> {
    const pf = this.pfs.get(id);
    if (!pf) return this.notFound(id);
    const prev = pf.trades.get(t.trade_id);
    if (prev) return ok({ ...prev, applied: false });
    if (pf.snap.state !== 'active') return fail(ErrorCode.portfolio_paused, 'portfolio is not active');
    const signed = t.side === 'buy' ? t.quantity : -t.quantity;
    let p = pf.snap.positions.find((x) => x.symbol === t.symbol);
    if (!p) {
      p = { symbol: t.symbol, quantity: 0, avg_cost: t.price, last_price: t.price, market_value: 0, unrealized_pnl: 0, realized_pnl: 0, return_rate: 0, weight: 0 };
      pf.snap.positions.push(p);
    }
    p.quantity += signed;
    p.last_price = this.prices.get(t.symbol) ?? t.price;
    p.market_value = p.quantity * p.last_price;
    pf.snap.cash -= signed * t.price + (t.fee ?? 0);
    this.change(pf, [p], 0);
    const { name: _n, limits: _l, equity_hwm: _h, positions: _p, portfolio_id: _i, seq: _s, as_of: _a, state: _st, ...totals } = pf.snap;
    const r: TradeResult = { trade_id: t.trade_id, portfolio_id: id, applied: true, realized_pnl: 0, position: { ...p }, totals, state: pf.snap.state };
    pf.trades.set(t.trade_id, r);
    this.emit({ type: 'TradeExecuted', portfolio_id: id, trade_id: t.trade_id, symbol: t.symbol, side: t.side, quantity: t.quantity, price: t.price, fee: 0, trade_ts: 0, realized_pnl: 0 } as never);
    return ok(r);
  }

  async cash(id: string, op: CashInput): Promise<Result<PortfolioSnapshot>> {
    const pf = this.pfs.get(id);
    if (!pf) return this.notFound(id);
    pf.snap.cash += op.type === 'deposit' ? op.amount : -op.amount;
    this.change(pf, [], 0);
    return ok(structuredClone(pf.snap));
  }

  private async setState(id: string, state: 'active' | 'paused'): Promise<Result<PortfolioSnapshot>> {
    const pf = this.pfs.get(id);
    if (!pf) return this.notFound(id);
    pf.snap.state = state;
    this.change(pf, [], 0);
    return ok(structuredClone(pf.snap));
  }
  pause(id: string): Promise<Result<PortfolioSnapshot>> {
    return this.setState(id, 'paused');
  }
  resume(id: string): Promise<Result<PortfolioSnapshot>> {
    return this.setState(id, 'active');
  }

  async setLimits(id: string, limits: RiskLimits): Promise<Result<PortfolioSnapshot>> {
    const pf = this.pfs.get(id);
    if (!pf) return this.notFound(id);
    pf.snap.limits = limits;
    return ok(structuredClone(pf.snap));
  }

  async snapshot(id: string): Promise<Result<PortfolioSnapshot>> {
    const pf = this.pfs.get(id);
    return pf ? ok(structuredClone(pf.snap)) : this.notFound(id);
  }

  async snapshotAt(id: string): Promise<Result<PortfolioSnapshot>> {
    return this.snapshot(id);
  }

  has(id: string): boolean {
    return this.pfs.has(id);
  }

  listPortfolios(): PortfolioSummary[] {
    return [...this.pfs.values()].map((p) => ({ id: p.snap.portfolio_id, name: p.snap.name, state: p.snap.state }));
  }

  ingestTick(symbol: string, price: number, ts: number): string | null {
    if (!/^[A-Za-z0-9._:/-]{1,32}$/.test(symbol)) return ErrorCode.invalid_symbol;
    if (!(price > 0) || !Number.isFinite(price)) return ErrorCode.invalid_price;
    if (!Number.isFinite(ts) || ts < 0) return ErrorCode.invalid_timestamp;
    this.prices.set(symbol, price);
    for (const pf of this.pfs.values()) {
      const p = pf.snap.positions.find((x) => x.symbol === symbol);
      if (!p) continue;
      p.last_price = price;
      p.market_value = p.quantity * price;
      this.change(pf, [p], ts);
    }
    return null;
  }

  ingestTicks(ticks: readonly TickInput[]): TickIngestResult {
    const rejected: { index: number; code: string }[] = [];
    let accepted = 0;
    ticks.forEach((t, index) => {
      const code = this.ingestTick(t.symbol, t.price, t.ts ?? Date.now());
      if (code === null) accepted++;
      else rejected.push({ index, code });
    });
    return { accepted, rejected };
  }

  async drain(): Promise<void> {}

  subscribe(id: string, listener: Listener): Result<() => void> {
    const pf = this.pfs.get(id);
    if (!pf) return this.notFound(id);
    pf.listeners.add(listener);
    queueMicrotask(() => listener({ kind: 'snapshot', snapshot: structuredClone(pf.snap), resync: false }));
    return ok(() => void pf.listeners.delete(listener));
  }

  onEvent(listener: EventListener): () => void {
    this.eventListeners.add(listener);
    return () => void this.eventListeners.delete(listener);
  }

  async queryEvents(q: { portfolio_id?: string; limit?: number; after_seq?: number }): Promise<Result<StoredEvent[]>> {
    return ok(this.events.filter((e) => e.portfolio_id === q.portfolio_id && e.seq > (q.after_seq ?? 0)).slice(0, q.limit ?? 100));
  }

  stats(): EngineStats {
    return {} as EngineStats;
  }
  crashShard(): Result<void> {
    return ok(undefined);
  }
  shardOf(): number {
    return 0;
  }
  async close(): Promise<void> {}
}
