// Messages between the main thread (src/market/service.ts) and the market worker (worker.ts).
// Ticks do not travel as messages: they go through the shared tick ring (ring.ts). Bars cross packed
// (pack.ts), their buffer transferred.

import type { Bar } from './bar.js';
import type { FeedGap } from './barBook.js';
import type { AlertRule, MarketAlert } from './alertRules.js';
import type { MarketCoreOptions, MarketCoreStats } from './core.js';
import type { PackedBars } from './pack.js';
import type { TickRingBuffers } from './ring.js';
import type { Timeframe } from './timeframe.js';

export type ToMarketWorker =
  /** names: the shared SymbolNameTable of the engine's symbol ids (written before their ticks). */
  | { t: 'init'; options: MarketCoreOptions; ring: TickRingBuffers; names: SharedArrayBuffer; pollMs: number; open: Bar[]; recent: Bar[]; revisable: Bar[] }
  | { t: 'check'; now: number }
  | { t: 'rules'; request: number; rules: AlertRule[] }
  | { t: 'watch'; symbol: string; tf: Timeframe; on: boolean }
  | { t: 'open'; request: number; symbol: string; tf: Timeframe }
  | { t: 'checkpoint'; request: number; all: boolean }
  | { t: 'stats'; request: number };

export type FromMarketWorker =
  | { t: 'ready'; refused: number }
  | { t: 'failed'; message: string }
  /** What a chunk of ticks or a check produced (sent only when it produced something). */
  | { t: 'out'; bars: PackedBars; gaps: FeedGap[]; alerts: MarketAlert[] }
  | { t: 'open'; request: number; bar: Bar | null }
  | { t: 'checkpoint'; request: number; bars: PackedBars }
  | { t: 'rules'; request: number; ok: boolean; message: string }
  | { t: 'stats'; request: number; stats: MarketCoreStats };
