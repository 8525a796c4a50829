// Seeded randomness for demos, benchmarks and simulations: one seed reproduces a whole run.
import type { Random } from '../domain/types.js';

/** mulberry32: small, fast, and good enough for workloads (not for cryptography). */
export function seeded(seed: number): Random {
  let s = seed >>> 0 || 1;
  return {
    next() {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** Zipf(s) over ranks 0..n-1 by inverse CDF over a precomputed table: rank 0 is the most popular. */
export class Zipf {
  private readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    readonly s = 1.0,
  ) {
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) {
      sum += 1 / Math.pow(k + 1, s);
      this.cdf[k] = sum;
    }
    for (let k = 0; k < n; k++) this.cdf[k] /= sum;
  }

  sample(random: Random): number {
    const u = random.next();
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export function symbolName(i: number): string {
  return 'SYM' + i.toString().padStart(4, '0');
}
