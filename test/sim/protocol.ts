// Messages between the simulator (parent process) and the engine host (bench/sim/host.ts, a child
// process). The engine runs in a child so that the simulator can kill -9 it and restart it on the same
// data dir. IPC uses Node's 'advanced' serialization (structured clone), so NaN, Infinity, undefined
// and other garbage reach the engine API exactly as the simulator wrote them.

import type { EngineLimits, EngineMessage, PortfolioSummary } from '../../src/engine/api.js';
import type { StoredEvent } from '../../src/domain/types.js';

/** One call of a public engine method, with raw (possibly malformed) arguments. */
export interface EngineCall {
  method: EngineMethod;
  args: unknown[];
}

export const engineMethods = [
  'createPortfolio',
  'closePortfolio',
  'trade',
  'cash',
  'pause',
  'resume',
  'setLimits',
  'snapshot',
  'snapshotAt',
  'ingestTick',
  'ingestTicks',
  'queryEvents',
  'crashShard',
] as const;
export type EngineMethod = (typeof engineMethods)[number];

export interface StartOptions {
  dataDir: string;
  workers: number;
  limits: Partial<EngineLimits>;
  shardHeapMb: number;
  snapshotIntervalMs: number;
  /** Seed of the engine's own Random (ids of portfolios created without one). */
  randomSeed: number;
}

/** A call's outcome: what the method returned (awaited), or what it threw (an invariant violation). */
export type CallOutcome = { returned: unknown } | { threw: string };

export interface Observation {
  snapshots: Record<string, unknown>;
  list: PortfolioSummary[];
  symbols: number;
  shardRestarts: number;
  shards: { shard: number; state: string; queueDepth: number; restarts: number }[];
  store: { pendingWrites: number; pendingWritesMax: number; lastSeq: number; failed: boolean };
}

export type HostRequest =
  | { op: 'start'; options: StartOptions }
  | { op: 'call'; call: EngineCall }
  /** All calls started in the same turn (so they share command batches), answered in order. */
  | { op: 'burst'; calls: EngineCall[] }
  /** Tick calls run synchronously in one turn (one coalesced batch), then drain(). */
  | { op: 'ticks'; calls: EngineCall[] }
  | { op: 'observe'; ids: string[] }
  | { op: 'subscribe'; sub: number; portfolio: unknown; blockMs: number }
  | { op: 'unsubscribe'; sub: number }
  /** crashShard, then the calls at once (they race the restart), then wait for the recovery. */
  /** `lateCalls` start once the new worker is starting (the window between its birth and its recovery). */
  | { op: 'crash'; shard: number; how: 'throw' | 'exit' | 'heap'; calls: EngineCall[]; lateCalls: EngineCall[]; recoveryTimeoutMs: number }
  /** Calls with at most `window` in flight; each outcome is reported as it arrives (kill -9 target). */
  | { op: 'stream'; calls: EngineCall[]; window: number }
  | { op: 'snapshotAll' }
  | { op: 'drain' }
  | { op: 'events'; pageMax: number }
  | { op: 'close' };

export type HostRequestEnvelope = HostRequest & { id: number; now: number };

export type HostMessage =
  | { kind: 'reply'; id: number; value: unknown }
  | { kind: 'failed'; id: number; message: string }
  | { kind: 'sub'; sub: number; message: EngineMessage }
  | { kind: 'streamed'; id: number; index: number; outcome: CallOutcome }
  | { kind: 'fatal'; message: string };

export interface CrashReply {
  crash: CallOutcome;
  outcomes: CallOutcome[];
  lateOutcomes: CallOutcome[];
  /** Whether the late calls did start while the shard was 'starting' (else right after). */
  lateInWindow: boolean;
  recovered: boolean;
  waitedMs: number;
}

export interface BurstReply {
  outcomes: CallOutcome[];
  /** Largest shard queue depth seen while the burst was in flight. */
  queueDepthMax: number;
}

export interface TicksReply {
  outcomes: CallOutcome[];
  symbolsBefore: number;
  symbolsAfter: number;
}

export interface EventsReply {
  events: StoredEvent[];
}
