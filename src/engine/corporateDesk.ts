// Corporate actions on the main thread: entered through the API, announced in the log, applied when
// their time comes by the injected clock, one step at a time, to every portfolio at once.
//
// Atomicity of a step. Every other message to the shards is held (commands queue, ticks coalesce,
// snapshot requests wait); every shard first checks the step against each of its holders (nothing
// changes); only when all pass does every shard apply it, and the main thread appends all the
// per-portfolio events plus the step's CorporateActionApplied in ONE append (one LMDB transaction,
// consecutive seqs), before anything else from the shards reaches the log; then traffic resumes. So
// replay sees the step exactly where the shards applied it. A refusal fails the whole action and
// changes nothing. A shard lost during the apply leaves the others ahead of the log: they are
// restarted from the log too (rolled back), and the step is retried at the next check.

import { ErrorCode, fail, ok, storeBehind, type EngineError, type Result } from '../errors.js';
import type { Clock, CorporateStep, CorporateStepName, HeldAt } from '../domain/types.js';
import { canonicalCorporateInput, resolveCorporateAction, validateCorporateInput } from '../domain/validateCorporate.js';
import type { CommandResult, ShardEvent } from '../shard/protocol.js';
import type { Store } from '../store/store.js';
import type { CorporateMarks } from './corporateMarks.js';
import {
  corporateOutcomeKey,
  corporatePortfolio,
  dueAt,
  nextStep,
  pendingFromLog,
  stepOf,
  viewOf,
  type CorporateActionView,
  type CorporateOutcome,
  type CorporateRecord,
  type PendingAction,
} from './corporateSchedule.js';
import type { ShardHandle } from './shardHandle.js';
import type { SymbolTable } from './symbols.js';

export interface CorporateAnswer {
  /** false: this action_id was entered before; the action is answered as it stands. */
  created: boolean;
  action: CorporateActionView;
}

export interface CorporateList {
  actions: CorporateActionView[];
  next_after_seq: number | null;
}

type TradeRecord = { portfolio_id: string; trade_id: string; result: unknown };

/** What the desk needs of the engine. */
export interface DeskHost {
  readonly store: Store;
  readonly shards: readonly ShardHandle[];
  readonly symbols: SymbolTable;
  readonly clock: Clock;
  readonly marks: CorporateMarks;
  closing(): boolean;
  /** Holds (true) or releases every other message to the shards. */
  hold(on: boolean): void;
  announceSymbols(): void;
  persist(events: ShardEvent[], trades?: TradeRecord[]): Promise<void>;
  /** A watched holder's binary delta (src/client/delta.ts). */
  deliver(delta: Uint8Array): void;
  /** Restarts a shard from the log (its worker exits; the supervisor reloads it). */
  restartShard(index: number): void;
  /** Resolves once everything appended so far is durable. */
  durable(): Promise<void>;
  /** The instrument's multiplier, undefined when the symbol was never defined (contract adjustments need one). */
  multiplierOf(symbol: string): number | undefined;
  /** Every portfolio's holding of the symbol at a past instant (pastHoldings.ts). */
  holdingsAt(symbol: string, ts: number): Promise<Record<string, HeldAt>>;
  /** A contract adjustment applied on every shard: the table's new multiplier and the event recording it. */
  adjustInstrument(symbol: string, multiplier: number, ts: number): ShardEvent | null;
}

/**
 * Applies of one step that lost a shard, in a row, before the action is failed: each loss restarts the
 * shards that applied it, so a step that kills a worker every time must not do it forever.
 */
export const stepApplyAttemptsMax = 3;

/** Actions per page of the list (the store's own page bound). */
export const corporatePageLimitMax = 1_000;

export interface DeskOptions {
  checkMs: number;
  pendingMax: number;
}

export class CorporateDesk {
  private pending = new Map<string, PendingAction>();
  /** Submissions not answered yet, by action_id; bounded with pending by pendingMax. */
  private readonly inFlight = new Map<string, { input: string; answer: Promise<Result<CorporateAnswer>> }>();
  private chain: Promise<unknown> = Promise.resolve();
  private queuedSteps = 0;
  private timer: NodeJS.Timeout | null = null;
  /** True while a step holds the shards' traffic. */
  holding = false;

  constructor(
    private readonly host: DeskHost,
    private readonly o: DeskOptions,
  ) {}

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Rebuilds the pending actions from the log and redoes the main thread's side of every step done. */
  recover(): void {
    this.pending = pendingFromLog(this.host.store.eventsForPortfolio(corporatePortfolio, 0, Infinity), (action, step) => this.host.marks.commit(action, step));
  }

