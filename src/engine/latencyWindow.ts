// A bounded window of recent latency samples for the engine's own stats line and the performance
// summary. Prometheus gets histograms; this answers "p99 over the last few thousand batches".

export class LatencyWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(readonly samplesMax: number) {
    this.samples = new Float64Array(samplesMax);
  }

  add(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samplesMax;
    if (this.filled < this.samplesMax) this.filled++;
  }

  get count(): number {
    return this.filled;
  }

  quantile(q: number): number {
    if (this.filled === 0) return 0;
    const sorted = this.samples.slice(0, this.filled).sort();
    return sorted[Math.min(this.filled - 1, Math.floor(q * this.filled))];
  }

  reset(): void {
    this.next = 0;
    this.filled = 0;
  }
}
