// Plain-number counters the engine bumps on its paths; the metrics layer reads them at scrape time
// (prom-client collect callbacks), so instrumentation costs an increment, not a label lookup, per tick.

export type LatencyObserver = (seconds: number) => void;

/** Codes where the engine, not the client, failed: counted as result "error"; every other failure is "rejected". */
const engineFailures: ReadonlySet<string> = new Set(['store_failed', 'shard_restarting', 'engine_closed']);

export function failureResult(code: string): 'rejected' | 'error' {
  return engineFailures.has(code) ? 'error' : 'rejected';
}

export class EngineCounters {
  ticksReceived = 0;
  ticksRejected = 0;
  ticksStale = 0;
  readonly ticksRejectedByReason = new Map<string, number>();
  batches = 0;
  batchTicks = 0;
  positionsRevalued = 0;
  portfoliosRevalued = 0;
  updatesEmitted = 0;
  shardRestarts = 0;
  lastRestartMs = 0;
  /** Snapshot rounds that wrote a generation, and the last one's figures (upkeep.ts). */
  snapshotRounds = 0;
  lastSnapshotRoundMs = 0;
  lastSnapshotRoundBytes = 0;
  lastSnapshotRoundRecords = 0;
  lastTickTsMs = 0;
  /** Ticks held as suspect (a first hold or a replacement); mtm_ticks_suspect_total{outcome="held"}. */
  ticksHeld = 0;
  /** Held ticks settled, by outcome (by the next tick or an admin). */
  readonly suspectSettled = { confirmed: 0, rejected: 0 };
  readonly openPositionsByShard: number[] = [];
  readonly riskBreaches = new Map<string, number>();
  readonly commands = new Map<string, number>();
  readonly trades = new Map<string, number>();
  /** Hooks set by the metrics layer; null costs nothing. */
  onLatency: LatencyObserver | null = null;
  onBatch: ((ticks: number) => void) | null = null;
  onTradeAck: LatencyObserver | null = null;

  rejectTick(code: string): void {
    this.ticksRejected++;
    this.ticksRejectedByReason.set(code, (this.ticksRejectedByReason.get(code) ?? 0) + 1);
  }

  observeLatency(ms: number, ts: Float64Array): void {
    for (let i = 0; i < ts.length; i++) if (ts[i] > this.lastTickTsMs) this.lastTickTsMs = ts[i];
    this.onLatency?.(ms / 1000);
    this.onBatch?.(ts.length);
  }

  setOpenPositions(shard: number, n: number): void {
    this.openPositionsByShard[shard] = n;
  }

  riskBreach(limit: string): void {
    this.riskBreaches.set(limit, (this.riskBreaches.get(limit) ?? 0) + 1);
  }

  command(kind: string, result: string, _ms: number): void {
    const key = kind + '|' + result;
    this.commands.set(key, (this.commands.get(key) ?? 0) + 1);
  }

  trade(result: string, ms: number): void {
    this.trades.set(result, (this.trades.get(result) ?? 0) + 1);
    this.command('trade', result === 'duplicate' ? 'ok' : result, ms);
    // Only acknowledged trades (booked or an idempotent replay) have an ack latency.
    if (result === 'ok' || result === 'duplicate') this.onTradeAck?.(ms / 1000);
  }
}
