// node dist/bench/shardRestart.js --data DIR [--restarts N] [--workers N]
//
// A supervised shard worker restart on a real data directory (issue 16's goal: <= 500 ms at 100,000
// portfolios x 25 positions). Starts the engine on DIR (a copy: the engine writes to it), then kills
// shard 0's worker N times (fault injection: the worker exits) and times each restart from the kill
// to the shard being ready again: death noticed, a new worker spawned, its books loaded from the
// last columnar snapshot and the log after it replayed (engine/recovery.ts recoverShard). Two cases:
//   tail      right after the engine's own start: the tail since the snapshot is whatever the
//             directory held (the recovery scenario's crash state: 1M trades);
//   snapshot  after a snapshot round (what the engine does every snapshotIntervalMs, and as soon as
//             snapshotTailEventsMax events were logged after the last one): a short tail.
// Prints one JSON line per restart and a summary line, each with the load average.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new Error(`usage: node dist/bench/shardRestart.js --data DIR [--restarts N] [--workers N] (missing --${name})`);
  return v;
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

const round = (x: number): number => Math.round(x * 10) / 10;

/**
 * Kills shard 0 and waits until it is ready again; the restart's ms and its steps: the main thread's
 * marks (ms after the kill) and what the new worker spent in each step of its recovery.
 */
async function restartOnce(engine: MtmEngine): Promise<{ ms: number; steps: { step: string; after_ms: number }[]; worker: unknown }> {
  const before = engine.stats().shardRestarts;
  const marksBefore = engine.progress.marks.length;
  const workBefore = engine.progress.shardWork.length;
  const t0 = performance.now();
  const crashed = engine.crashShard(0, 'exit');
  if (!crashed.ok) throw new Error(crashed.error.message);
  for (;;) {
    const s = engine.shardStats()[0];
    if (engine.stats().shardRestarts > before && s.state === 'ready') {
      const ms = performance.now() - t0;
      const steps = engine.progress.marks.slice(marksBefore).map((m) => ({ step: m.step, after_ms: round(m.at_ms - t0) }));
      const w = engine.progress.shardWork[workBefore];
      const worker = w === undefined ? null : { modules_after_ms: round(w.modules_at_ms - t0), task_after_ms: round(w.task_at_ms - t0), ready_after_ms: round(w.ready_at_ms - t0), load_ms: round(w.load_ms), read_ms: round(w.read_ms), replay_ms: round(w.replay_ms), finish_ms: round(w.finish_ms) };
      return { ms, steps, worker };
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function main(): Promise<void> {
  const dataDir = arg('data');
  const restarts = Number(arg('restarts', '3'));
  const workers = process.argv.includes('--workers') ? Number(arg('workers')) : undefined;
  const t0 = performance.now();
  // No round of its own (snapshotTailEventsMax unbounded here): the 'tail' phase measures a restart
  // that replays the whole 1M tail, which the engine's default bound would not leave for long (it
  // starts a round within a second of the start); the 'snapshot' phase is what it leaves.
  const engine = await createEngine({ dataDir, workers, allowFaultInjection: true, snapshotIntervalMs: 86_400_000, snapshotTailEventsMax: Number.MAX_SAFE_INTEGER });
  console.log(JSON.stringify({ engineReadyMs: Math.round(performance.now() - t0), portfolios: engine.listPortfolios().length, workers: engine.shardStats().length, load: load() }));
  const runs: Record<string, number[]> = { tail: [], snapshot: [] };
  for (const phase of ['tail', 'snapshot'] as const) {
    if (phase === 'snapshot') {
      const t = performance.now();
      await engine.snapshotAll();
      console.log(JSON.stringify({ snapshotAllMs: round(performance.now() - t), load: load() }));
    }
    for (let i = 0; i < restarts; i++) {
      // Settle first: a restart right after another measures the previous one's leftovers.
      await new Promise((r) => setTimeout(r, 1_000));
      const r = await restartOnce(engine);
      runs[phase].push(r.ms);
      console.log(JSON.stringify({ phase, run: i + 1, restartMs: round(r.ms), steps: r.steps, worker: r.worker, load: load() }));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  console.log(JSON.stringify({ summary: true, tailMedianMs: Math.round(median(runs.tail) * 10) / 10, snapshotMedianMs: Math.round(median(runs.snapshot) * 10) / 10, load: load() }));
  await engine.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
