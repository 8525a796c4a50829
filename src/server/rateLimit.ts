// Token buckets: `ratePerSecond` tokens refill continuously up to `burst`; one command takes one token.
// take() answers 0 when allowed, else how many ms until a token is there (the Retry-After).
// BucketMap holds one bucket per key with a bounded number of entries, so memory stays bounded
// whoever connects: full buckets are dropped first (they are equivalent to a new one), then the oldest.

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSecond) / 1000);
      this.last = now;
    }
  }

  /** 0 when `n` tokens were taken, else the ms until they would be available (nothing is taken). */
  take(now: number, n = 1): number {
    if (this.ratePerSecond === Infinity) return 0;
    this.refill(now);
    if (this.tokens >= n) {
      this.tokens -= n;
      return 0;
    }
    if (this.ratePerSecond <= 0) return Number.MAX_SAFE_INTEGER;
    return Math.max(1, Math.ceil(((n - this.tokens) * 1000) / this.ratePerSecond));
  }

  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }
}

export class BucketMap {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    readonly entriesMax: number,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  take(key: string, now: number, n = 1): number {
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.entriesMax) this.evict(now);
      b = new TokenBucket(this.ratePerSecond, this.burst, now);
      this.buckets.set(key, b);
    }
    return b.take(now, n);
  }

  /** Drops buckets that refilled (a fresh bucket is the same); called periodically. */
  sweep(now: number): void {
    for (const [k, b] of this.buckets) if (b.isFull(now)) this.buckets.delete(k);
  }

  private evict(now: number): void {
    this.sweep(now);
    // Still full of busy buckets: drop the oldest tenth (Map keeps insertion order).
    if (this.buckets.size >= this.entriesMax) {
      let drop = Math.max(1, Math.floor(this.entriesMax / 10));
      for (const k of this.buckets.keys()) {
        this.buckets.delete(k);
        if (--drop === 0) break;
      }
    }
  }
}

/** Counts events in a sliding window of fixed buckets: "N bad frames within windowMs". */
export class WindowCounter {
  private count = 0;
  private windowStart: number;

  constructor(
    readonly windowMs: number,
    now: number,
  ) {
    this.windowStart = now;
  }

  /** Adds one and returns the count within the current window. */
  hit(now: number): number {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.count = 0;
    }
    return ++this.count;
  }
}
