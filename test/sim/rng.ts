// The simulator's one source of randomness: every choice of a run comes from this stream, so a seed
// replays the same history. mulberry32 (src/sim/random.ts), wrapped with the helpers the generator uses.

import { seeded } from '../../src/sim/random.js';
import type { Random } from '../../src/domain/types.js';

export class Rng {
  private readonly r: Random;

  constructor(readonly seed: number) {
    this.r = seeded(seed);
  }

  /** Draws so far: a trace shows where two runs of a seed start to differ. */
  draws = 0;

  next(): number {
    this.draws++;
    return this.r.next();
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)];
  }

  /** A key of `weights` with probability proportional to its weight. */
  weighted<K extends string>(weights: Record<K, number>): K {
    const keys = Object.keys(weights) as K[];
    let total = 0;
    for (const k of keys) total += Math.max(0, weights[k]);
    let u = this.next() * total;
    for (const k of keys) {
      u -= Math.max(0, weights[k]);
      if (u < 0) return k;
    }
    return keys[keys.length - 1];
  }

  /** A number with at most `decimals` decimals in [min, max] (what a user would type). */
  decimal(min: number, max: number, decimals: number): number {
    const scale = 10 ** decimals;
    return Math.round((min + this.next() * (max - min)) * scale) / scale;
  }
}
