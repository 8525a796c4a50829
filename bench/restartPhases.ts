// node --max-old-space-size=8192 dist/bench/restartPhases.js DIR [--workers N]
//
// The start of an engine on a data directory, step by step (issue 16's breakdown in
// docs/BENCHMARKS.md): createEngine on DIR (a copy: the engine writes to it) until it is ready, then
// one JSON line: the wall time of each step of the start in ms since the process started
// (RecoveryProgress.marks: lock, store open, seq epoch, snapshots read, workers up, snapshots posted,
// tail read, tail replayed, shards loaded), what each shard worker spent in its own thread on each
// step, the process's CPU (every thread), its peak RSS and the load average; a second line 3 s later
// with its RSS then (steady, as the recovery scenario measures it). Exits without closing
// (a crash restart's measure; the clean stop is `--close`, timed separately).
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

const dir = process.argv[2];
if (dir === undefined || dir.startsWith('--')) throw new Error('usage: node dist/bench/restartPhases.js DIR [--workers N] [--close]');
const wi = process.argv.indexOf('--workers');
const workers = wi >= 0 ? Number(process.argv[wi + 1]) : undefined;
const modulesFrom = performance.now();
const { createEngine } = await import('../src/engine/engine.js');
const modulesMs = performance.now();
const cpu0 = process.cpuUsage();
const engine = await createEngine({ dataDir: dir, workers, snapshotIntervalMs: 86_400_000 });
const readyMs = performance.now();
const cpu = process.cpuUsage(cpu0);
const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
const p = engine.progress;
const round = (x: number): number => Math.round(x * 10) / 10;
console.log(
  JSON.stringify({
    ready_ms: round(readyMs),
    steps: [{ step: 'engine modules loaded', at_ms: round(modulesMs), from_ms: round(modulesFrom) }, ...p.marks.map((m) => ({ step: m.step, at_ms: round(m.at_ms) }))],
    shards: p.shardWork.map((w) => ({ shard: w.shard, modules_at_ms: round(w.modules_at_ms), ready_at_ms: round(w.ready_at_ms), trades_in_columns: w.trades_in_columns, load_ms: round(w.load_ms), replay_ms: round(w.replay_ms), finish_ms: round(w.finish_ms) })),
    portfolios: p.portfolios,
    events_replayed: p.eventsReplayed,
    cpu_ms_all_threads: Math.round((cpu.user + cpu.system) / 1000),
    vm_hwm_mb: Math.round(hwm / 1024),
    load: loadavg().map((l) => l.toFixed(2)).join(' '),
  }),
);
// Steady RSS: 3 s after ready (the recovery scenario's measure), against the peak up to ready.
await new Promise((r) => setTimeout(r, 3_000));
const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
console.log(JSON.stringify({ vm_hwm_mb_at_ready: Math.round(hwm / 1024), rss_mb_3s_after: Math.round(rss / 1024), load: loadavg().map((l) => l.toFixed(2)).join(' ') }));
if (process.argv.includes('--close')) {
  const t = performance.now();
  await engine.close();
  console.log(JSON.stringify({ close_ms: round(performance.now() - t), load: loadavg().map((l) => l.toFixed(2)).join(' ') }));
}
process.exit(0);
