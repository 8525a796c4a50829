// Shared by the kernel tests (test/kernel.test.ts, test/kernel.fx.test.ts): kernels of every flavour
// (WASM, or the TypeScript kernel with a forced or automatic path), building the WASM module when it
// is missing or stale, and comparing two kernels' whole memories word by word.

import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { JsBackend, type SweepPolicy } from '../../src/kernel/jsBackend.js';
import { Kernel, type KernelLimits } from '../../src/kernel/kernel.js';
import { columnSpecs, type ColumnName } from '../../src/kernel/layout.js';
import { WasmBackend } from '../../src/kernel/wasmBackend.js';

const root = join(import.meta.dirname, '../..');
export const wasmFile = join(root, 'dist/assembly/kernel.wasm');
export const limits: KernelLimits = { positionsMax: 100_000, portfoliosMax: 10_000, symbolsMax: 10_000 };

/** Builds dist/assembly/kernel.wasm if missing or older than assembly/kernel.ts (call from beforeAll). */
export function ensureKernelWasm(): void {
  const source = join(root, 'assembly/kernel.ts');
  if (existsSync(wasmFile) && statSync(wasmFile).mtimeMs >= statSync(source).mtimeMs) return;
  execFileSync('npx', ['asc', 'assembly/kernel.ts', '--target', 'release'], { cwd: root, stdio: 'inherit' });
}

export type Flavour = 'wasm' | SweepPolicy;

export function kernelOf(flavour: Flavour): Kernel {
  return new Kernel(flavour === 'wasm' ? new WasmBackend() : new JsBackend(flavour), limits);
}

export function sweepsOf(k: Kernel): number {
  return (k.backend as WasmBackend | JsBackend).sweepBatches;
}

const columnOf = (k: Kernel, byte: number): { name: ColumnName; row: number } | undefined => {
  for (const spec of columnSpecs) {
    const view = k.cols[spec.name];
    if (byte >= view.byteOffset && byte < view.byteOffset + view.byteLength) return { name: spec.name, row: Math.floor((byte - view.byteOffset) / view.BYTES_PER_ELEMENT) };
  }
  return undefined;
};

function words(k: Kernel): Uint32Array {
  return new Uint32Array(k.cols.posQty.buffer, 0, k.bytes / 4);
}

/** First difference between the two kernels' memories outside `skip`, NaN == NaN; undefined if none. */
export function firstDifference(a: Kernel, b: Kernel, skip: ReadonlySet<ColumnName> = new Set()): string | undefined {
  if (a.bytes !== b.bytes) return `layout sizes ${a.bytes} vs ${b.bytes}`;
  const wa = words(a);
  const wb = words(b);
  for (let i = 0; i < wa.length; i++) {
    if (wa[i] === wb[i]) continue;
    const at = columnOf(a, i * 4);
    if (at === undefined) return `header slot ${i}: ${wa[i] | 0} vs ${wb[i] | 0}`;
    if (skip.has(at.name)) continue;
    const x = a.cols[at.name][at.row];
    const y = b.cols[at.name][at.row];
    if (!Object.is(x, y) && !(Number.isNaN(x) && Number.isNaN(y))) return `${at.name}[${at.row}]: ${x} vs ${y}`;
  }
  return undefined;
}

export function expectSameMemory(a: Kernel, b: Kernel): void {
  expect(firstDifference(a, b)).toBeUndefined();
}

function prefixSorted(column: Int32Array, count: number): number[] {
  return Array.from(column.subarray(0, count)).sort((x, y) => x - y);
}

/** Same memory except the order of the dirty and breach lists, which depends on the path taken. */
export function expectSameUpToListOrder(a: Kernel, b: Kernel): void {
  expect(firstDifference(a, b, new Set<ColumnName>(['pfDirty', 'pfBreach']))).toBeUndefined();
  expect(prefixSorted(a.cols.pfDirty, a.dirtyCount)).toEqual(prefixSorted(b.cols.pfDirty, b.dirtyCount));
  expect(prefixSorted(a.cols.pfBreach, a.breachCount)).toEqual(prefixSorted(b.cols.pfBreach, b.breachCount));
}

/** Writes the entries into the batch columns and revalues them. */
export function tick(k: Kernel, ...entries: [sym: number, price: number][]): number {
  entries.forEach(([s, p], i) => {
    k.cols.batchSym[i] = s;
    k.cols.batchPrice[i] = p;
  });
  return k.revalue(entries.length);
}
