// Engine defaults: every limit has a name with its unit last and a safe default.
import { availableParallelism } from 'node:os';
import { ErrorCode, type EngineError } from '../errors.js';
import type { EngineLimits, EngineOptions } from './api.js';
import { fxPivotDefault, validPivot } from '../domain/fx.js';
import { instrumentsMaxDefault } from '../domain/types.js';
import { unwatchedRevalueIntervalMsDefault, unwatchedRowsPerSliceMaxDefault } from '../shard/protocol.js';

/** The kernel takes a slice's bound as an i32. */
const sliceRowsMax = 0x7fffffff;

export const defaultLimits: EngineLimits = {
  portfoliosMax: 200_000,
  positionsPerPortfolioMax: 1_000,
  symbolsMax: 100_000,
  commandsQueuedPerShardMax: 50_000,
  commandsPerMessageMax: 32,
  ticksPerCallMax: 100_000,
  subscribersPerPortfolioMax: 10_000,
  tradeIdsRememberedMax: 200_000,
  corporateActionsPendingMax: 1_000,
  instrumentsMax: instrumentsMaxDefault,
  batchesInFlightMax: 2,
};

/**
 * Events after the last columnar generation that start a snapshot round: a supervised shard restart
 * replays at most about this many (plus what is logged while the round runs); 100,000 trades replay
 * in ~0.1 s of a shard's time here (docs/BENCHMARKS.md "Restart, sixth session (crash)").
 */
export const snapshotTailEventsMaxDefault = 100_000;

export interface ResolvedOptions {
  workers: number;
  kernel: 'wasm' | 'js';
  coalesceWindowMs: number;
  dataDir: string | undefined;
  sync: boolean;
  snapshotIntervalMs: number;
  snapshotTailEventsMax: number;
  retainEventsMs: number | null;
  pricesFlushIntervalMs: number;
  corporateActionsCheckMs: number;
  shardHeapMb: number;
  unwatchedRevalueIntervalMs: number;
  unwatchedRowsPerSliceMax: number;
  allowFaultInjection: boolean;
  staleAfterMs: number;
  suspectMovePct: number;
  /** Cross FX rates go through this currency (src/domain/fx.ts). */
  fxPivot: string;
  limits: EngineLimits;
}

export const staleAfterMsDefault = 60_000;
export const suspectMovePctDefault = 50;

/** The mark options are refused, not clamped: a silently changed staleness or suspect bound would mislead. */
export function markOptionsError(o: EngineOptions): EngineError | null {
  const stale = o.staleAfterMs;
  if (stale !== undefined && !(Number.isSafeInteger(stale) && stale >= 0)) {
    return { code: ErrorCode.invalid_field, message: 'staleAfterMs must be a whole number of milliseconds >= 0', field: 'staleAfterMs' };
  }
  if (o.fxPivot !== undefined && !validPivot(o.fxPivot)) {
    return { code: ErrorCode.invalid_currency, message: 'fxPivot must be three capital letters (ISO 4217)', field: 'fxPivot' };
  }
  const pct = o.suspectMovePct;
  if (pct !== undefined && !(typeof pct === 'number' && Number.isFinite(pct) && pct >= 0)) {
    return { code: ErrorCode.invalid_field, message: 'suspectMovePct must be a finite number >= 0 (0 disables the suspect filter)', field: 'suspectMovePct' };
  }
  const perMessage = o.limits?.commandsPerMessageMax;
  if (perMessage !== undefined && !(Number.isSafeInteger(perMessage) && perMessage >= 1)) {
    return { code: ErrorCode.invalid_field, message: 'limits.commandsPerMessageMax must be a whole number of commands >= 1', field: 'commandsPerMessageMax' };
  }
  return null;
}

export function defaultWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

export function resolveOptions(o: EngineOptions): ResolvedOptions {
  return {
    workers: Math.max(1, Math.floor(o.workers ?? defaultWorkers())),
    kernel: o.kernel ?? 'wasm',
    coalesceWindowMs: Math.max(0, o.coalesceWindowMs ?? 0),
    dataDir: o.dataDir,
    sync: o.sync ?? false,
    snapshotIntervalMs: o.snapshotIntervalMs ?? 30_000,
    snapshotTailEventsMax: Math.max(1, Math.floor(o.snapshotTailEventsMax ?? snapshotTailEventsMaxDefault)),
    retainEventsMs: o.retainEventsMs ?? null,
    pricesFlushIntervalMs: Math.max(1, o.pricesFlushIntervalMs ?? 1_000),
    corporateActionsCheckMs: Math.max(1, o.corporateActionsCheckMs ?? 1_000),
    shardHeapMb: o.shardHeapMb ?? 4_096,
    unwatchedRevalueIntervalMs: Math.max(0, o.unwatchedRevalueIntervalMs ?? unwatchedRevalueIntervalMsDefault),
    unwatchedRowsPerSliceMax: Math.min(sliceRowsMax, Math.max(1, Math.floor(o.unwatchedRowsPerSliceMax ?? unwatchedRowsPerSliceMaxDefault))),
    allowFaultInjection: o.allowFaultInjection ?? false,
    staleAfterMs: o.staleAfterMs ?? staleAfterMsDefault,
    suspectMovePct: o.suspectMovePct ?? suspectMovePctDefault,
    fxPivot: o.fxPivot ?? fxPivotDefault,
    limits: { ...defaultLimits, ...o.limits },
  };
}
