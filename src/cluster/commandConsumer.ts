// The owner's side of the command path (docs/CLUSTER.md): one ordered JetStream consumer per owned
// partition, filtered on its subject, starting right after the partition's cursor in this node's
// LMDB store. Each message is applied through the local engine at its stream position
// (engine.applyAt: the cursor commits in the same transaction as the events), strictly one after the
// other, and only then answered on the message's reply subject. A message at or below the cursor
// (a redelivery) is skipped. Before every apply the claim must still be current (same epoch, lease
// fresh): a stale owner applies nothing and gives the partition up. A message that is not a command
// is refused with a clear error, logged and counted, and only the cursor moves.

import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { CorporateScope, Engine } from '../engine/api.js';
import { ErrorCode, fail, type Result } from '../errors.js';
import { decodeCommand, encodeAnswer, type StreamCommand } from './commandCodec.js';
import { clusterSubjects as names } from './subjects.js';
import { partitionOf } from './partition.js';
import type { ClusterCounters } from './counters.js';
import type { RecentResult } from './recentResults.js';
import { commandKey } from '../engine/streamPosition.js';
import type { TradeResult } from '../domain/types.js';

/**
 * Pull request lifetime of a partition's consumer (the server heartbeats every half of it). The client's
 * default (30 s) noticed a consumer lost with a stream leader only after tens of seconds (found by
 * test/cluster.natsFaults.test.ts: kill -9 of the leader left a partition unanswered); at 2 s a lost
 * consumer is recreated within about 2 s, for one small request per partition per 2 s when idle.
 */
export const consumerPullExpiresMs = 2_000;

/** Wait before applying a message again after a retryable refusal (shard restarting, store behind). */
export const retryAfterMs = 50;

export interface ConsumerCounters {
  applied: number;
  skipped: number;
  badMessages: number;
}

export interface ConsumerDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  engine: Engine;
  /** The fencing check (Ownership.current): false once the claim is lost or its lease ran out. */
  current: (partition: number, epoch: number) => boolean;
  /** Gives the partition up at once (Ownership.fence). */
  fence: (partition: number) => void;
  counters: ConsumerCounters;
  /** The node's cluster counters (counters.ts): refused stream messages, each partition's pending messages. */
  cluster: ClusterCounters;
  /** The partition count (a corporate action's scope is the partition's portfolios). */
  partitions: number;
  /** A corporate action was announced on the partition: its first step may be due at once. */
  onCorporate?: (partition: number) => void;
  log: (line: string) => void;
  /**
   * Checked once the consumer exists and before it delivers anything (takeover.ts gap): a reason means
   * the stream may have a gap after the cursor, and the start fails (nothing applied).
   */
  guard?: (partition: number, cursor: number) => Promise<string | null>;
  /** A trade or command result applied (not answered from memory): kept to travel with the partition's snapshot (recentResults.ts). */
  remember?: (partition: number, r: RecentResult) => void;
}

/** A partition's portfolios as the engine's corporate desk scopes them (the engine knows no partitions). */
export function partitionScope(partition: number, partitions: number): CorporateScope {
  return { name: `p${partition}`, keep: (id) => partitionOf(id, partitions) === partition };
}

/**
 * Runs one decoded command against the local engine (validation happens there, as for a local call).
 * scope: the consumer's partition, for the broadcast operations (corporate actions apply to its
 * portfolios only).
 */
export function applyCommand(engine: Engine, c: StreamCommand, scope: CorporateScope): Promise<Result<unknown>> {
  const id = c.portfolio;
  const args = c.args as never;
  if (c.op === 'corporate' || c.op === 'corporateStep' || c.op === 'instrument') return applyBroadcast(engine, c, scope);
  // A resend of a command already applied (its command_id recorded with its events): answered with
  // the portfolio as it is now, not applied again.
  if (c.command_id !== undefined && c.op !== 'trade' && c.op !== 'create' && engine.commandApplied(id, c.command_id)) return engine.snapshot(id);
  switch (c.op) {
    case 'create': {
      const input = (typeof c.args === 'object' && c.args !== null ? c.args : {}) as Record<string, unknown>;
      // The receiving node chose the id (it names the partition): the body must agree with it.
      if (input.id !== id) return Promise.resolve(fail(ErrorCode.invalid_id, `command: create's args.id must equal its portfolio '${id}'`, 'id'));
      return engine.createPortfolio(args);
    }
    case 'trade':
      return engine.trade(id, args);
    case 'cash':
      return engine.cash(id, args);
    case 'fxConvert':
      return engine.convertCash(id, args);
    case 'limits':
      return engine.setLimits(id, args);
    case 'pause':
      return engine.pause(id);
    case 'resume':
      return engine.resume(id);
    case 'close':
      return engine.closePortfolio(id);
  }
}

