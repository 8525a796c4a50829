// Proves, over seeded random histories driven through the real engine (two shard workers, real LMDB on a
// temp dir, the WASM kernel; in a child process so that it can be killed with SIGKILL), that the engine
// keeps every promise checked after each step against the exact oracle: figures, lifecycle and limits,
// per-portfolio seq, subscribers' views, acknowledged trades exactly once, bounded queues, nothing applied
// from refused input; through shard crashes ('exit', 'throw', 'heap'), kill -9 and restart, clean restarts,
// malformed input and lagging subscribers (test/sim/simulator.ts, docs/SIMULATION.md).
// And that a seed replays exactly: two runs of one seed produce the same per-portfolio event logs and
// final snapshots.
//
// The seeds are fixed so that every run checks the same histories; together they cover every kind of
// fault (asserted below), and each bug the simulator found breaks an invariant in one of them when its
// fix is reverted (docs/SIMULATION.md): seed 2 (a new symbol announced to a starting worker, step 15;
// the phantom high-water mark after kill -9, step 47; a refused tick registering its symbol, step 254;
// crashShard accepting an unknown fault, step 336), seed 5 (a subscriber silenced after a shard restart,
// step 307), seed 15 (queryEvents throwing, step 269). MTM_SIM_SEEDS=a,b,c and MTM_SIM_STEPS=n run others.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatFailure, Simulator, type SimResult } from './sim/simulator.js';

const root = join(import.meta.dirname, '..');
const seeds = (process.env.MTM_SIM_SEEDS ?? '2,5,15,1').split(',').map(Number);
const steps = Number(process.env.MTM_SIM_STEPS ?? 340);
// Seed 15 streams trades into its kills -9 (some acknowledged, some not) and races crashes.
const determinismSeed = seeds.includes(15) ? 15 : seeds[0];

beforeAll(() => {
  // The engine host runs from dist/ (npm test builds first; a bare `vitest` on a fresh tree builds here).
  if (!existsSync(join(root, 'dist/bench/sim/host.js')) || !existsSync(join(root, 'dist/assembly/kernel.wasm'))) {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  }
});

const results = new Map<number, SimResult>();

function report(r: SimResult): string {
  return `seed ${r.seed}: ${r.stepsRun} steps in ${(r.ms / 1000).toFixed(1)} s; known issues hit ${JSON.stringify(r.known)}`;
}

function failureText(r: SimResult): string {
  return r.failure === null ? '' : formatFailure(r.failure, `npm run simulate -- --seed ${r.seed} --steps ${steps}`);
}

describe('seeded whole-engine simulation', () => {
  it(`holds every invariant after every step (seeds ${seeds.join(', ')}, ${steps} steps each)`, async () => {
    console.log(`simulation seeds: ${seeds.join(', ')} (${steps} steps each); replay one with: npm run simulate -- --seed S --steps ${steps}`);
    const covered: Record<string, number> = {};
    for (const seed of seeds) {
      const r = await new Simulator({ seed, steps, requestTimeoutMs: 60_000 }).run();
      results.set(seed, r);
      console.log(report(r));
      expect(r.failure, failureText(r)).toBeNull();
      expect(r.stepsRun).toBe(steps);
      for (const [k, v] of Object.entries(r.counts)) covered[k] = (covered[k] ?? 0) + v;
    }
    // The seeds must keep exercising every fault and the paths around it; if a change to the generator
    // loses one, pick seeds that cover it again (npm run simulate prints what each seed covers).
    if (process.env.MTM_SIM_SEEDS === undefined) {
      for (const k of ['crash:exit', 'crash:throw', 'crash:heap', 'kill9', 'trades acknowledged before a kill -9', 'restart', 'garbage', 'resubscribe', 'risk pauses', 'duplicate trade ids answered', 'refused by the per-shard queue bound', 'trades sent while a shard was starting', 'stale ticks']) {
        expect(covered[k] ?? 0, `no '${k}' in seeds ${seeds.join(', ')}`).toBeGreaterThan(0);
      }
    }
  }, 300_000);

  it(`replays a seed exactly: two runs of seed ${determinismSeed} give the same event logs and final snapshots`, async () => {
    const first = results.get(determinismSeed) ?? (await new Simulator({ seed: determinismSeed, steps }).run());
    const second = await new Simulator({ seed: determinismSeed, steps }).run();
    console.log(`determinism: ${report(first)} / ${report(second)}`);
    expect(first.failure, failureText(first)).toBeNull();
    expect(second.failure, failureText(second)).toBeNull();
    expect(first.counts.crash ?? 0).toBeGreaterThan(0);
    expect(first.counts.kill9 ?? 0).toBeGreaterThan(0);
    expect(second.eventsDigest).toBe(first.eventsDigest);
    expect(second.snapshotsDigest).toBe(first.snapshotsDigest);
  }, 300_000);
});
