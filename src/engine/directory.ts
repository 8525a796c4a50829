// The main thread's directory of portfolios: what it must know without asking a shard (does the id
// exist, its lifecycle state for listings, its base currency to name the FX symbol a trade needs).
// Kept in step by the same events at recovery and at run time.

import { ErrorCode, fail, type Result } from '../errors.js';
import { baseCurrencyDefault, type DomainEventBody, type DomainEventType, type PortfolioStatus } from '../domain/types.js';
import { validatePortfolioId } from '../domain/validate.js';

export interface DirectoryEntry {
  name: string;
  state: PortfolioStatus;
  base: string;
}

export type Directory = Map<string, DirectoryEntry>;

/** The events applyToDirectory reads. */
export const directoryEventTypes: ReadonlySet<DomainEventType> = new Set<DomainEventType>(['PortfolioCreated', 'TradingPaused', 'TradingResumed', 'PortfolioClosed']);

export function applyToDirectory(directory: Directory, e: DomainEventBody & { portfolio_id: string }): void {
  if (e.type === 'PortfolioCreated') directory.set(e.portfolio_id, { name: e.name, state: 'active', base: e.base_currency ?? baseCurrencyDefault });
  const entry = directory.get(e.portfolio_id);
  if (entry === undefined) return;
  if (e.type === 'TradingPaused') entry.state = 'paused';
  else if (e.type === 'TradingResumed') entry.state = 'active';
  else if (e.type === 'PortfolioClosed') entry.state = 'closed';
}

/** The id, validated and known to the directory, or the error naming the field. */
export function knownPortfolio(directory: Directory, id: unknown): Result<string> {
  const v = validatePortfolioId(id, 'portfolio_id');
  if (!v.ok) return v;
  if (!directory.has(v.value)) return fail(ErrorCode.portfolio_not_found, `portfolio '${v.value}' not found`, 'portfolio_id');
  return v;
}
