// The main thread's side of one shard: its port, the commands waiting for it (bounded), whether a
// tick batch is in flight, and its lifecycle while the supervisor restarts it.

import type { MessagePort } from 'node:worker_threads';
import { shardRestartingError, type EngineError } from '../errors.js';
import type { Command, CommandResult, FromShard, ToShard, TradeChunkAnswer } from '../shard/protocol.js';
import { DeltaRoutes } from './deltas.js';
import { encodeTradeChunk } from '../shard/tradeChunk.js';

/** A trade booked (not a dry run): it travels packed. */
function isPackedTrade(c: Command): boolean {
  return c.kind === 'trade' && c.dryRun !== true;
}

type Pending = (result: CommandResult) => void;
/** A chunk of imported trades waiting for its turn (tradeChunk.ts), in the same queue as commands. */
interface QueuedChunk {
  chunk: number;
  bytes: Uint8Array;
  count: number;
  now: number;
}
export type CommandBody = Command extends infer C ? (C extends Command ? Omit<C, 'id'> : never) : never;

export class ShardHandle {
  port: MessagePort | null = null;
  state: 'starting' | 'ready' | 'restarting' | 'stopped' = 'starting';
  /** Numbers of the tick batches posted to this shard and not yet answered, oldest first. */
  batchesInFlight: number[] = [];
  /** Its last answered batch left the unwatched portfolios' pass pending: a 'settled' message follows. */
  unsettled = false;
  /**
   * Whether this worker was sent the symbol table (recovery does, first thing): names announced
   * before that would reach it out of order (ids from the middle of the table).
   */
  symbolTableSent = false;
  restarts = 0;
  /** Book index -> portfolio id of this worker's deltas (reset when the worker restarts). */
  readonly routes = new DeltaRoutes();
  /** Commands wait here instead of being posted: a corporate step is between its check and its log. */
  private held = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Called as the result is read, before the next result of the same message (see submit). */
  private readonly onResults = new Map<number, Pending>();
  private queued: (Command | QueuedChunk)[] = [];
  /** Chunks of imported trades posted or queued, by chunk number: answered when the shard's answer is read. */
  private readonly chunks = new Map<number, (answer: TradeChunkAnswer) => void>();
  private flushScheduled = false;

  constructor(
    readonly index: number,
    readonly commandsQueuedMax: number,
    /**
     * Commands in one message to the shard: a turn's commands go as several messages, so the shard
     * answers the first while it works on the next and their commit starts meanwhile (a pipeline,
     * instead of every trade of a turn waiting for the whole turn's round trip, then one commit).
     */
    readonly commandsPerMessageMax = Infinity,
  ) {}

  get queueDepth(): number {
    return this.pending.size + this.chunks.size;
  }

  attach(port: MessagePort, onMessage: (msg: FromShard) => void): void {
    this.port = port;
    port.on('message', onMessage);
  }

  post(msg: ToShard, transfer?: ArrayBuffer[]): void {
    this.port?.postMessage(msg, transfer);
  }

  /**
   * Queues a chunk of imported trades behind the commands submitted before it (same turn, same
   * order); `onAnswer` runs synchronously when the shard's answer is read (the caller logs its events
   * there, in message order), or with `failed` set when the shard dies or the engine closes first.
   * false: the shard's queue is full.
   */
  submitChunk(chunk: number, bytes: Uint8Array, count: number, now: number, onAnswer: (answer: TradeChunkAnswer) => void): boolean {
    if (this.pending.size + this.chunks.size >= this.commandsQueuedMax) return false;
    this.chunks.set(chunk, onAnswer);
    this.queued.push({ chunk, bytes, count, now });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  /** The shard answered a chunk. */
  chunkAnswered(answer: TradeChunkAnswer): void {
    const done = this.chunks.get(answer.chunk);
    this.chunks.delete(answer.chunk);
    done?.(answer);
  }

  /**
   * Queues a command for this turn's message to the shard; null when the shard's queue is full.
   * `onResult` runs synchronously when the result is read, before anything the shard sent after it:
   * a subscription's snapshot must be in place before the next result's update is delivered (a
   * promise continuation runs only after the whole message, and dropped that update as "before the
   * snapshot": a gap).
   */
  submit(body: CommandBody, onResult?: Pending): Promise<CommandResult> | null {
    if (this.pending.size >= this.commandsQueuedMax) return null;
    const cmd = { ...body, id: this.nextId++ } as Command;
    if (onResult !== undefined) this.onResults.set(cmd.id, onResult);
    const done = new Promise<CommandResult>((resolve) => this.pending.set(cmd.id, resolve));
    this.queued.push(cmd);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Once per event-loop turn, not per microtask checkpoint: uWS drains microtasks after every
      // incoming message, so a microtask flush would cost one postMessage round trip per WS trade.
      setImmediate(() => this.flush());
    }
    return done;
  }

