// Messages between the main thread (src/market/service.ts) and the market worker (worker.ts).
// Bars cross packed (pack.ts); the tape crosses as a transferred Float64Array (no copy).

import type { Bar } from './bar.js';
import type { FeedGap } from './barBook.js';
import type { AlertRule, MarketAlert } from './alertRules.js';
import type { MarketCoreOptions, MarketCoreStats } from './core.js';
import type { PackedBars } from './pack.js';
import type { Timeframe } from './timeframe.js';

export type ToMarketWorker =
  | { t: 'init'; options: MarketCoreOptions; open: Bar[]; recent: Bar[]; revisable: Bar[] }
  /** n ticks of the engine's tape; names: engine symbol ids base.. first seen since the last tape. */
  | { t: 'tape'; tape: Float64Array; n: number; base: number; names: string[] }
  | { t: 'check'; now: number }
  | { t: 'rules'; request: number; rules: AlertRule[] }
  | { t: 'watch'; symbol: string; tf: Timeframe; on: boolean }
  | { t: 'open'; request: number; symbol: string; tf: Timeframe }
  | { t: 'checkpoint'; request: number; all: boolean }
  | { t: 'stats'; request: number };

export type FromMarketWorker =
  | { t: 'ready'; refused: number }
  | { t: 'failed'; message: string }
  /** The output of one tape (tape: true, which acknowledges it; buffer: the tape, given back for reuse) or one check. */
  | { t: 'out'; tape: boolean; bars: PackedBars; gaps: FeedGap[]; alerts: MarketAlert[]; buffer?: Float64Array }
  | { t: 'open'; request: number; bar: Bar | null }
  | { t: 'checkpoint'; request: number; bars: PackedBars }
  | { t: 'rules'; request: number; ok: boolean; message: string }
  | { t: 'stats'; request: number; stats: MarketCoreStats };
