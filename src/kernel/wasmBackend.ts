// The AssemblyScript kernel (assembly/kernel.ts) behind the KernelBackend contract. Loading is
// synchronous because kernels are created inside worker threads and constructors. Each backend
// gets its own instance and memory; the compiled module is shared per process.

import { readFileSync } from 'node:fs';
import { distFile } from '../projectRoot.js';
import type { KernelBackend } from './backend.js';

const PAGE_BYTES = 65536;

interface KernelExports {
  readonly memory: WebAssembly.Memory;
  revalue(n: number): number;
  revalueWatched(n: number, watchedRows: number): number;
  revalueRest(): number;
  sweepRest(from: number, to: number, rowsMax: number): number;
  recompute(pf: number): number;
  sweepBatches(): number;
}

/** dist/assembly/kernel.wasm under the project root, from src/ (vitest) or dist/src/ alike. */
export function kernelWasmPath(): string {
  return distFile('assembly/kernel.wasm');
}

const modules = new Map<string, WebAssembly.Module>();

function compiled(path: string): WebAssembly.Module {
  let module = modules.get(path);
  if (module === undefined) {
    module = new WebAssembly.Module(readFileSync(path));
    modules.set(path, module);
  }
  return module;
}

export class WasmBackend implements KernelBackend {
  readonly kind = 'wasm' as const;
  private readonly wasm: KernelExports;

  constructor(path: string = kernelWasmPath()) {
    // No imports: the kernel has no clock, no randomness and no abort path.
    this.wasm = new WebAssembly.Instance(compiled(path), {}).exports as unknown as KernelExports;
  }

  /** Revalue calls that took the portfolio-sweep path. */
  get sweepBatches(): number {
    return this.wasm.sweepBatches();
  }

  resize(bytes: number): ArrayBuffer {
    const memory = this.wasm.memory;
    const missing = bytes - memory.buffer.byteLength;
    if (missing > 0) {
      try {
        memory.grow(Math.ceil(missing / PAGE_BYTES));
      } catch (cause) {
        throw new Error(`WASM kernel memory cannot grow to ${bytes} bytes`, { cause });
      }
    }
    return memory.buffer;
  }

  // The kernel reads the column offsets from the header on every call, so binding is a no-op.
  bind(): void {}

  revalue(n: number): number {
    return this.wasm.revalue(n);
  }

  revalueWatched(n: number, watchedRows: number): number {
    return this.wasm.revalueWatched(n, watchedRows);
  }

  revalueRest(): number {
    return this.wasm.revalueRest();
  }

  sweepRest(from: number, to: number, rowsMax: number): number {
    return this.wasm.sweepRest(from, to, rowsMax);
  }

  recompute(pf: number): number {
    return this.wasm.recompute(pf);
  }
}