  start(): void {
    this.timer = setInterval(() => {
      // One round at a time: a round still running (a slow step) is not queued behind again.
      if (this.queuedSteps === 0 && !this.host.closing()) void this.check();
    }, this.o.checkMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.idle();
  }

  /** Resolves when no step is queued or running. */
  async idle(): Promise<void> {
    while (this.queuedSteps > 0) await this.chain.catch(() => undefined);
  }

  /** Applies every step whose time has come, in due order; stops the round at a retryable failure. */
  check(): Promise<void> {
    return this.enqueue(async () => {
      const now = this.host.clock.now();
      const due: { p: PendingAction; at: number }[] = [];
      for (const p of this.pending.values()) {
        const step = nextStep(p);
        if (step !== null && dueAt(p.action, step) <= now) due.push({ p, at: dueAt(p.action, step) });
      }
      // Stable: actions due at the same time run in the order they were announced.
      due.sort((a, b) => a.at - b.at);
      for (const { p } of due) {
        for (let step = nextStep(p); step !== null && dueAt(p.action, step) <= now; step = nextStep(p)) {
          const r = await this.runStep(p, null);
          if (!r.ok) {
            if (r.error.retryable === true) return;
            break;
          }
        }
      }
    });
  }

  async submit(input: unknown): Promise<Result<CorporateAnswer>> {
    const v = validateCorporateInput(input);
    if (!v.ok) return v;
    const id = v.value.action_id;
    const canonical = canonicalCorporateInput(v.value);
    const flying = this.inFlight.get(id);
    if (flying !== undefined) {
      if (flying.input !== canonical) return conflict(id);
      const r = await flying.answer;
      return r.ok ? ok({ created: false, action: this.viewById(id) ?? r.value.action }) : r;
    }
    const stored = this.host.store.tradeResult(corporatePortfolio, id) as CorporateRecord | undefined;
    if (stored !== undefined) {
      if (stored.input !== canonical) return conflict(id);
      return ok({ created: false, action: this.viewById(id) ?? viewOf(stored.action, stored.announced_ts, 'pending', [], null) });
    }
    const now = this.host.clock.now();
    const resolved = resolveCorporateAction(v.value, now);
    if (!resolved.ok) return resolved;
    if (this.pending.size + this.inFlight.size >= this.o.pendingMax) {
      return fail(ErrorCode.limit_exceeded, `action_id: corporate actions pending must be <= ${this.o.pendingMax}`, 'action_id', true);
    }
    const action = resolved.value;
    if (action.type === 'contract_adjustment') {
      const current = this.host.multiplierOf(action.symbol);
      if (current === undefined) return fail(ErrorCode.invalid_symbol, `symbol: ${action.symbol} is not a defined instrument (PUT /api/v1/instruments/${action.symbol} first)`, 'symbol');
      if (current === action.multiplier) return fail(ErrorCode.invalid_field, `multiplier: ${action.symbol} already has multiplier ${current}`, 'multiplier');
    }
    if (action.type === 'symbol_change' && this.host.symbols.intern(action.new_symbol) < 0) {
      return fail(ErrorCode.limit_exceeded, `new_symbol: symbols must be <= ${this.host.symbols.symbolsMax}`, 'new_symbol');
    }
    const record: CorporateRecord = { input: canonical, action, announced_ts: now };
    const answer = this.announce(record);
    this.inFlight.set(id, { input: canonical, answer });
    try {
      return await answer;
    } finally {
      this.inFlight.delete(id);
    }
  }

  async list(query: { after_seq?: number; limit?: number }): Promise<Result<CorporateList>> {
    const limit = Number.isInteger(query.limit) ? Math.min(Math.max(1, query.limit as number), corporatePageLimitMax) : 100;
    await this.host.durable().catch(() => undefined);
    const events = this.host.store.query({ portfolio_id: corporatePortfolio, type: 'CorporateActionAnnounced', after_seq: query.after_seq, limit, order: 'asc' });
    const actions: CorporateActionView[] = [];
    for (const e of events) {
      if (e.type !== 'CorporateActionAnnounced') continue;
      actions.push(this.viewById(e.action.action_id) ?? viewOf(e.action, e.ts, 'pending', [], null));
    }
    return ok({ actions, next_after_seq: events.length === limit ? events[events.length - 1].seq : null });
  }

  /** Pending: from memory; done: from its durable outcome. */
  private viewById(id: string): CorporateActionView | null {
    const p = this.pending.get(id);
    if (p !== undefined) return viewOf(p.action, p.announced_ts, 'pending', p.steps, null);
    const outcome = this.host.store.tradeResult(corporateOutcomeKey, id) as CorporateOutcome | undefined;
    const record = this.host.store.tradeResult(corporatePortfolio, id) as CorporateRecord | undefined;
    if (outcome === undefined || record === undefined) return null;
    return viewOf(record.action, record.announced_ts, outcome.status, outcome.steps, outcome.error);
  }

  /**
   * A first step due now is applied with the announcement, in the same commit, or not at all (its
   * refusal is the answer and nothing is logged). Otherwise the announcement alone is logged.
   */
  private async announce(record: CorporateRecord): Promise<Result<CorporateAnswer>> {
    const { action } = record;
    const entry: PendingAction = { action, announced_ts: record.announced_ts, steps: [] };
    const announced: ShardEvent = { type: 'CorporateActionAnnounced', action, portfolio_id: corporatePortfolio, ts: record.announced_ts };
    const trade: TradeRecord = { portfolio_id: corporatePortfolio, trade_id: action.action_id, result: record };
    const first = nextStep(entry) as NonNullable<ReturnType<typeof nextStep>>;
    if (dueAt(action, first) > record.announced_ts) {
      this.pending.set(action.action_id, entry);
      const failed = await settle(this.host.persist([announced], [trade]));
      if (failed !== null) return failed;
      return ok({ created: true, action: viewOf(action, entry.announced_ts, 'pending', entry.steps, null) });
    }
    let applied: Result<void> = ok(undefined);
    await this.enqueue(async () => {
      applied = await this.runStep(entry, { event: announced, trade });
    });
    if (!applied.ok) return applied;
    // A dividend whose payment is due too (pay_ts = ex_ts = now) is paid in the same answer.
    if (this.pending.has(action.action_id)) await this.check();
    return ok({ created: true, action: this.viewById(action.action_id) ?? viewOf(action, entry.announced_ts, 'pending', entry.steps, null) });
  }

  /**
   * Runs a task alone, like a step: queued behind the steps, every other message to the shards held
   * while it runs (instrument definitions use it: instruments.ts).
   */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    let out!: T;
    const run = this.enqueue(async () => {
      this.holding = true;
      this.host.hold(true);
      try {
        out = await task();
      } finally {
        this.holding = false;
        this.host.hold(false);
      }
    });
    return run.then(() => out);
  }

