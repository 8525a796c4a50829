// The bounded selection behind time-range queries of the event log (log.ts).

/** Keeps the k best seqs seen (smallest when ascending, largest when descending) in O(k) memory. */
export class SeqHeap {
  private readonly heap: Float64Array;
  size = 0;
  // The root is the worst kept seq: the largest when keeping the smallest, and the reverse.
  constructor(
    private readonly k: number,
    private readonly keepSmallest: boolean,
  ) {
    this.heap = new Float64Array(k);
  }

  private worse(a: number, b: number): boolean {
    return this.keepSmallest ? a > b : a < b;
  }

  offer(seq: number): void {
    const h = this.heap;
    if (this.size < this.k) {
      let i = this.size++;
      h[i] = seq;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!this.worse(h[i], h[parent])) break;
        const t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
      }
      return;
    }
    if (!this.worse(h[0], seq)) return;
    h[0] = seq;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let w = i;
      if (l < this.size && this.worse(h[l], h[w])) w = l;
      if (r < this.size && this.worse(h[r], h[w])) w = r;
      if (w === i) break;
      const t = h[i];
      h[i] = h[w];
      h[w] = t;
      i = w;
    }
  }

  sorted(): number[] {
    const out = Array.from(this.heap.subarray(0, this.size));
    return out.sort(this.keepSmallest ? (a, b) => a - b : (a, b) => b - a);
  }
}
