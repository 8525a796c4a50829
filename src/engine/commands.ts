// Portfolio commands: where a create, close, cash, pause, resume, limits or snapshot command enters
// the engine. Validated at the boundary against the directory, then sent through commit.ts (acked
// after the durable commit). Trades enter in commit.ts (trade-id idempotency).

import { performance } from 'node:perf_hooks';
import { engineClosed, ErrorCode, fail, ok, type Result } from '../errors.js';
import { validSymbol, validateCash, validateCreatePortfolio, validateFxConversion, validateLimits } from '../domain/validate.js';
import { baseCurrencyDefault, type Clock, type CreatePortfolioInput, type PortfolioSnapshot, type Random, type RiskLimits } from '../domain/types.js';
import type { SymbolTable } from './symbols.js';
import type { PositionLots } from './api.js';
import type { Commit } from './commit.js';
import { failureResult, type EngineCounters } from './counters.js';
import { knownPortfolio, type Directory } from './directory.js';
import type { Lifecycle } from './lifecycle.js';
import type { ResolvedOptions } from './options.js';
import type { CommandBody } from './shardHandle.js';

export interface CommandsDeps {
  o: ResolvedOptions;
  clock: Clock;
  random: Random;
  life: Lifecycle;
  counters: EngineCounters;
  directory: Directory;
  commit: Commit;
  symbols: SymbolTable;
  announceSymbols: () => void;
}

export class Commands {
  constructor(private readonly d: CommandsDeps) {}

  private command(kind: CommandBody['kind'], portfolio: string, extra: object): Promise<Result<PortfolioSnapshot>> {
    const started = performance.now();
    return this.d.commit.run(portfolio, { kind, portfolio, now: this.d.clock.now(), ...extra } as CommandBody).then((r) => {
      this.d.counters.command(kind, r.ok ? 'ok' : failureResult(r.error.code), performance.now() - started);
      return r.ok ? ok(r.value.snapshot as PortfolioSnapshot) : r;
    });
  }

  private known(id: unknown): Result<string> {
    return knownPortfolio(this.d.directory, id);
  }

  async createPortfolio(input: CreatePortfolioInput): Promise<Result<PortfolioSnapshot>> {
    const v = validateCreatePortfolio(input);
    if (!v.ok) return v;
    if (this.d.life.closing) return engineClosed();
    await this.d.life.ready;
    const directory = this.d.directory;
    const id = v.value.id ?? this.newId();
    if (directory.has(id)) return fail(ErrorCode.portfolio_exists, `id '${id}' already exists`, 'id');
    if (directory.size >= this.d.o.limits.portfoliosMax) return fail(ErrorCode.limit_exceeded, `portfolios must be <= ${this.d.o.limits.portfoliosMax}`, 'id');
    // Reserve the id now so a concurrent create of the same id is refused, not raced.
    directory.set(id, { name: v.value.name, state: 'active', base: v.value.base_currency });
    const options = { cost_basis_method: v.value.cost_basis_method, base_currency: v.value.base_currency };
    const r = await this.command('create', id, { name: v.value.name, cash: v.value.cash, limits: v.value.limits, options });
    if (!r.ok) directory.delete(id);
    return r;
  }

  private newId(): string {
    let id = '';
    do {
      id = 'p-' + Math.floor(this.d.random.next() * 2 ** 48).toString(36).padStart(10, '0');
    } while (this.d.directory.has(id));
    return id;
  }

  async closePortfolio(id: string): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(id);
    return k.ok ? this.command('close', k.value, {}) : k;
  }

  async cash(portfolioId: string, op: unknown): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    if (!k.ok) return k;
    const v = validateCash(op);
    if (!v.ok) return v;
    const currency = v.value.currency;
    const base = this.d.directory.get(k.value)?.base ?? baseCurrencyDefault;
    if (currency === undefined || currency === base) return this.command(v.value.type, k.value, { amount: v.value.amount });
    const interned = this.internCurrencies(base, [currency]);
    return interned ?? this.command(v.value.type, k.value, { amount: v.value.amount, currency });
  }

  /** Moves cash between two balances at the given rate (to_currency per from_currency). */
  async convertCash(portfolioId: string, input: unknown): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    if (!k.ok) return k;
    const v = validateFxConversion(input);
    if (!v.ok) return v;
    const base = this.d.directory.get(k.value)?.base ?? baseCurrencyDefault;
    const interned = this.internCurrencies(base, [v.value.from_currency, v.value.to_currency]);
    return interned ?? this.command('fxConvert', k.value, { ...v.value });
  }

  /** A foreign balance is converted into the base by the shard: its conversion and legs first. */
  private internCurrencies(base: string, currencies: string[]): { ok: false; error: import('../errors.js').EngineError } | null {
    for (const currency of currencies) {
      if (currency === base) continue;
      if (!this.d.symbols.internConversion(currency, base, this.d.o.fxPivot)) return fail(ErrorCode.limit_exceeded, `symbols must be <= ${this.d.o.limits.symbolsMax}`, 'currency');
    }
    this.d.announceSymbols();
    return null;
  }

  async pause(portfolioId: string): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    return k.ok ? this.command('pause', k.value, {}) : k;
  }

  async resume(portfolioId: string): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    return k.ok ? this.command('resume', k.value, {}) : k;
  }

  async setLimits(portfolioId: string, limits: RiskLimits): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    if (!k.ok) return k;
    const v = validateLimits(limits);
    if (!v.ok) return v;
    return this.command('limits', k.value, { limits: v.value });
  }

  async snapshot(portfolioId: string, options: { lots?: boolean } = {}): Promise<Result<PortfolioSnapshot>> {
    const k = this.known(portfolioId);
    if (!k.ok) return k;
    const r = await this.d.commit.run(k.value, { kind: 'snapshot', portfolio: k.value, now: this.d.clock.now(), lots: options.lots === true });
    return r.ok ? ok(r.value.snapshot as PortfolioSnapshot) : r;
  }

  async lots(portfolioId: string, symbol: string): Promise<Result<PositionLots>> {
    if (!validSymbol(symbol)) return fail(ErrorCode.invalid_symbol, 'symbol must match [A-Za-z0-9._:/-]{1,32}', 'symbol');
    const r = await this.snapshot(portfolioId, { lots: true });
    if (!r.ok) return r;
    const position = r.value.positions.find((p) => p.symbol === symbol);
    if (position === undefined) return fail(ErrorCode.not_found, `symbol: no open position in '${symbol}' in portfolio '${r.value.portfolio_id}'`, 'symbol');
    return ok({
      portfolio_id: r.value.portfolio_id,
      symbol,
      cost_basis_method: r.value.cost_basis_method,
      currency: position.currency,
      quantity: position.quantity,
      avg_cost: position.avg_cost,
      lots: r.value.lots?.[symbol] ?? [],
    });
  }
}
