// The schedule of corporate actions: which steps an action has, when each is due, what is still pending,
// and how an action is shown. Pure, except for rebuilding the pending set from the log at start.
//
// Durable records (store.tradeResult, the idempotency table): under ('_corporate', action_id) the action
// as entered (for "same id, same body?"), written with its announcement; under ('_corporate:outcome',
// action_id) how it ended, written in the commit of its last step. The log under '_corporate' holds the
// announcements and one CorporateActionApplied per step done, so recovery knows what is still due.

import type { CorporateAction, CorporateStep, CorporateStepName, StoredEvent } from '../domain/types.js';

/** Pseudo-portfolio of the corporate action log (like '_market' for market events). */
export const corporatePortfolio = '_corporate';
/** Idempotency table key of an action's outcome, once it has one. */
export const corporateOutcomeKey = '_corporate:outcome';

export interface StepDone {
  step: CorporateStepName;
  applied_ts: number;
  holders: number;
}

export type CorporateStatus = 'pending' | 'applied' | 'failed';

export type CorporateActionView = CorporateAction & {
  status: CorporateStatus;
  announced_ts: number;
  steps: StepDone[];
  error: { code: string; message: string } | null;
};

/** Stored with the announcement: the action as entered (canonical) and resolved. */
export interface CorporateRecord {
  input: string;
  action: CorporateAction;
  announced_ts: number;
}

/** Stored with the last step. */
export interface CorporateOutcome {
  status: 'applied' | 'failed';
  steps: StepDone[];
  error: { code: string; message: string } | null;
}

export interface PendingAction {
  action: CorporateAction;
  announced_ts: number;
  steps: StepDone[];
  /** Applies of the next step that lost a shard, in a row (memory only: a restart starts over). */
  failedApplies?: number;
}

export function stepsOf(action: CorporateAction): readonly CorporateStepName[] {
  if (action.type === 'dividend') return ['ex_date', 'pay_date'];
  if (action.type === 'contract_adjustment') return ['contract_adjustment'];
  return action.type === 'split' ? ['split'] : ['symbol_change'];
}

export function dueAt(action: CorporateAction, step: CorporateStepName): number {
  if (action.type === 'dividend') return step === 'ex_date' ? action.ex_ts : action.pay_ts;
  return action.effective_ts;
}

/** The next step of a pending action, or null when it has none left. */
export function nextStep(p: PendingAction): CorporateStepName | null {
  return stepsOf(p.action)[p.steps.length] ?? null;
}

/** The step as the shards apply it (pay_date: each shard fills in the FX rate per portfolio). */
export function stepOf(action: CorporateAction, step: CorporateStepName): CorporateStep {
  switch (action.type) {
    case 'split':
      return { step: 'split', action_id: action.action_id, symbol: action.symbol, from: action.from, to: action.to };
    case 'symbol_change':
      return { step: 'symbol_change', action_id: action.action_id, symbol: action.symbol, new_symbol: action.new_symbol };
    case 'contract_adjustment':
      return { step: 'contract_adjustment', action_id: action.action_id, symbol: action.symbol, multiplier: action.multiplier };
    case 'dividend':
      return step === 'ex_date'
        ? { step: 'ex_date', action_id: action.action_id, symbol: action.symbol, amount_per_share: action.amount_per_share, pay_ts: action.pay_ts }
        : { step: 'pay_date', action_id: action.action_id, fx_rate: null };
  }
}

export function viewOf(action: CorporateAction, announcedTs: number, status: CorporateStatus, steps: StepDone[], error: CorporateOutcome['error']): CorporateActionView {
  return { ...action, status, announced_ts: announcedTs, steps: steps.map((s) => ({ ...s })), error };
}

/**
 * Replays the '_corporate' log: returns the actions still pending, and hands every step that was done
 * (in log order) to `done`, so the main thread redoes its side of it (prices, split times, symbols).
 * Memory: at most the pending actions at any point of the log, bounded when they were live.
 */
export function pendingFromLog(events: Iterable<StoredEvent>, done: (action: CorporateAction, step: CorporateStepName) => void): Map<string, PendingAction> {
  return pendingByScope(events, done).get(globalScope) ?? new Map();
}

/** The scope key of actions that apply to every portfolio (single node). */
export const globalScope = '';

/**
 * pendingFromLog for every scope at once (cluster mode: one scope per partition, the events' `scope`):
 * scope -> the actions still pending there. Bounded by the scopes (partitions) x the actions pending.
 */
export function pendingByScope(events: Iterable<StoredEvent>, done: (action: CorporateAction, step: CorporateStepName) => void): Map<string, Map<string, PendingAction>> {
  const scopes = new Map<string, Map<string, PendingAction>>();
  const of = (scope: string | undefined): Map<string, PendingAction> => {
    const key = scope ?? globalScope;
    let m = scopes.get(key);
    if (m === undefined) scopes.set(key, (m = new Map()));
    return m;
  };
  for (const e of events) {
    if (e.type === 'CorporateActionAnnounced') {
      of(e.scope).set(e.action.action_id, { action: e.action, announced_ts: e.ts, steps: [] });
      continue;
    }
    if (e.type !== 'CorporateActionApplied') continue;
    const pending = of(e.scope);
    const p = pending.get(e.action_id);
    if (p === undefined) continue;
    if (e.error !== null) {
      pending.delete(e.action_id);
      continue;
    }
    p.steps.push({ step: e.step, applied_ts: e.ts, holders: e.holders });
    done(p.action, e.step);
    if (nextStep(p) === null) pending.delete(e.action_id);
  }
  return scopes;
}

/** The idempotency table's keys of a scoped action's record and outcome (beside the global ones). */
export function scopedRecordKey(scope: string): string {
  return scope === globalScope ? corporatePortfolio : `${corporatePortfolio}@${scope}`;
}

export function scopedOutcomeKey(scope: string): string {
  return scope === globalScope ? corporateOutcomeKey : `${corporateOutcomeKey}@${scope}`;
}
