// Kernel selection: --kernel wasm|js picks the backend at run time; both share Kernel's memory.
import type { KernelBackend, KernelKind } from './backend.js';
import { JsBackend } from './jsBackend.js';
import { Kernel, type KernelLimits } from './kernel.js';
import { WasmBackend } from './wasmBackend.js';

export type { KernelKind } from './backend.js';
export { Kernel } from './kernel.js';

export function createKernel(kind: KernelKind, limits: KernelLimits): Kernel {
  const backend: KernelBackend = kind === 'js' ? new JsBackend() : new WasmBackend();
  return new Kernel(backend, limits);
}
