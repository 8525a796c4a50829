// The mtm system under test: the real engine (createEngine) and the real server (startServer) in one
// process, loaded with the workload through the engine API (bench/workload.ts loadWorkload: durable
// commits, as over REST, without the HTTP round trips). Prints its port as a JSON line.
//
// Server limits differ from the defaults in two places only, both per-client rate limits that exist
// to protect a public server and would otherwise refuse the load generator, not measure anything:
// connectsPerSecond (1,000 connections come from one address) and commandsPerSecond (traders send
// thousands of trades per second per connection). Everything else (payload size, backpressure bounds,
// conflation, slow-consumer policy) is the default.
//
// Start: node dist/bench/scenarios/mtmServer.js '{"dataDir":"/tmp/x","workload":{...}}'
import { performance } from 'node:perf_hooks';
import { createEngine } from '../../src/engine/engine.js';
import { startServer } from '../../src/server/index.js';
import { loadWorkload, type Workload } from '../workload.js';
import { runBenchServer, serverConfig } from './serverHarness.js';

interface MtmConfig {
  dataDir: string;
  /** Loaded at start; null when the data dir already holds the state (restart). */
  workload: Workload | null;
  /** The engine's --sync: flush to disk before acknowledging. */
  sync: boolean;
  kernel?: 'wasm' | 'js';
  workers?: number;
  /** The data dir holds state: the createEngine time is the recovery time. */
  recover: boolean;
}

const cfg = serverConfig<MtmConfig>({ dataDir: '', workload: null, sync: false, recover: false });
const benchLimits = { connectsPerSecond: 1_000_000, commandsPerSecond: 1_000_000 };

runBenchServer(async () => {
  if (cfg.dataDir === '') throw new Error('mtmServer needs a dataDir');
  const engineOptions = { dataDir: cfg.dataDir, kernel: cfg.kernel, workers: cfg.workers };
  const t0 = performance.now();
  // Loading 250,000 synced trades would measure the disk, not the setup: load without sync, then
  // reopen with sync so that the measured trades run in the requested mode.
  let engine = await createEngine({ ...engineOptions, sync: cfg.sync && cfg.workload === null });
  const recoverMs = cfg.recover ? performance.now() - t0 : 0;
  let loadMs = 0;
  if (cfg.workload !== null) {
    const t1 = performance.now();
    await loadWorkload(engine, cfg.workload);
    await engine.drain();
    if (cfg.sync) {
      await engine.close();
      engine = await createEngine({ ...engineOptions, sync: true });
    }
    loadMs = performance.now() - t1;
  }
  const server = await startServer(engine, { port: 0, host: '127.0.0.1', log: null, limits: benchLimits });
  const live = engine;
  return {
    port: server.port,
    loadMs,
    recoverMs,
    info: { system: 'mtm', transport: `uWebSockets.js (${server.uwsBinary})`, kernel: live.kernel, workers: live.workers, sync: cfg.sync, portfolios: live.listPortfolios().length },
    counters: () => {
      const s = server.stats();
      const e = live.stats();
      return {
        ticksAccepted: s.feedTicksAccepted,
        ticksRejected: s.feedTicksRejected,
        engineTicksReceived: e.ticksReceived,
        engineBatches: e.batches,
        enginePortfoliosRevalued: e.portfoliosRevalued,
        engineUpdatesEmitted: e.updatesEmitted,
        engineLatencyP99Ms: e.latencyP99Ms,
        updatesSerialized: s.updatesSerialized,
        updatesSent: s.updatesSent,
        updatesConflated: s.updatesConflated,
        snapshotsSent: s.snapshotsSent,
        backpressureEvents: s.backpressureEvents,
        slowConsumerDisconnects: s.slowConsumerDisconnects,
        bytesSent: s.bytesSent,
        tradesAcked: s.tradesAcked,
        rateLimited: s.rateLimited,
        connections: s.connections.main + s.connections.feed,
        shardRestarts: e.shardRestarts,
      };
    },
    stop: async () => {
      await server.close();
      await live.close();
    },
  };
});
