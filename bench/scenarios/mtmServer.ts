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
import { startShardThreads } from '../../src/engine/shards/threads.js';
import type { Workload } from '../workload.js';
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
  // The shard threads boot while this thread loads the engine and the server (as mtm serve does).
  const shardThreads = startShardThreads({ workers: cfg.workers });
  const steps = [{ step: 'shard threads started', at_ms: performance.now() }];
  const [{ createEngine }, { startServer }, { loadWorkload }] = await Promise.all([import('../../src/engine/engine.js'), import('../../src/server/index.js'), import('../workload.js')]);
  const t0 = performance.now();
  steps.push({ step: 'modules loaded', at_ms: t0 });
  let threads: typeof shardThreads | undefined = shardThreads;
  // The first engine takes the started threads; a reopen (sync, below) starts its own.
  const engineOptions = () => {
    const o = { dataDir: cfg.dataDir, kernel: cfg.kernel, workers: cfg.workers, shardThreads: threads };
    threads = undefined;
    return o;
  };
  // Loading 250,000 synced trades would measure the disk, not the setup: load without sync, then
  // reopen with sync so that the measured trades run in the requested mode.
  let engine = await createEngine({ ...engineOptions(), sync: cfg.sync && cfg.workload === null });
  const recoverMs = cfg.recover ? performance.now() - t0 : 0;
  let loadMs = 0;
  if (cfg.workload !== null) {
    const t1 = performance.now();
    await loadWorkload(engine, cfg.workload);
    await engine.drain();
    if (cfg.sync) {
      await engine.close();
      engine = await createEngine({ ...engineOptions(), sync: true });
    }
    loadMs = performance.now() - t1;
  }
  const server = await startServer(engine, { port: 0, host: '127.0.0.1', log: null, limits: benchLimits });
  const live = engine;
  steps.push(...engine.progress.marks, { step: 'server listening', at_ms: performance.now() });
  return {
    port: server.port,
    steps,
    loadMs,
    recoverMs,
    info: { system: 'mtm', transport: `uWebSockets.js (${server.uwsBinary})`, kernel: live.kernel, workers: live.workers, sync: cfg.sync, portfolios: live.stats().portfolios,
      // The shard workers' own time in the start's steps (ms of their threads, summed over shards).
      workerLoadMs: Math.round(engine.progress.shardWork.reduce((n, w) => n + w.load_ms, 0)),
      workerReplayMs: Math.round(engine.progress.shardWork.reduce((n, w) => n + w.replay_ms, 0)),
      workerFinishMs: Math.round(engine.progress.shardWork.reduce((n, w) => n + w.finish_ms, 0)),
      eventsReplayed: engine.progress.eventsReplayed,
    },
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
