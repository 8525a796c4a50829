// Issue 19's measure, side by side in one process: the dense pass of a baseline build's kernel (an
// older commit's dist/, e.g. 457ffd1 before instruments existed) on today's dense book, against this
// build's kernel on the same book and on the dense-fx book (multipliers as effective quantities, a
// fifth of the positions converted through an inverse pair and three crosses whose legs tick every
// iteration), and the baseline on the dense-fx book as it can run it (its fx rows fed their rates). Iterations are interleaved (baseline, this, this-fx, baseline, ...), so the noise of a
// shared machine falls on all three alike. Prints medians and p99 per system and the load average.
// Run: node --expose-gc dist/bench/kernelCompare.js --baseline /path/to/old/dist [--iterations N] [--kernel wasm|ts]

import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { JsBackend } from '../src/kernel/jsBackend.js';
import { Kernel } from '../src/kernel/kernel.js';
import { WasmBackend } from '../src/kernel/wasmBackend.js';
import { SYMBOLS, fillBatch, fillFxBatch, limits, populate, populateFx } from './kernelBook.js';

interface System {
  name: string;
  kernel: Kernel;
  fill: (i: number) => number;
  times: number[];
}

function arg(name: string, fallback?: string): string {
  const at = process.argv.indexOf(name);
  const v = at > 0 ? process.argv[at + 1] : fallback;
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function main(): Promise<void> {
  const baseline = resolve(arg('--baseline'));
  const iterations = Number(arg('--iterations', '300'));
  const kind = arg('--kernel', 'wasm');
  const load = (file: string) => import(pathToFileURL(`${baseline}/src/kernel/${file}`).href);
  const old = { Kernel: (await load('kernel.js')).Kernel, Wasm: (await load('wasmBackend.js')).WasmBackend, Js: (await load('jsBackend.js')).JsBackend };
  const loadStart = loadavg()[0];
  const make = (): Kernel => new Kernel(kind === 'wasm' ? new WasmBackend() : new JsBackend('auto'), limits);
  const makeOld = (): Kernel => new old.Kernel(kind === 'wasm' ? new old.Wasm() : new old.Js('auto'), limits) as Kernel;
  const systems: System[] = [];
  const base = populate(makeOld());
  systems.push({ name: 'baseline dense', kernel: base, fill: (i) => (fillBatch(base, SYMBOLS, i), SYMBOLS), times: [] });
  // Today's FX mechanism on the same foreign book: the conversion rows are plain fx symbols and the
  // bench feeds their (same) rates in the batch; no multipliers or derived rates in that kernel.
  const baseFx = populateFx(makeOld(), false);
  systems.push({ name: 'baseline dense-fx', kernel: baseFx, fill: (i) => fillFxBatch(baseFx, i, false), times: [] });
  const dense = populate(make());
  systems.push({ name: 'this dense', kernel: dense, fill: (i) => (fillBatch(dense, SYMBOLS, i), SYMBOLS), times: [] });
  const fx = populateFx(make());
  systems.push({ name: 'this dense-fx', kernel: fx, fill: (i) => fillFxBatch(fx, i), times: [] });
  const warmup = 20;
  for (let i = 0; i < warmup + iterations; i++) {
    for (const s of systems) {
      const n = s.fill(i);
      const t0 = performance.now();
      s.kernel.revalue(n);
      const ms = performance.now() - t0;
      if (i >= warmup) s.times.push(ms);
    }
  }
  const loadEnd = loadavg()[0];
  const rows = systems.map((s) => {
    const sorted = [...s.times].sort((a, b) => a - b);
    return { system: s.name, medianMs: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), touched: s.kernel.touched };
  });
  console.log(`kernel ${kind}, ${iterations} interleaved iterations, load average ${loadStart.toFixed(2)} -> ${loadEnd.toFixed(2)}`);
  for (const r of rows) console.log(`${r.system.padEnd(16)} median ${r.medianMs.toFixed(3)} ms  p99 ${r.p99Ms.toFixed(3)} ms  rows touched ${r.touched}`);
  const [baseRow, baseFxRow, thisDense, thisFx] = rows;
  console.log(`medians: this dense / baseline dense ${(thisDense.medianMs / baseRow.medianMs).toFixed(3)}; this dense-fx / baseline dense ${(thisFx.medianMs / baseRow.medianMs).toFixed(3)}; this dense-fx / baseline dense-fx (direct rates fed) ${(thisFx.medianMs / baseFxRow.medianMs).toFixed(3)}`);
  console.log(JSON.stringify({ bench: 'kernelCompare', kernel: kind, iterations, loadStart, loadEnd, results: rows }));
}

await main();