  /** Serializes steps: one at a time across the engine. */
  private enqueue(task: () => Promise<void>): Promise<void> {
    this.queuedSteps++;
    const run = this.chain.then(task).finally(() => this.queuedSteps--);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs the next step of an action on every shard (see the header). `announce`: the action is not
   * logged yet; its announcement goes in the step's commit, and a refusal logs nothing.
   */
  private async runStep(entry: PendingAction, announce: { event: ShardEvent; trade: TradeRecord } | null): Promise<Result<void>> {
    const { host } = this;
    const name = nextStep(entry);
    if (name === null) return ok(undefined);
    if (host.shards.some((h) => h.state !== 'ready')) return fail(ErrorCode.shard_restarting, 'a shard is restarting: the corporate action is applied once every shard is back; retry shortly', undefined, true);
    if (host.store.overloaded()) return storeBehind();
    const now = host.clock.now();
    let step = stepOf(entry.action, name);
    // A dividend entered after its ex-date is entitled from the holdings as of ex_ts, rebuilt before
    // the hold (the past does not change while the step waits for it).
    const action = entry.action;
    if (step.step === 'ex_date' && action.type === 'dividend' && action.ex_ts < entry.announced_ts) {
      step = { ...step, holdings: await host.holdingsAt(action.symbol, action.ex_ts) };
    }
    let outcome: { durable: Promise<void> | null; error: EngineError | null };
    this.holding = true;
    host.hold(true);
    try {
      outcome = await this.applyEverywhere(entry, name, step, now, announce);
    } finally {
      this.holding = false;
      host.hold(false);
    }
    const failedCommit = outcome.durable === null ? null : await settle(outcome.durable);
    if (failedCommit !== null) return failedCommit;
    return outcome.error === null ? ok(undefined) : { ok: false, error: outcome.error };
  }

  /** The body of runStep, while every other message to the shards is held. */
  private async applyEverywhere(
    entry: PendingAction,
    name: CorporateStepName,
    step: CorporateStep,
    now: number,
    announce: { event: ShardEvent; trade: TradeRecord } | null,
  ): Promise<{ durable: Promise<void> | null; error: EngineError | null }> {
    const { host } = this;
    const id = entry.action.action_id;
    // The new symbol of a rename is interned when the step runs (a restart may have come between its
    // announcement and now), and announced to the shards ahead of the step.
    const unknown = step.step === 'symbol_change' && host.symbols.intern(step.new_symbol) < 0;
    const checks = unknown ? [] : await this.onEveryShard({ kind: 'corporate', mode: 'check', step, price: 0, priceTs: 0, now });
    const lost = checks.find((r) => r.error?.code === ErrorCode.shard_restarting);
    if (lost !== undefined) return { durable: null, error: lost.error };
    const refusal = unknown
      ? { code: ErrorCode.limit_exceeded, message: `new_symbol: symbols must be <= ${host.symbols.symbolsMax}`, field: 'new_symbol' }
      : checks.find((r) => r.error !== null)?.error;
    if (refusal !== undefined && refusal !== null) {
      const error: EngineError = refusal;
      // Not announced yet: the refusal is the answer, nothing is logged. Announced: logged as the
      // action's end; it stays failed, nothing of it applied.
      if (announce !== null) return { durable: null, error };
      const outcome: CorporateOutcome = { status: 'failed', steps: entry.steps, error: { code: error.code, message: error.message } };
      this.pending.delete(id);
      const durable = host.persist([marker(id, name, 0, outcome.error, now)], [{ portfolio_id: corporateOutcomeKey, trade_id: id, result: outcome }]);
      return { durable, error };
    }
    if (name === 'symbol_change') host.announceSymbols();
    const price = host.marks.priceFor(entry.action, name);
    const priceTs = host.marks.priceTsFor(entry.action, name);
    const results = await this.onEveryShard({ kind: 'corporate', mode: 'apply', step, price, priceTs, now });
    const failed = results.find((r) => r.error !== null);
    if (failed !== undefined) {
      // The shards that applied it are ahead of the log: reloaded from it, the step is retried later.
      results.forEach((r, i) => {
        if (r.error === null) host.restartShard(i);
      });
      entry.failedApplies = (entry.failedApplies ?? 0) + 1;
      if (announce === null && entry.failedApplies >= stepApplyAttemptsMax) {
        const error = { code: ErrorCode.shard_restarting, message: `a shard was lost while applying step ${name} ${stepApplyAttemptsMax} times in a row: the action is given up` };
        this.pending.delete(id);
        const outcome: CorporateOutcome = { status: 'failed', steps: entry.steps, error };
        return { durable: host.persist([marker(id, name, 0, error, now)], [{ portfolio_id: corporateOutcomeKey, trade_id: id, result: outcome }]), error };
      }
      return { durable: null, error: { ...(failed.error as EngineError), retryable: true } };
    }
    entry.failedApplies = 0;
    host.marks.commit(entry.action, name);
    let holders = 0;
    for (const r of results) holders += r.holders ?? 0;
    entry.steps.push({ step: name, applied_ts: now, holders });
    const last = nextStep(entry) === null;
    const events: ShardEvent[] = announce === null ? [] : [announce.event];
    for (const r of results) events.push(...r.events);
    if (step.step === 'contract_adjustment') {
      const defined = host.adjustInstrument(step.symbol, step.multiplier, now);
      if (defined !== null) events.push(defined);
    }
    events.push(marker(id, name, holders, null, now));
    const trades: TradeRecord[] = announce === null ? [] : [announce.trade];
    if (last) trades.push({ portfolio_id: corporateOutcomeKey, trade_id: id, result: { status: 'applied', steps: entry.steps, error: null } satisfies CorporateOutcome });
    // One append: every portfolio's events of the step and its marker get consecutive seqs in one commit,
    // before the held traffic can add anything.
    const durable = host.persist(events, trades);
    if (last) this.pending.delete(id);
    else this.pending.set(id, entry);
    for (const r of results) for (const u of r.updates ?? []) host.deliver(u);
    return { durable, error: null };
  }

  private onEveryShard(body: Extract<Parameters<ShardHandle['submitNow']>[0], { kind: 'corporate' }>): Promise<CommandResult[]> {
    return Promise.all(this.host.shards.map((h) => h.submitNow(body)));
  }
}

function marker(actionId: string, step: CorporateStepName, holders: number, error: CorporateOutcome['error'], ts: number): ShardEvent {
  return { type: 'CorporateActionApplied', action_id: actionId, step, holders, error, portfolio_id: corporatePortfolio, ts };
}

function conflict(id: string): { ok: false; error: EngineError } {
  return fail(ErrorCode.invalid_field, `action_id: '${id}' was already used for a different corporate action`, 'action_id');
}

async function settle(durable: Promise<void>): Promise<{ ok: false; error: EngineError } | null> {
  const err = await durable.then(
    () => null,
    (e: unknown) => e,
  );
  return err === null ? null : fail(ErrorCode.store_failed, `store commit failed: ${String(err)}`);
}
