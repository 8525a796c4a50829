// The portfolio's latest domain events, newest first, at most `eventsMax`. Live ones come from
// subscribe_events, older ones from REST (on selection, and after a reconnect for what was missed);
// both are merged by the events' global seq, so an event seen twice is shown once.

import type { StoredEvent } from '../../src/domain/types.js';
import { el } from './dom.js';
import { fmtMoney, fmtPct, fmtPnl, fmtPrice, fmtQuantity, fmtTime } from './format.js';

export const eventsMax = 50;

export class EventsView {
  private events: StoredEvent[] = [];
  private readonly seqs = new Set<number>();
  private dirty = false;
  private readonly shown = new Map<number, HTMLLIElement>();

  constructor(
    private readonly list: HTMLOListElement,
    private readonly empty: HTMLElement,
  ) {}

  clear(): void {
    this.events = [];
    this.seqs.clear();
    this.dirty = true;
  }

  /** Highest seq held (for catching up after a reconnect), or null. */
  get lastSeq(): number | null {
    return this.events[0]?.seq ?? null;
  }

  add(batch: readonly StoredEvent[]): void {
    let added = false;
    for (const e of batch) {
      if (this.seqs.has(e.seq)) continue;
      this.seqs.add(e.seq);
      this.events.push(e);
      added = true;
    }
    if (!added) return;
    this.events.sort((a, b) => b.seq - a.seq);
    for (const e of this.events.splice(eventsMax)) this.seqs.delete(e.seq);
    this.dirty = true;
  }

  render(): void {
    if (!this.dirty) return;
    this.dirty = false;
    // Reuse the <li> of events still shown; only new ones are built, gone ones dropped.
    const keep = new Set(this.events.map((e) => e.seq));
    for (const [seq, li] of this.shown) {
      if (keep.has(seq)) continue;
      li.remove();
      this.shown.delete(seq);
    }
    let node = this.list.firstElementChild;
    for (const e of this.events) {
      let li = this.shown.get(e.seq);
      if (li === undefined) {
        li = renderEvent(e);
        this.shown.set(e.seq, li);
      }
      if (li === node) node = node.nextElementSibling;
      else this.list.insertBefore(li, node);
    }
    this.empty.hidden = this.events.length > 0;
  }
}

const kinds: Record<StoredEvent['type'], string> = {
  PortfolioCreated: 'Created',
  PortfolioClosed: 'Portfolio closed',
  TradeExecuted: 'Trade',
  CashDeposited: 'Deposit',
  CashWithdrawn: 'Withdrawal',
  FxConverted: 'FX conversion',
  InstrumentDefined: 'Instrument',
  ContractAdjusted: 'Contract adjustment',
  LimitsSet: 'Limits',
  TradingPaused: 'Paused',
  TradingResumed: 'Resumed',
  PositionOpened: 'Opened',
  PositionClosed: 'Position closed',
  LotClosed: 'Lot closed',
  RiskLimitBreached: 'Risk breach',
  ShardRestarted: 'Shard restart',
  MarketAlert: 'Market alert',
  FeedGap: 'Feed gap',
  SuspectTickHeld: 'Suspect tick held',
  SuspectTickConfirmed: 'Suspect tick confirmed',
  SuspectTickRejected: 'Suspect tick rejected',
  SplitApplied: 'Split',
  DividendEntitled: 'Dividend entitled',
  DividendPaid: 'Dividend',
  SymbolChanged: 'Symbol change',
  CorporateActionAnnounced: 'Corporate action',
  CorporateActionApplied: 'Corporate action step',
};

/** Events that deserve attention get a warning style (and a ⚠ sign: not colour alone). */
const alerting: ReadonlySet<StoredEvent['type']> = new Set(['RiskLimitBreached', 'TradingPaused', 'PortfolioClosed', 'ShardRestarted', 'MarketAlert', 'FeedGap', 'SuspectTickHeld']);