/** The operations every partition's stream carries (broadcast.ts), each at its point of the stream. */
function applyBroadcast(engine: Engine, c: StreamCommand, scope: CorporateScope): Promise<Result<unknown>> {
  if (c.op === 'instrument') {
    if (c.portfolio !== names.instrumentsStreamPortfolio) return Promise.resolve(fail(ErrorCode.invalid_field, `command: instrument's portfolio must be '${names.instrumentsStreamPortfolio}'`, 'portfolio'));
    const a = (typeof c.args === 'object' && c.args !== null ? c.args : {}) as { symbol?: unknown; input?: unknown };
    return engine.defineInstrument(a.symbol as string, a.input);
  }
  if (c.portfolio !== names.corporateStreamPortfolio) return Promise.resolve(fail(ErrorCode.invalid_field, `command: ${c.op}'s portfolio must be '${names.corporateStreamPortfolio}'`, 'portfolio'));
  return c.op === 'corporate' ? engine.corporateAnnounceIn(scope, c.args) : engine.corporateStepIn(scope, c.args);
}

export class PartitionConsumer {
  private stopped = false;
  private messages: ConsumerMessages | null = null;
  /** The stream's last sequence on this subject when the claim began: served once applied up to it. */
  private target = 0;
  private readyResolve: (() => void) | null = null;
  private readyReject: ((err: Error) => void) | null = null;
  /** Caught up with the stream as it was at the claim (served from then on). */
  ready = false;
  /** Tail of the chain every apply and every exclusive() section runs on, one at a time. */
  private turn: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly d: ConsumerDeps,
    readonly partition: number,
    readonly epoch: number,
  ) {}

  /** Starts consuming after the cursor; resolves once caught up with the stream as it was at the claim. */
  async start(): Promise<void> {
    // Made before the first await, so a stop() during any of them (the partition lost while loading)
    // settles it: made after the first one, a stop() in between left it pending and the claim's round
    // waiting forever. The no-op handler is there because that rejection can come while no one awaits
    // it yet (we are in an await below), and an unhandled rejection kills the process (the cluster
    // simulator, --nats-servers 3 seed 201: two nodes died of "partition 1 dropped while loading" after
    // a NATS leader restart); the caller still sees it through the promise returned.
    const ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    ready.catch(() => undefined);
    if (this.stopped) this.stop();
    const subject = names.command(this.partition);
    const last = await this.d.jsm.streams.getMessage(names.commandStream, { last_by_subj: subject }).catch(() => null);
    if (this.stopped) return ready;
    this.target = last?.seq ?? 0;
    const cursor = this.d.engine.streamCursor(this.partition);
    if (cursor >= this.target) this.markReady();
    const consumer = await this.d.js.consumers.get(names.commandStream, {
      filter_subjects: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: cursor + 1,
    });
    if (this.stopped) return ready;
    const gap = this.d.guard === undefined ? null : await this.d.guard(this.partition, cursor);
    if (gap !== null) {
      this.stop();
      throw new Error(`partition ${this.partition}: not started after stream seq ${cursor}: ${gap}`);
    }
    if (this.stopped) return ready;
    this.messages = await consumer.consume({ max_messages: 256, expires: consumerPullExpiresMs });
    if (this.stopped) this.messages.stop();
    void this.loop(this.messages).catch((err: unknown) => {
      this.d.log(`cluster: partition ${this.partition} consumer ended: ${String(err)}`);
      this.readyReject?.(err instanceof Error ? err : new Error(String(err)));
    });
    return ready;
  }

  /** Synchronous: nothing is applied after this returns (the loop checks the flag before each apply). */
  stop(): void {
    this.stopped = true;
    this.ready = false;
    this.messages?.stop();
    this.readyReject?.(new Error(`partition ${this.partition} dropped while loading`));
    this.readyReject = null;
    this.readyResolve = null;
  }

  /**
   * Runs fn between two applies of this partition: nothing is applied while it runs, so the engine's
   * state of the partition is exactly the state after its stream cursor (a shipped snapshot's cut).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  private markReady(): void {
    if (!this.stopped) this.ready = true;
    this.readyResolve?.();
    this.readyResolve = null;
    this.readyReject = null;
  }

  private async loop(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      if (this.stopped) return;
      const seq = m.seq;
      this.d.cluster.consumerPending[this.partition] = m.info.pending;
      if (seq <= this.d.engine.streamCursor(this.partition)) {
        this.d.counters.skipped++;
      } else {
        if (!this.d.current(this.partition, this.epoch)) {
          this.d.log(`cluster: partition ${this.partition}: claim epoch ${this.epoch} is no longer current at stream seq ${seq}; fenced, nothing applied`);
          this.stop();
          this.d.fence(this.partition);
          return;
        }
        await this.exclusive(() => this.apply(m.data, seq, m.info.timestampNanos / 1e6));
        if (this.stopped) return;
      }
      if (seq >= this.target) this.markReady();
    }
  }

  private async apply(data: Uint8Array, seq: number, ts: number): Promise<void> {
    const decoded = decodeCommand(data);
    const commandId = decoded.ok && decoded.value.op !== 'trade' && decoded.value.op !== 'create' ? decoded.value.command_id : undefined;
    const position = commandId === undefined ? { partition: this.partition, seq } : { partition: this.partition, seq, commandId };
    if (!decoded.ok) {
      this.d.counters.badMessages++;
      this.d.cluster.badInput.commands++;
      this.d.log(`cluster: refused stream message ${names.commandStream} seq ${seq} on partition ${this.partition}: ${decoded.error.message}; nothing applied`);
      await this.d.engine.applyAt(position, () => Promise.resolve(decoded));
      return;
    }
    const c = decoded.value;
    const scope = partitionScope(this.partition, this.d.partitions);
    let r = await this.d.engine.applyAt(position, () => applyCommand(this.d.engine, c, scope));
    // Retryable (a shard restarting, the store behind): nothing was applied and the cursor did not
    // move. Skipping it would leave this node's state without a command its previous owner applied.
    while (!r.ok && r.error.retryable === true && !this.stopped) {
      await new Promise((resolve) => setTimeout(resolve, retryAfterMs));
      if (!this.d.current(this.partition, this.epoch)) {
        // Nothing after this message may be applied by this consumer: it would skip it.
        this.stop();
        this.d.fence(this.partition);
        return;
      }
      r = await this.d.engine.applyAt(position, () => applyCommand(this.d.engine, c, scope));
    }
    this.d.counters.applied++;
    if (r.ok && this.d.remember !== undefined) {
      if (c.op === 'trade' && (r.value as TradeResult).applied === true) this.d.remember(this.partition, { portfolio_id: c.portfolio, trade_id: (r.value as TradeResult).trade_id, result: r.value, ts });
      else if (commandId !== undefined) this.d.remember(this.partition, { portfolio_id: c.portfolio, trade_id: commandKey(commandId), result: { seq }, ts });
    }
    if (c.op === 'corporate' && r.ok && this.ready) this.d.onCorporate?.(this.partition);
    // A broadcast refused by this owner is nobody's answer: logged (the others may have applied it).
    if (!r.ok && c.reply === undefined && (c.op === 'corporate' || c.op === 'corporateStep' || c.op === 'instrument')) {
      this.d.log(`cluster: partition ${this.partition}: ${c.op} at stream seq ${seq} refused: ${r.error.code}: ${r.error.message}`);
    }
    if (c.reply !== undefined && !this.stopped) this.d.nc.publish(c.reply, encodeAnswer(r));
  }
}
