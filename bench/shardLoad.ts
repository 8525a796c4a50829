// node --max-old-space-size=8192 dist/bench/shardLoad.js DIR [--kernel wasm|js]
//
// The worker's share of a restart, alone, in this thread (issue 16; docs/BENCHMARKS.md "Restart,
// seventh session (load)"): what a shard worker does once it has its input, step by step, as the
// worker does it (src/shard/worker.ts 'loadStored', 'replayTail', 'loaded'): read its columnar
// snapshot part from DIR (read-only, src/store/logReader.ts), load it into a new Shard (kernel
// columns and lazy books), replay the log after it (src/shard/tail.ts TailReplay), finish. No engine,
// no main thread, no other worker: profile it with `node --cpu-prof`, compare builds on one copy.
// DIR is only read (the whole directory of one shard count: the 1-shard states of the recovery
// scenario). Prints one JSON line: ms and this thread's CPU per step, trades replayed, the load average.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { SymbolTable } from '../src/domain/symbols.js';
import { resolveOptions } from '../src/engine/options.js';
import type { KernelKind } from '../src/kernel/backend.js';
import { Shard } from '../src/shard/shard.js';
import { readSnapshotStrings } from '../src/shard/snapshotCodec.js';
import { TailReplay, type TailReport } from '../src/shard/tail.js';
import { openLogReader } from '../src/store/logReader.js';

const dir = process.argv[2];
if (dir === undefined || dir.startsWith('--')) throw new Error('usage: node dist/bench/shardLoad.js DIR [--kernel wasm|js]');
const ki = process.argv.indexOf('--kernel');
const o = resolveOptions({});
const kernel = (ki >= 0 ? process.argv[ki + 1] : o.kernel) as KernelKind;

const round = (x: number): number => Math.round(x * 10) / 10;
const cpuMs = (u: NodeJS.CpuUsage): number => round((u.user + u.system) / 1000);
const steps: Record<string, { ms: number; cpu_ms: number }> = {};
function step<T>(name: string, f: () => T): T {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const out = f();
  steps[name] = { ms: round(performance.now() - t0), cpu_ms: cpuMs(process.cpuUsage(c0)) };
  return out;
}

const log = step('open', () => openLogReader(dir));
const pointer = log.shardSnapshotPointer();
if (pointer === undefined || pointer.shards !== 1) throw new Error(`${dir}: needs a columnar generation written by 1 shard`);
const segments = step('read', () => log.shardSnapshotSegments(pointer, 0));
// The main thread's symbol table as recovery builds it (engine/recovery.ts readSource): the
// snapshot's symbols and the conversions its books need, in that order.
const symbols = new SymbolTable(o.limits.symbolsMax);
const strings = readSnapshotStrings(segments);
for (const s of strings.symbols) symbols.intern(s);
for (const [currency, base] of strings.conversions) symbols.internConversion(currency, base, o.fxPivot);
const shard = new Shard({ shard: 0, shards: 1, kernel, positionsPerPortfolioMax: o.limits.positionsPerPortfolioMax, portfoliosMax: o.limits.portfoliosMax, symbolsMax: o.limits.symbolsMax, staleAfterMs: o.staleAfterMs, fxPivot: o.fxPivot });
const announce = (): void => {
  const fresh = symbols.takeUnannounced();
  if (fresh !== null) shard.registerSymbols(fresh.from, fresh.names);
};
announce();
step('load', () => shard.loadColumnar([{ segments, covered: pointer.covered[0] }], false, []));
let last: TailReport | null = null;
const tail = new TailReplay(shard, log, pointer.covered[0], (r) => (last = r));
let pauses = 0;
step('replay', () => {
  for (;;) {
    tail.run();
    const r = last as TailReport | null;
    if (r === null || r.done) return;
    if (r.needs === null) continue;
    // What the main thread does on a paused pass (recovery.ts replayTails): intern, announce, resume.
    pauses++;
    for (const s of r.needs.symbols) symbols.intern(s);
    for (const [quote, base] of r.needs.conversions) symbols.internConversion(quote, base, o.fxPivot);
    announce();
  }
});
step('finish', () => shard.finishRecovery());
log.close();
const r = last as TailReport | null;
console.log(
  JSON.stringify({
    kernel,
    portfolios: shard.portfolios,
    positions: shard.kernel.positions,
    read: r?.read ?? 0,
    applied: r?.applied ?? 0,
    trades_in_columns: shard.tradesReplayedInColumns,
    pauses,
    steps,
    load: loadavg().map((l) => l.toFixed(2)).join(' '),
  }),
);