export function describeEvent(e: StoredEvent): string {
  switch (e.type) {
    case 'TradeExecuted':
      return `${e.side === 'buy' ? 'Buy' : 'Sell'} ${fmtQuantity(e.quantity)} ${e.symbol} @ ${fmtPrice(e.price)}` + (e.realized_pnl !== 0 ? `, realized ${fmtPnl(e.realized_pnl)}` : '');
    case 'PositionOpened':
      return `${e.side} ${fmtQuantity(e.quantity)} ${e.symbol} @ ${fmtPrice(e.price)}`;
    case 'PositionClosed':
      return `${e.symbol}, realized ${fmtPnl(e.realized_pnl)}`;
    case 'LotClosed':
      return `${e.symbol} lot ${e.lot_id}: ${fmtQuantity(e.quantity)} @ ${fmtPrice(e.open_price)} -> ${fmtPrice(e.close_price)}, realized ${fmtPnl(e.realized_pnl)}`;
    case 'RiskLimitBreached': {
      // max_loss is an amount; the other two limits are percentages.
      const f = e.limit === 'max_loss' ? fmtMoney : fmtPct;
      return `${e.limit}: ${f(e.value)} beyond ${f(e.threshold)}`;
    }
    case 'TradingPaused':
      return e.reason === 'risk' ? 'by a risk limit' : 'by command';
    case 'TradingResumed':
      return 'trading resumed';
    case 'PortfolioCreated':
      return `${e.name}, cash ${fmtMoney(e.cash)}`;
    case 'PortfolioClosed':
      return 'no further trades';
    case 'CashDeposited':
    case 'CashWithdrawn':
      return fmtMoney(e.amount);
    case 'FxConverted':
      return `${fmtMoney(e.amount)} ${e.from_currency} → ${fmtMoney(e.received)} ${e.to_currency} @ ${String(e.rate)}`;
    case 'InstrumentDefined':
      return `${e.instrument.symbol}: ${e.instrument.asset_class}, ${e.instrument.currency}, × ${String(e.instrument.multiplier)}`;
    case 'ContractAdjusted':
      return `${e.symbol} × ${String(e.multiplier_before)} → × ${String(e.multiplier_after)}: ${fmtQuantity(e.quantity_before)} → ${fmtQuantity(e.quantity_after)}`;
    case 'LimitsSet': {
      const parts = Object.entries(e.limits)
        .filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => `${k} ${String(v)}`);
      return parts.length > 0 ? parts.join(', ') : 'none';
    }
    case 'ShardRestarted':
      return `shard ${e.shard}: ${e.reason}`;
    case 'MarketAlert':
      return `${e.symbol}: ${e.rule_name} (${e.kind})`;
    case 'FeedGap':
      return e.state === 'open' ? `${e.symbol}: no ticks for ${Math.round(e.gap_ms / 1000)} s` : `${e.symbol}: ticks back after ${Math.round(e.gap_ms / 1000)} s`;
    case 'SuspectTickHeld':
      return `${e.symbol} @ ${fmtPrice(e.price)}: ${fmtPct(e.move_pct)} from ${fmtPrice(e.ref_price)}, held`;
    case 'SuspectTickConfirmed':
    case 'SuspectTickRejected':
      return `${e.symbol} @ ${fmtPrice(e.price)} (${fmtPct(e.move_pct)} from ${fmtPrice(e.ref_price)}), by ${e.by}`;
    case 'SplitApplied':
      return `${e.symbol} ${e.to}-for-${e.from}: ${fmtQuantity(e.quantity_before)} → ${fmtQuantity(e.quantity_after)}`;
    case 'DividendEntitled':
      return `${e.symbol}: ${fmtQuantity(e.quantity)} × ${fmtPrice(e.amount_per_share)} ${e.currency}, paid ${fmtTime(e.pay_ts)}`;
    case 'DividendPaid':
      return `${e.symbol}: ${fmtMoney(e.amount)} ${e.currency}` + (e.fx_rate === null ? ' (no FX rate yet: not in realized)' : '');
    case 'SymbolChanged':
      return `${e.from_symbol} → ${e.to_symbol}` + (e.merged ? ' (merged)' : '');
    case 'CorporateActionAnnounced':
      return `${e.action.action_id}: ${e.action.type} ${e.action.symbol}`;
    case 'CorporateActionApplied':
      return `${e.action_id} ${e.step}` + (e.error === null ? `: ${e.holders} portfolios` : ` refused: ${e.error.message}`);
  }
}

function renderEvent(e: StoredEvent): HTMLLIElement {
  const warn = alerting.has(e.type);
  return el(
    'li',
    { 'data-type': e.type, 'data-seq': String(e.seq), class: warn ? 'ev warn' : 'ev' },
    el('time', { datetime: new Date(e.ts).toISOString() }, fmtTime(e.ts)),
    el('span', { class: 'ev-kind' }, (warn ? '⚠ ' : '') + kinds[e.type]),
    el('span', { class: 'ev-text' }, describeEvent(e)),
  );
}