  /**
   * Holds commands (they queue; the bound still applies) while a corporate step runs, so that nothing
   * the shard does after the step reaches the log before the step's events. What was queued before the
   * hold is posted first: it was submitted before the step.
   */
  hold(on: boolean): void {
    if (on) this.flush();
    this.held = on;
    if (!on && this.queued.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Posts one command at once, past a hold: the corporate step's own messages. */
  submitNow(body: CommandBody): Promise<CommandResult> {
    const cmd = { ...body, id: this.nextId++ } as Command;
    const done = new Promise<CommandResult>((resolve) => this.pending.set(cmd.id, resolve));
    if (this.state !== 'ready') this.resolve({ id: cmd.id, error: shardRestartingError(this.index), snapshot: null, trade: null, events: [], update: null });
    else this.post({ t: 'commands', commands: [cmd] });
    return done;
  }

  resolve(result: CommandResult): void {
    const done = this.pending.get(result.id);
    this.pending.delete(result.id);
    const now = this.onResults.get(result.id);
    if (now !== undefined) {
      this.onResults.delete(result.id);
      now(result);
    }
    done?.(result);
  }

  /** Answers every command still waiting with the error (the shard died or the engine closes). */
  failAll(error: EngineError): void {
    const waiting = [...this.pending.entries()];
    const chunks = [...this.chunks.entries()];
    this.pending.clear();
    this.onResults.clear();
    this.chunks.clear();
    this.queued = [];
    for (const [id, done] of waiting) done({ id, error, snapshot: null, trade: null, events: [], update: null });
    for (const [chunk, done] of chunks) {
      done({
        t: 'tradeChunkDone', chunk, kinds: new Uint8Array(0), realized: new Float64Array(0), now: 0, errors: [],
        eventBytes: new Uint8Array(0), eventEnds: new Int32Array(0), eventTypes: new Uint8Array(0), eventTrades: new Int32Array(0), eventObjects: [], updates: [], failed: error,
      });
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.queued.length === 0 || this.held) return;
    if (this.state !== 'ready') {
      this.failAll(shardRestartingError(this.index));
      return;
    }
    const queued = this.queued;
    this.queued = [];
    let commands: Command[] = [];
    for (const q of queued) {
      if (!('chunk' in q)) {
        commands.push(q);
        continue;
      }
      // A chunk goes after the commands queued before it, as its own message, its buffer transferred.
      this.postCommands(commands);
      commands = [];
      this.post({ t: 'tradeChunk', chunk: q.chunk, bytes: q.bytes, count: q.count, now: q.now }, [q.bytes.buffer as ArrayBuffer]);
    }
    this.postCommands(commands);
  }

  private postCommands(commands: Command[]): void {
    if (commands.length === 0) return;
    if (commands.length <= this.commandsPerMessageMax) this.postMessageOf(commands);
    else for (let i = 0; i < commands.length; i += this.commandsPerMessageMax) this.postMessageOf(commands.slice(i, i + this.commandsPerMessageMax));
  }

  /**
   * One message's commands, in order: runs of trades (not dry runs) packed as 'tradeCommands' (one
   * transferred buffer, tradeChunk.ts: no structured clone per trade), the others as 'commands'.
   */
  private postMessageOf(commands: Command[]): void {
    let from = 0;
    while (from < commands.length) {
      let to = from;
      const packed = isPackedTrade(commands[from]);
      while (to < commands.length && isPackedTrade(commands[to]) === packed) to++;
      const run = from === 0 && to === commands.length ? commands : commands.slice(from, to);
      if (!packed) this.post({ t: 'commands', commands: run });
      else {
        const trades = run as Extract<Command, { kind: 'trade' }>[];
        const ids = new Int32Array(trades.length);
        const now = new Float64Array(trades.length);
        for (let i = 0; i < trades.length; i++) {
          ids[i] = trades[i].id;
          now[i] = trades[i].now;
        }
        const bytes = encodeTradeChunk(trades.map((c) => ({ portfolio: c.portfolio, trade: c.trade })));
        this.post({ t: 'tradeCommands', ids, now, bytes }, [ids.buffer, now.buffer, bytes.buffer] as ArrayBuffer[]);
      }
      from = to;
    }
  }
}
