// Test harness for market data: a real engine (shard workers from dist/), the market service (its
// worker from dist/, LMDB under <dataDir>/market) and a real server on an ephemeral port, sharing a
// clock the test moves. Restartable on the same data dir.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, type MtmEngine } from '../../src/engine/engine.js';
import { startMarketService, type MarketService, type MarketServiceLimits } from '../../src/market/service.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import type { ServerOptions } from '../../src/server/options.js';
import { ensureBuilt } from './engine.js';

export interface MarketHarness {
  engine: MtmEngine;
  market: MarketService;
  server: RunningServer;
  url: string;
  wsUrl: string;
  dataDir: string;
  clock: { now: number };
  /** Ingests ticks and waits until the market worker has aggregated them and the store has them. */
  ticks(ticks: { symbol: string; price: number; ts: number; size?: number }[]): Promise<void>;
  /** Runs the periodic check (bars whose bucket ended, gaps, silence) at clock.now and waits for its output. */
  check(): Promise<void>;
  /** Stops server, market and engine; the data dir stays (restart) unless remove. */
  stop(remove?: boolean): Promise<void>;
}

export interface MarketHarnessOptions {
  dataDir?: string;
  limits?: Partial<MarketServiceLimits>;
  rules?: unknown;
  alertsFile?: string;
  server?: Partial<ServerOptions>;
  now?: number;
}

export async function startMarketHarness(o: MarketHarnessOptions = {}): Promise<MarketHarness> {
  ensureBuilt();
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'mtm-market-test-'));
  const clock = { now: o.now ?? Date.now() };
  const engine = await createEngine({ workers: 1, dataDir, clock: { now: () => clock.now } });
  // A long check period: tests run the checks themselves (check()), at the clock they set.
  const market = await startMarketService(engine, {
    dataDir,
    rules: o.rules,
    alertsFile: o.alertsFile,
    now: () => clock.now,
    limits: { checkIntervalMs: 3_600_000, openBarsCheckpointIntervalMs: 3_600_000, ...o.limits },
  });
  const server = await startServer(engine, { port: 0, log: null, now: () => clock.now, limits: { commandsPerSecond: 100_000, connectsPerSecond: 100_000 }, ...o.server, market });
  let stopped = false;
  return {
    engine,
    market,
    server,
    url: server.url,
    wsUrl: server.url.replace('http://', 'ws://'),
    dataDir,
    clock,
    async ticks(ticks) {
      const r = engine.ingestTicks(ticks);
      if (r.rejected.length > 0) throw new Error(`ticks rejected: ${JSON.stringify(r.rejected)}`);
      await engine.drain();
      await market.settle();
    },
    async check() {
      await market.checkNow();
    },
    async stop(remove = false) {
      if (stopped) return;
      stopped = true;
      await server.close();
      await market.close();
      await engine.close();
      if (remove) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
