// Every accepted tick, in arrival order, for consumers that need all of them (bars count volume and
// trades; the shards only see the latest price per symbol). Recording is four typed-array writes;
// the tape is handed off whole once per batch (or when full), so nothing is allocated per tick.

export const TAPE_FIELDS = 4; // symbol id, price, ts (epoch ms), size (NaN = none)

export type TapeListener = (tape: Float64Array, ticks: number) => void;

export class TickTape {
  private buffer: Float64Array;
  private count = 0;
  private spare: Float64Array | null = null;

  constructor(
    readonly tapeTicksMax: number,
    private readonly listener: TapeListener,
  ) {
    this.buffer = new Float64Array(tapeTicksMax * TAPE_FIELDS);
  }

  record(symbol: number, price: number, ts: number, size: number): void {
    const at = this.count * TAPE_FIELDS;
    this.buffer[at] = symbol;
    this.buffer[at + 1] = price;
    this.buffer[at + 2] = ts;
    this.buffer[at + 3] = size;
    if (++this.count === this.tapeTicksMax) this.handOff();
  }

  /** Gives the recorded ticks to the listener, which owns the buffer from then on. */
  handOff(): void {
    if (this.count === 0) return;
    const full = this.buffer;
    const n = this.count;
    this.buffer = this.spare ?? new Float64Array(this.tapeTicksMax * TAPE_FIELDS);
    this.spare = null;
    this.count = 0;
    this.listener(full, n);
  }

  /**
   * A buffer the listener is done with (it copied the ticks out): the next handOff reuses it, so a
   * listener that copies makes the tape allocate nothing per batch.
   */
  recycle(buffer: Float64Array): void {
    if (buffer.length === this.tapeTicksMax * TAPE_FIELDS && buffer !== this.buffer) this.spare = buffer;
  }
}
