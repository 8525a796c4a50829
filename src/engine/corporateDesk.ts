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
  globalScope,
  nextStep,
  pendingByScope,
  scopedOutcomeKey,
  scopedRecordKey,
  stepOf,
  stepsOf,
  viewOf,
  type CorporateActionView,
  type CorporateOutcome,
  type CorporateRecord,
  type PendingAction,
  type StepDone,
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

/**
 * Cluster mode: the portfolios an action applies to (a partition's), named by an opaque string the
 * engine only keys its records with. The engine knows nothing of partitions or NATS.
 */
export interface CorporateScope {
  readonly name: string;
  readonly keep: (portfolioId: string) => boolean;
}

/** A scoped step due now: the cluster publishes it on its partition's stream, then applies it from there. */
export interface DueStep {
  action_id: string;
  step: CorporateStepName;
}

/** Where a step's action lives: the global pending set (every portfolio) or one scope's. */
interface Where {
  readonly pending: Map<string, PendingAction>;
  readonly scope: CorporateScope | null;
}

/** One scoped action as a shipped snapshot carries it (carryOf / restoreIn). outcome null: still pending. */
export interface CarriedAction {
  record: CorporateRecord;
  steps: StepDone[];
  outcome: CorporateOutcome | null;
}

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
  /** The portfolios `keep` accepts, per shard index (a scoped step goes to these only). */
  portfoliosByShard(keep: (id: string) => boolean): string[][];
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
  /** Cluster mode: per scope (partition), its pending actions. Bounded by the scopes x pendingMax. */
  private scoped = new Map<string, Map<string, PendingAction>>();
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
    const all = pendingByScope(this.host.store.eventsForPortfolio(corporatePortfolio, 0, Infinity), (action, step) => this.host.marks.commit(action, step));
    this.pending = all.get(globalScope) ?? new Map();
    all.delete(globalScope);
    this.scoped = all;
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
  private async runStep(entry: PendingAction, announce: { event: ShardEvent; trade: TradeRecord } | null, where: Where = { pending: this.pending, scope: null }): Promise<Result<void>> {
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
      outcome = await this.applyEverywhere(entry, name, step, now, announce, where);
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
    where: Where,
  ): Promise<{ durable: Promise<void> | null; error: EngineError | null }> {
    const { host } = this;
    const id = entry.action.action_id;
    const scope = where.scope?.name;
    const outcomeKey = scopedOutcomeKey(scope ?? globalScope);
    const only = where.scope === null ? null : host.portfoliosByShard(where.scope.keep);
    // The new symbol of a rename is interned when the step runs (a restart may have come between its
    // announcement and now), and announced to the shards ahead of the step.
    const unknown = step.step === 'symbol_change' && host.symbols.intern(step.new_symbol) < 0;
    const checks = unknown ? [] : await this.onEveryShard({ kind: 'corporate', mode: 'check', step, price: 0, priceTs: 0, now }, only);
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
      where.pending.delete(id);
      const durable = host.persist([marker(id, name, 0, outcome.error, now, scope)], [{ portfolio_id: outcomeKey, trade_id: id, result: outcome }]);
      return { durable, error };
    }
    if (name === 'symbol_change') host.announceSymbols();
    const price = host.marks.priceFor(entry.action, name);
    const priceTs = host.marks.priceTsFor(entry.action, name);
    const results = await this.onEveryShard({ kind: 'corporate', mode: 'apply', step, price, priceTs, now }, only);
    const failed = results.find((r) => r.error !== null);
    if (failed !== undefined) {
      // The shards that applied it are ahead of the log: reloaded from it, the step is retried later.
      results.forEach((r, i) => {
        if (r.error === null) host.restartShard(i);
      });
      entry.failedApplies = (entry.failedApplies ?? 0) + 1;
      if (announce === null && entry.failedApplies >= stepApplyAttemptsMax) {
        const error = { code: ErrorCode.shard_restarting, message: `a shard was lost while applying step ${name} ${stepApplyAttemptsMax} times in a row: the action is given up` };
        where.pending.delete(id);
        const outcome: CorporateOutcome = { status: 'failed', steps: entry.steps, error };
        return { durable: host.persist([marker(id, name, 0, error, now, scope)], [{ portfolio_id: outcomeKey, trade_id: id, result: outcome }]), error };
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
    events.push(marker(id, name, holders, null, now, scope));
    const trades: TradeRecord[] = announce === null ? [] : [announce.trade];
    if (last) trades.push({ portfolio_id: outcomeKey, trade_id: id, result: { status: 'applied', steps: entry.steps, error: null } satisfies CorporateOutcome });
    // One append: every portfolio's events of the step and its marker get consecutive seqs in one commit,
    // before the held traffic can add anything.
    const durable = host.persist(events, trades);
    if (last) where.pending.delete(id);
    else where.pending.set(id, entry);
    for (const r of results) for (const u of r.updates ?? []) host.deliver(u);
    return { durable, error: null };
  }

  /** only: per shard, the portfolios a scoped step may change (null: every portfolio). */
  private onEveryShard(body: Extract<Parameters<ShardHandle['submitNow']>[0], { kind: 'corporate' }>, only: string[][] | null): Promise<CommandResult[]> {
    return Promise.all(this.host.shards.map((h, i) => h.submitNow(only === null ? body : { ...body, portfolios: only[i] ?? [] })));
  }

  // ---- cluster mode: one scope (a partition's portfolios) at a time -----------------------------

  /**
   * An action announced to one scope, at its point of the scope's command stream (cluster mode,
   * docs/CLUSTER.md). body: {input, announced_ts}, from the stream (validated here as for a local
   * call); the times resolve against announced_ts, so every owner replaying the stream resolves the
   * same action. Nothing is applied here: every step comes as its own stream message (applyStepIn).
   * The same action again is answered created: false; another body under the same id is refused.
   */
  async announceIn(scope: CorporateScope, body: unknown): Promise<Result<CorporateAnswer>> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as { input?: unknown; announced_ts?: unknown };
    const announcedTs = b.announced_ts;
    if (typeof announcedTs !== 'number' || !Number.isSafeInteger(announcedTs) || announcedTs < 0) {
      return fail(ErrorCode.invalid_timestamp, 'announced_ts must be a whole number of epoch ms >= 0', 'announced_ts');
    }
    const v = validateCorporateInput(b.input);
    if (!v.ok) return v;
    if (v.value.type === 'contract_adjustment') return fail(ErrorCode.cluster_unsupported, 'type: a contract_adjustment changes the node-wide multiplier table and is not applied per scope', 'type');
    const id = v.value.action_id;
    const canonical = canonicalCorporateInput(v.value);
    const where = this.whereOf(scope);
    const key = scopedRecordKey(scope.name);
    const known = where.pending.get(id);
    const stored = known === undefined ? (this.host.store.tradeResult(key, id) as CorporateRecord | undefined) : undefined;
    if (known !== undefined || stored !== undefined) {
      const record = stored ?? (this.host.store.tradeResult(key, id) as CorporateRecord | undefined);
      if (record !== undefined && record.input !== canonical) return conflict(id);
      const action = known?.action ?? (record as CorporateRecord).action;
      return ok({ created: false, action: viewOf(action, known?.announced_ts ?? (record as CorporateRecord).announced_ts, 'pending', known?.steps ?? [], null) });
    }
    const resolved = resolveCorporateAction(v.value, announcedTs);
    if (!resolved.ok) return resolved;
    // Not retryable: the same stream gives the same count on every replay, so the refusal is the same.
    if (where.pending.size >= this.o.pendingMax) return fail(ErrorCode.limit_exceeded, `action_id: corporate actions pending must be <= ${this.o.pendingMax}`, 'action_id');
    const action = resolved.value;
    if (action.type === 'symbol_change' && this.host.symbols.intern(action.new_symbol) < 0) {
      return fail(ErrorCode.limit_exceeded, `new_symbol: symbols must be <= ${this.host.symbols.symbolsMax}`, 'new_symbol');
    }
    const record: CorporateRecord = { input: canonical, action, announced_ts: announcedTs };
    const entry: PendingAction = { action, announced_ts: announcedTs, steps: [] };
    where.pending.set(id, entry);
    const announced: ShardEvent = { type: 'CorporateActionAnnounced', action, portfolio_id: corporatePortfolio, ts: announcedTs, scope: scope.name };
    const failed = await settle(this.host.persist([announced], [{ portfolio_id: key, trade_id: id, result: record }]));
    if (failed !== null) return failed;
    return ok({ created: true, action: viewOf(action, announcedTs, 'pending', [], null) });
  }

  /**
   * One step of a scoped action, at its point of the scope's command stream: applied to the scope's
   * portfolios when it is the action's next step; otherwise (done already, a resent step, an action
   * this scope never announced or that failed) nothing happens: applied false.
   */
  async applyStepIn(scope: CorporateScope, body: unknown): Promise<Result<{ applied: boolean }>> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as { action_id?: unknown; step?: unknown };
    if (typeof b.action_id !== 'string') return fail(ErrorCode.invalid_field, 'action_id must be a string', 'action_id');
    if (typeof b.step !== 'string') return fail(ErrorCode.invalid_field, 'step must be a step name', 'step');
    const where = this.whereOf(scope);
    const entry = where.pending.get(b.action_id);
    if (entry === undefined || nextStep(entry) !== b.step) return ok({ applied: false });
    let r: Result<void> = ok(undefined);
    await this.enqueue(async () => {
      // Read again inside: the scope's consumer applies one message at a time, but a check round may not.
      if (where.pending.get(entry.action.action_id) === entry && nextStep(entry) === b.step) r = await this.runStep(entry, null, where);
    });
    return r.ok ? ok({ applied: true }) : r;
  }

  /** The scope's steps whose time (by the engine's clock) has come, in due order. */
  dueIn(scopeName: string): DueStep[] {
    const pending = this.scoped.get(scopeName);
    if (pending === undefined) return [];
    const now = this.host.clock.now();
    const due: { s: DueStep; at: number }[] = [];
    for (const p of pending.values()) {
      const step = nextStep(p);
      if (step !== null && dueAt(p.action, step) <= now) due.push({ s: { action_id: p.action.action_id, step }, at: dueAt(p.action, step) });
    }
    return due.sort((a, b) => a.at - b.at).map((d) => d.s);
  }

  /**
   * An action as the given scopes know it: applied when every one of them applied its every step,
   * failed when one failed, else pending (steps: those every scope has done). null: none knows it.
   */
  viewIn(actionId: string, scopeNames: readonly string[]): CorporateActionView | null {
    let action: CorporateActionView | null = null;
    let status: CorporateActionView['status'] = 'applied';
    let steps: StepDone[] | null = null;
    let error: CorporateOutcome['error'] = null;
    for (const name of scopeNames) {
      const p = this.scoped.get(name)?.get(actionId);
      const record = p === undefined ? (this.host.store.tradeResult(scopedRecordKey(name), actionId) as CorporateRecord | undefined) : undefined;
      if (p === undefined && record === undefined) continue;
      const outcome = p === undefined ? (this.host.store.tradeResult(scopedOutcomeKey(name), actionId) as CorporateOutcome | undefined) : undefined;
      const done = p?.steps ?? outcome?.steps ?? [];
      action ??= viewOf(p?.action ?? (record as CorporateRecord).action, p?.announced_ts ?? (record as CorporateRecord).announced_ts, 'pending', [], null);
      if (outcome?.status === 'failed') {
        status = 'failed';
        error = outcome.error;
      } else if (status !== 'failed' && (p !== undefined || outcome === undefined)) status = 'pending';
      if (steps === null || done.length < steps.length) steps = done;
    }
    if (action === null) return null;
    return { ...action, status, steps: (steps ?? []).map((s) => ({ ...s })), error };
  }

  /**
   * Everything the scope knows of its actions (cluster mode: shipped with a partition's snapshot, whose
   * stream below is purged): each action announced there, its record, the steps applied, and its outcome
   * once done. Read between two applies of the scope's stream, so it is the state at the snapshot's point.
   */
  carryOf(scopeName: string): CarriedAction[] {
    const pending = this.scoped.get(scopeName);
    const seen = new Set<string>();
    const out: CarriedAction[] = [];
    for (const e of this.host.store.eventsForPortfolio(corporatePortfolio, 0, Infinity)) {
      if (e.type !== 'CorporateActionAnnounced' || e.scope !== scopeName || seen.has(e.action.action_id)) continue;
      const id = e.action.action_id;
      seen.add(id);
      const record = this.host.store.tradeResult(scopedRecordKey(scopeName), id) as CorporateRecord | undefined;
      if (record === undefined) continue;
      const p = pending?.get(id);
      const outcome = p === undefined ? ((this.host.store.tradeResult(scopedOutcomeKey(scopeName), id) as CorporateOutcome | undefined) ?? null) : null;
      out.push({ record, steps: (p?.steps ?? outcome?.steps ?? []).map((d) => ({ ...d })), outcome });
    }
    return out;
  }

  /**
   * Replaces the scope's actions by carried ones (a take-over from a shipped snapshot): logged as the
   * scope's announcements and step markers (so a restart's pendingByScope rebuilds the same pending set)
   * with their records and outcomes in the idempotency table, in one commit; the main thread's side of
   * each step done is committed as recovery does (a split's mark). Answers the actions still pending.
   */
  async restoreIn(scope: CorporateScope, carried: readonly CarriedAction[]): Promise<Result<number>> {
    const events: ShardEvent[] = [];
    const trades: TradeRecord[] = [];
    const pending = new Map<string, PendingAction>();
    for (const c of carried) {
      const { action, announced_ts } = c.record;
      const id = action.action_id;
      events.push({ type: 'CorporateActionAnnounced', action, portfolio_id: corporatePortfolio, ts: announced_ts, scope: scope.name });
      trades.push({ portfolio_id: scopedRecordKey(scope.name), trade_id: id, result: c.record });
      for (const d of c.steps) events.push(marker(id, d.step, d.holders, null, d.applied_ts, scope.name));
      if (c.outcome !== null) {
        if (c.outcome.status === 'failed') events.push(marker(id, stepsOf(action)[c.steps.length] ?? stepsOf(action)[0], 0, c.outcome.error, announced_ts, scope.name));
        trades.push({ portfolio_id: scopedOutcomeKey(scope.name), trade_id: id, result: c.outcome });
      } else pending.set(id, { action, announced_ts, steps: c.steps.map((d) => ({ ...d })) });
    }
    const failed = events.length === 0 ? null : await settle(this.host.persist(events, trades));
    if (failed !== null) return failed;
    for (const c of carried) for (const d of c.steps) this.host.marks.commit(c.record.action, d.step);
    this.scoped.set(scope.name, pending);
    return ok(pending.size);
  }

  private whereOf(scope: CorporateScope): Where {
    let pending = this.scoped.get(scope.name);
    if (pending === undefined) this.scoped.set(scope.name, (pending = new Map()));
    return { pending, scope };
  }
}

function marker(actionId: string, step: CorporateStepName, holders: number, error: CorporateOutcome['error'], ts: number, scope?: string): ShardEvent {
  const e: ShardEvent = { type: 'CorporateActionApplied', action_id: actionId, step, holders, error, portfolio_id: corporatePortfolio, ts };
  return scope === undefined ? e : { ...e, scope };
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
