// Rolling statistics for the alert rules, O(1) per tick (amortized) in preallocated rings.

/**
 * Monotonic deque of (ts, price): the front is the minimum (or maximum) of the points still in the
 * window. Its ring grows by doubling up to capacityMax; when a run of more than capacityMax
 * monotonic prices fills it, the oldest point is dropped, so the window shortens rather than grows.
 */
class ExtremumDeque {
  private ts: Float64Array;
  private price: Float64Array;
  private head = 0;
  private length = 0;

  constructor(
    private readonly keepsMin: boolean,
    capacityInitial: number,
    private readonly capacityMax: number,
  ) {
    this.ts = new Float64Array(capacityInitial);
    this.price = new Float64Array(capacityInitial);
  }

  get empty(): boolean {
    return this.length === 0;
  }

  get frontPrice(): number {
    return this.price[this.head];
  }

  get frontTs(): number {
    return this.ts[this.head];
  }

  push(ts: number, price: number): void {
    // A point that can never again be the extremum (an older, less extreme price) leaves now.
    while (this.length > 0) {
      const back = this.price[this.at(this.length - 1)];
      if (this.keepsMin ? back < price : back > price) break;
      this.length--;
    }
    if (this.length === this.ts.length) {
      if (this.ts.length < this.capacityMax) this.grow();
      else this.dropFront();
    }
    const i = this.at(this.length);
    this.ts[i] = ts;
    this.price[i] = price;
    this.length++;
  }

  evictBefore(tsMin: number): void {
    while (this.length > 0 && this.ts[this.head] < tsMin) this.dropFront();
  }

  clear(): void {
    this.head = 0;
    this.length = 0;
  }

  private at(k: number): number {
    const i = this.head + k;
    return i < this.ts.length ? i : i - this.ts.length;
  }

  private dropFront(): void {
    this.head = this.at(1);
    this.length--;
  }

  private grow(): void {
    const capacity = Math.min(this.ts.length * 2, this.capacityMax);
    const ts = new Float64Array(capacity);
    const price = new Float64Array(capacity);
    for (let k = 0; k < this.length; k++) {
      ts[k] = this.ts[this.at(k)];
      price[k] = this.price[this.at(k)];
    }
    this.ts = ts;
    this.price = price;
    this.head = 0;
  }
}

/** Minimum and maximum price over the ticks of the last windowMs. */
export class ExtremaWindow {
  private readonly min: ExtremumDeque;
  private readonly max: ExtremumDeque;

  constructor(capacityMax: number) {
    const initial = Math.min(8, capacityMax);
    this.min = new ExtremumDeque(true, initial, capacityMax);
    this.max = new ExtremumDeque(false, initial, capacityMax);
  }

  get empty(): boolean {
    return this.min.empty;
  }

  get minPrice(): number {
    return this.min.frontPrice;
  }

  get minTs(): number {
    return this.min.frontTs;
  }

  get maxPrice(): number {
    return this.max.frontPrice;
  }

  get maxTs(): number {
    return this.max.frontTs;
  }

  push(ts: number, price: number): void {
    this.min.push(ts, price);
    this.max.push(ts, price);
  }

  evictBefore(tsMin: number): void {
    this.min.evictBefore(tsMin);
    this.max.evictBefore(tsMin);
  }

  clear(): void {
    this.min.clear();
    this.max.clear();
  }
}

/**
 * Mean and population standard deviation of the last `size` values. Sliding Welford updates keep it
 * O(1); an exact two-pass recomputation every `size` pushes stops floating-point drift accumulating.
 */
export class RollingStats {
  private readonly ring: Float64Array;
  private head = 0;
  private count = 0;
  private m2 = 0;
  private pushesSinceExact = 0;
  mean = 0;

  constructor(readonly size: number) {
    this.ring = new Float64Array(size);
  }

  get full(): boolean {
    return this.count === this.size;
  }

  get sigma(): number {
    return this.count === 0 ? 0 : Math.sqrt(Math.max(this.m2, 0) / this.count);
  }

  push(x: number): void {
    if (this.count < this.size) {
      this.ring[this.count++] = x;
      const delta = x - this.mean;
      this.mean += delta / this.count;
      this.m2 += delta * (x - this.mean);
    } else {
      const old = this.ring[this.head];
      this.ring[this.head] = x;
      this.head = this.head + 1 === this.size ? 0 : this.head + 1;
      const mean = this.mean + (x - old) / this.size;
      this.m2 += (x - old) * (x - mean + old - this.mean);
      this.mean = mean;
    }
    if (++this.pushesSinceExact >= this.size) this.recompute();
  }

  private recompute(): void {
    let sum = 0;
    for (let i = 0; i < this.count; i++) sum += this.ring[i];
    const mean = sum / this.count;
    let m2 = 0;
    for (let i = 0; i < this.count; i++) m2 += (this.ring[i] - mean) ** 2;
    this.mean = mean;
    this.m2 = m2;
    this.pushesSinceExact = 0;
  }
}
