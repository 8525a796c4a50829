// What one 100 ms latency window costs the load generator, per HDR histogram layout: recording its
// values (in the subscriber, per update), encoding it (in the subscriber, at every flush), decoding it
// and adding it into the phase's histogram (in the orchestrator). Until this session the load generator
// used the 'packed' layout; docs/BENCHMARKS.md ("Why max W2 stopped at a few ticks/s") quotes this
// script's figures for both layouts.
// Run: node dist/bench/loadgen/histogramCost.js [--windows N]
import { cpus, loadavg } from 'node:os';
import hdr from 'hdr-histogram-js';

type Layout = 'packed' | 32;
const flag = process.argv.indexOf('--windows');
const windows = flag > 0 ? Math.max(10, Number(process.argv[flag + 1])) : 200;
const warmupWindows = 50;
/** Values per window: a quiet step, a few thousand updates/s, a few hundred thousand updates/s. */
const sizes = [10, 1_000, 20_000];

function request(layout: Layout) {
  return { lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3, bitBucketSize: layout } as const;
}

/** Latencies in us as a subscriber records them: mostly 2-10 ms, 1% at 50 ms. Seeded: the same for both layouts. */
function values(n: number): Uint32Array {
  let x = 0x9e3779b9;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = 2_000 + ((x >>> 0) % 8_000) + (i % 100 === 0 ? 50_000 : 0);
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function measure(layout: Layout, n: number): Record<string, number> {
  const req = request(layout);
  const v = values(n);
  const phase = hdr.build(req);
  const t = { recordUsPerValue: [] as number[], encodeMs: [] as number[], decodeMs: [] as number[], addMs: [] as number[] };
  for (let k = 0; k < warmupWindows + windows; k++) {
    const h = hdr.build(req);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) h.recordValue(v[i]);
    const t1 = performance.now();
    const encoded = hdr.encodeIntoCompressedBase64(h);
    const t2 = performance.now();
    const d = hdr.decodeFromCompressedBase64(encoded, layout);
    const t3 = performance.now();
    phase.add(d);
    const t4 = performance.now();
    d.destroy();
    h.destroy();
    if (k < warmupWindows) continue;
    t.recordUsPerValue.push(((t1 - t0) * 1000) / n);
    t.encodeMs.push(t2 - t1);
    t.decodeMs.push(t3 - t2);
    t.addMs.push(t4 - t3);
  }
  phase.destroy();
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { recordUsPerValue: r(median(t.recordUsPerValue)), encodeMs: r(median(t.encodeMs)), decodeMs: r(median(t.decodeMs)), addMs: r(median(t.addMs)) };
}

const load0 = loadavg()[0];
const results: { layout: string; valuesPerWindow: number; [k: string]: number | string }[] = [];
for (const n of sizes) for (const layout of ['packed', 32] as const) results.push({ layout: String(layout), valuesPerWindow: n, ...measure(layout, n) });
console.log(`HDR histogram cost per 100 ms window (medians of ${windows} windows after ${warmupWindows} of warm-up); node ${process.version}, ${cpus().length} cores, load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`);
console.log('layout  values/window  record us/value  encode ms  decode ms  add ms');
for (const x of results) {
  console.log(`${x.layout.padEnd(6)}  ${String(x.valuesPerWindow).padStart(13)}  ${String(x.recordUsPerValue).padStart(15)}  ${String(x.encodeMs).padStart(9)}  ${String(x.decodeMs).padStart(9)}  ${String(x.addMs).padStart(6)}`);
}
console.log(JSON.stringify({ bench: 'histogram-cost', windows, loadAverage: [load0, loadavg()[0]], results }));
