// Plain bucket counts kept beside a prom-client histogram, for the performance summary's last-minute
// quantiles. Why not read prom-client: its histograms can only be read asynchronously, as fresh objects,
// and reading the whole registry also resets the event-loop lag gauges Prometheus relies on. These are
// copied once a second by the sampler instead. observe() scans ~14 bounds: it runs once per batch,
// trade, commit or HTTP request, never per tick.

export interface BucketSnapshot {
  /** Observations per bucket (not cumulative): counts[i] for bounds[i - 1] < v <= bounds[i]; the last is +Inf. */
  readonly counts: Float64Array;
  readonly count: number;
  readonly sum: number;
}

export class BucketCounts {
  private readonly counts: Float64Array;
  private count = 0;
  private sum = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.counts[i]++;
    this.count++;
    this.sum += value;
  }

  snapshot(): BucketSnapshot {
    return { counts: this.counts.slice(), count: this.count, sum: this.sum };
  }
}

/** newer - older, bucket by bucket: the observations made between two snapshots. */
export function bucketDelta(newer: BucketSnapshot, older: BucketSnapshot | undefined): BucketSnapshot {
  if (older === undefined) return newer;
  const counts = new Float64Array(newer.counts.length);
  for (let i = 0; i < counts.length; i++) counts[i] = Math.max(0, newer.counts[i] - (older.counts[i] ?? 0));
  return { counts, count: Math.max(0, newer.count - older.count), sum: Math.max(0, newer.sum - older.sum) };
}

/**
 * The q-quantile (0..1) of the observations in `s`, estimated the way PromQL's histogram_quantile does:
 * linear interpolation inside the bucket holding the rank, the first bucket starting at 0, and the
 * highest finite bound when the rank falls in +Inf. null without observations. So the summary and the
 * dashboards agree, and both are exact to a bucket.
 */
export function bucketQuantile(bounds: readonly number[], s: BucketSnapshot, q: number): number | null {
  let total = 0;
  for (let i = 0; i < s.counts.length; i++) total += s.counts[i];
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    const inBucket = s.counts[i];
    if (below + inBucket >= rank && inBucket > 0) {
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * ((rank - below) / inBucket);
    }
    below += inBucket;
  }
  return bounds[bounds.length - 1];
}
