// The shard threads: the piscina pool every shard (and the booted standby) runs on. A module of its
// own, light to import (piscina and the engine's option defaults, not the engine), so an entry point
// can start the threads before it loads the rest of the engine: their boot (Node's worker bootstrap
// and the shard modules, ~110 ms CPU each) then overlaps the main thread's own module graph instead
// of following it (startShardThreads; startEngine takes them as options.shardThreads).

import { Piscina } from 'piscina';
import type { EngineOptions, ShardThreads } from '../api.js';
import { resolveOptions } from '../options.js';
import { distFile } from '../../projectRoot.js';

/**
 * Booted shard worker threads kept idle beside the shards (docs/STORE.md, "Shard restart"): a
 * restarted shard's task runs on one at once. Each costs an idle thread with the shard modules loaded
 * (no kernel: a shard allocates it when its task starts). The engine sizes its piscina pool with it.
 */
export const shardThreadsStandby = 1;

export type { ShardThreads } from '../api.js';

/** Starts the shard threads for these engine options (workers and shardHeapMb; the rest is read by startEngine). */
export function startShardThreads(options: Pick<EngineOptions, 'workers' | 'shardHeapMb'> = {}): ShardThreads {
  const o = resolveOptions(options);
  const pool = new Piscina({
    // A CommonJS shim that imports the ES module (shardThread.cts says why).
    filename: distFile('src/engine/shards/shardThread.cjs'),
    // One thread more than shards, booted and idle: a supervised restart's task starts on it at once
    // (its modules are loaded when piscina starts a thread), instead of waiting for a thread to boot
    // after the death; piscina replaces the dead thread, which becomes the next standby.
    minThreads: o.workers + shardThreadsStandby,
    maxThreads: o.workers + shardThreadsStandby,
    idleTimeout: Number.MAX_SAFE_INTEGER,
    maxQueue: o.workers * 2,
    concurrentTasksPerWorker: 1,
    resourceLimits: { maxOldGenerationSizeMb: o.shardHeapMb },
  });
  // A worker dying outside a task (e.g. out of memory at boot) is emitted as 'error'; with no listener
  // Node would kill the whole engine. Shard tasks' own rejections drive supervision.
  pool.on('error', (err: unknown) => console.error(`mtm: shard worker error: ${err instanceof Error ? err.message : String(err)}`));
  return { pool, workers: o.workers, shardHeapMb: o.shardHeapMb };
}
