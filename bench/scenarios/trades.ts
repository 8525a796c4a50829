// trades: durable trade acknowledgements over /ws `trade` ops from many connections (closed loop,
// inFlight outstanding per connection), in each durability mode:
//   mtm  'process': acked once committed to the store (survives a process crash; the default);
//        'sync':    the server started with --sync (flushed to disk before the ack);
//   peer 'process': the journal line written with write(2) before the ack;
//        'sync':    write(2) + fdatasync(2) before each ack;
//   limit 'none':   acked at once, no book, no journal: the transport round trip alone.
import { join } from 'node:path';
import { decodeHistogram, round3, summarize, type LatencySummary } from '../loadgen/common.js';
import type { TradersConfig, TradersFinal } from '../loadgen/messages.js';
import { loadgenCoreMax } from './stream.js';
import { portfolioId, type Workload } from '../workload.js';
import { symbolName } from '../../src/sim/random.js';
import type { Progress } from '../report/progress.js';
import { Child, benchScript, makeTempDir, removeTempDir } from './children.js';
import type { Scale } from './config.js';
import { startSystem, type SystemName } from './systems.js';

export type Durability = 'process' | 'sync' | 'none';

export interface TradesResult {
  durability: Durability;
  connections: number;
  inFlight: number;
  seconds: number;
  tradesPerSecond: number;
  ack: LatencySummary;
  errors: number;
  firstError: string;
  serverCpuCores: number;
  loadgenCpuCores: number;
  /** The traders process used more than 0.8 core (stream.ts loadgenCoreMax): the ack rate may be its limit. */
  loadgenBound: boolean;
  loadgenBoundWhy: string;
}

export function tradeModes(name: SystemName): Durability[] {
  return name === 'limit' ? ['none'] : ['process', 'sync'];
}

export async function trades(name: SystemName, durability: Durability, scale: Scale, progress: Progress): Promise<TradesResult> {
  const p = scale.trades;
  const slots = p.connections * p.inFlight;
  // The traded portfolios only (one per slot); the book's size does not change a trade's path.
  const workload: Workload = { ...scale.stream.workload, portfolios: slots };
  const dir = makeTempDir(`mtm-bench-trades-${name}-`);
  try {
    progress.update('starting the server');
    const sys = await startSystem(name, {
      workload,
      dataDir: dir,
      journal: join(dir, 'journal.jsonl'),
      sync: durability === 'sync',
      readyTimeoutMs: scale.serverReadyTimeoutMs,
    });
    try {
      const cfg: TradersConfig = {
        url: sys.url,
        connections: p.connections,
        inFlight: p.inFlight,
        portfolios: Array.from({ length: slots }, (_, i) => portfolioId(i)),
        symbols: Array.from({ length: 20 }, (_, i) => symbolName(i)),
        prefix: `b${Date.now().toString(36)}`,
        readyTimeoutMs: 30_000,
      };
      const traders = new Child('traders', benchScript('loadgen/traders.js'), [JSON.stringify(cfg)]);
      try {
        await traders.next('ready', 40_000);
        const final = traders.next<TradersFinal>('final', p.warmupMs + p.durationMs + 30_000);
        const s0 = await sys.sample();
        traders.send({ type: 'start', warmupMs: p.warmupMs, durationMs: p.durationMs });
        const started = performance.now();
        const timer = setInterval(() => progress.update(`${durability}: ${((performance.now() - started) / 1000).toFixed(1)} s`), 250);
        let f: TradersFinal;
        try {
          f = await final;
        } finally {
          clearInterval(timer);
        }
        const s1 = await sys.sample();
        const h = decodeHistogram(f.hist);
        const ack = summarize(h);
        h.destroy();
        const wall = s0 && s1 ? (s1.t - s0.t) / 1000 : 0;
        const loadgenCpuCores = round3(f.cpuSeconds / ((p.warmupMs + p.durationMs) / 1000));
        return {
          durability,
          connections: p.connections,
          inFlight: p.inFlight,
          seconds: f.seconds,
          tradesPerSecond: Math.round(f.acked / f.seconds),
          ack,
          errors: f.errors,
          firstError: f.firstError,
          serverCpuCores: s0 && s1 && wall > 0 ? round3((s1.cpuSeconds - s0.cpuSeconds) / wall) : 0,
          loadgenCpuCores,
          loadgenBound: loadgenCpuCores > loadgenCoreMax,
          loadgenBoundWhy: loadgenCpuCores > loadgenCoreMax ? `traders process at ${loadgenCpuCores} cores` : '',
        };
      } finally {
        await traders.stop(3_000);
      }
    } finally {
      await sys.stop();
    }
  } finally {
    removeTempDir(dir);
  }
}
