// The main thread's directory of portfolios: what it must know without asking a shard (does the id
// exist, its lifecycle state for listings, its base currency to name the FX symbol a trade needs).
// Kept in step by the same events at recovery and at run time.

import { baseCurrencyDefault, type DomainEventBody, type PortfolioStatus } from '../domain/types.js';

export interface DirectoryEntry {
  name: string;
  state: PortfolioStatus;
  base: string;
}

export type Directory = Map<string, DirectoryEntry>;

export function applyToDirectory(directory: Directory, e: DomainEventBody & { portfolio_id: string }): void {
  if (e.type === 'PortfolioCreated') directory.set(e.portfolio_id, { name: e.name, state: 'active', base: e.base_currency ?? baseCurrencyDefault });
  const entry = directory.get(e.portfolio_id);
  if (entry === undefined) return;
  if (e.type === 'TradingPaused') entry.state = 'paused';
  else if (e.type === 'TradingResumed') entry.state = 'active';
  else if (e.type === 'PortfolioClosed') entry.state = 'closed';
}
