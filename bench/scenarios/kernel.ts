// kernel: revaluation throughput (positions/s) on bench/kernel.ts's 1,000,000-position book.
//   mtm:   bench/kernel.ts itself (its JSON line): the WASM and the TypeScript kernels;
//   peer:  bench/peer/kernel.ts: the peer's from-scratch per-tick revaluation on the same book;
//   limit: bench/limit/kernel.ts: one gather-multiply per position over typed arrays (the floor).
// dense: every symbol changes per iteration; sparse: 1% of them. Each runs as its own process.
import { round3 } from '../loadgen/common.js';
import type { Progress } from '../report/progress.js';
import { Child, benchScript } from './children.js';
import type { Scale } from './config.js';
import type { SystemName } from './systems.js';

export interface KernelCase {
  positionsPerSecond: number;
  positionsPerIteration: number;
  medianMs: number;
  p99Ms: number;
}

export interface KernelVariant {
  dense: KernelCase;
  sparse: KernelCase;
}

export type KernelResult = { source: string } & ({ wasm: KernelVariant; ts: KernelVariant } | { naive: KernelVariant } | { floor: KernelVariant });

interface RawResult {
  case: string;
  kernel?: string;
  positionsPerIteration: number;
  medianMs: number;
  p99Ms: number;
  positionsPerSec: number;
}

function pick(results: RawResult[], name: string, kernel: string | undefined): KernelCase {
  const r = results.find((x) => x.case === name && (kernel === undefined || x.kernel === kernel));
  if (r === undefined) throw new Error(`kernel output has no ${name}${kernel ? '/' + kernel : ''} case`);
  return { positionsPerSecond: Math.round(r.positionsPerSec), positionsPerIteration: Math.round(r.positionsPerIteration), medianMs: round3(r.medianMs), p99Ms: round3(r.p99Ms) };
}

const reportedCases = 'dense/wasm,dense/ts,sparse/wasm,sparse/ts';

export async function kernel(name: SystemName, scale: Scale, progress: Progress): Promise<KernelResult> {
  const script = name === 'mtm' ? 'kernel.js' : name === 'peer' ? 'peer/kernel.js' : 'limit/kernel.js';
  const args = scale.kernel.iterations === null ? [] : ['--iterations', String(scale.kernel.iterations)];
  // mtm: only the cases the report reads (bench/kernel.js alone also runs dense-fx and the slow list path).
  if (name === 'mtm') args.push('--cases', reportedCases);
  if (scale.kernel.portfolios !== null) args.push('--portfolios', String(scale.kernel.portfolios));
  progress.update(`node dist/bench/${script} ${args.join(' ')}`);
  const child = new Child(`kernel ${name}`, benchScript(script), args, ['--expose-gc'], 1 << 20);
  const timer = setTimeout(() => child.kill(), scale.kernel.timeoutMs);
  try {
    const exit = await child.exited;
    if (exit.code !== 0) throw new Error(`dist/bench/${script} exited ${exit.code ?? exit.signal}: ${child.tail()}`);
  } finally {
    clearTimeout(timer);
  }
  const line = child
    .stdout()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{"bench":'));
  if (line === undefined) throw new Error(`dist/bench/${script} printed no JSON result line`);
  const out = JSON.parse(line) as { results: RawResult[] };
  const source = `dist/bench/${script}`;
  if (name === 'mtm') {
    return {
      source,
      wasm: { dense: pick(out.results, 'dense', 'wasm'), sparse: pick(out.results, 'sparse', 'wasm') },
      ts: { dense: pick(out.results, 'dense', 'ts'), sparse: pick(out.results, 'sparse', 'ts') },
    };
  }
  const v = { dense: pick(out.results, 'dense', undefined), sparse: pick(out.results, 'sparse', undefined) };
  return name === 'peer' ? { source, naive: v } : { source, floor: v };
}
