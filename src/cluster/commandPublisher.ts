// The receiving side of the command path (docs/CLUSTER.md): whichever node a client talks to
// publishes the command to the command stream on its partition's subject, with the trade id (or a
// fresh command id) as Nats-Msg-Id, and waits on its own inbox for the owner's answer, which the
// owner sends only after its LMDB commit. A publish JetStream reports as a duplicate (the same trade
// id within the dedup window) was not stored, so nobody would answer that inbox: it is published
// again without a message id, and the owner answers it from its trade-id memory (applied: false).
// Unless the stored message is this very request (its reply inbox is ours: the publish reached the
// stream twice, as seen under a restart of every nats-server): then the owner answers our inbox as
// for any first publish, and the client learns applied: true, not a false "duplicate".
// Bounded: at most commandsInFlightMax requests wait at once; each waits commandReplyTimeoutMs.

import { randomUUID } from 'node:crypto';
import { createInbox, type NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { ErrorCode, fail, type EngineError, type Result } from '../errors.js';
import { commandBytesMax, commandVersion, decodeAnswer, decodeCommand, encodeCommand, type CommandOp } from './commandCodec.js';
import { partitionOf } from './partition.js';
import { clusterSubjects as names } from './subjects.js';

export interface PublisherOptions {
  partitions: number;
  /** How long a receiving node waits for the owner's answer before answering partition_unavailable (retryable). */
  commandReplyTimeoutMs: number;
  /** Requests waiting for an answer at once; past it new commands are refused (retryable). */
  commandsInFlightMax: number;
}

export const publisherDefaults = { commandReplyTimeoutMs: 15_000, commandsInFlightMax: 4_096 } as const;

export class CommandPublisher {
  private inFlight = 0;
  published = 0;
  duplicates = 0;
  /** Duplicate acks that named this very request (the publish reached the stream twice). */
  ownDuplicates = 0;
  timeouts = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly o: PublisherOptions,
  ) {}

  /**
   * msgId: the dedup key (portfolio + trade id for a trade); undefined: a fresh id (no dedup beyond our
   * own retries). commandId: a non-trade command's idempotency id, carried in the body (the owner
   * applies it once per portfolio) and named in a timeout answer so the client can resend it.
   */
  async send(op: CommandOp, portfolio: string, args: unknown, msgId?: string, commandId?: string): Promise<Result<unknown>> {
    if (this.inFlight >= this.o.commandsInFlightMax) return fail(ErrorCode.limit_exceeded, `cluster commands in flight must be <= ${this.o.commandsInFlightMax}; retry shortly`, undefined, true);
    this.inFlight++;
    try {
      const first = await this.once(op, portfolio, args, msgId ?? randomUUID(), commandId);
      if (first !== 'duplicate') return first;
      this.duplicates++;
      const again = await this.once(op, portfolio, args, undefined, commandId);
      return again === 'duplicate' ? fail(ErrorCode.partition_unavailable, 'cluster: the command stream refused the command twice as a duplicate', undefined, true) : again;
    } finally {
      this.inFlight--;
    }
  }

  private async once(op: CommandOp, portfolio: string, args: unknown, msgId: string | undefined, commandId: string | undefined): Promise<Result<unknown> | 'duplicate'> {
    const partition = partitionOf(portfolio, this.o.partitions);
    const reply = createInbox();
    const body = encodeCommand({ v: commandVersion, op, portfolio, args, reply, ...(commandId === undefined ? {} : { command_id: commandId }) });
    if (body.length > commandBytesMax) return fail(ErrorCode.payload_too_large, `command: body must be <= ${commandBytesMax} bytes, got ${body.length}`, 'command');
    const sub = this.nc.subscribe(reply, { max: 1 });
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = (async (): Promise<Result<unknown>> => {
        for await (const m of sub) return decodeAnswer(m.data);
        return fail(ErrorCode.partition_unavailable, `cluster: no answer for partition ${partition}`, undefined, true);
      })();
      let ack;
      try {
        ack = await this.js.publish(names.command(partition), body, { ...(msgId === undefined ? {} : { msgID: msgId }), timeout: this.o.commandReplyTimeoutMs });
      } catch (err) {
        return unavailable(`cluster: the command stream did not take the command (${String(err)}); retry`, commandId);
      }
      if (ack.duplicate && !(await this.storedIsOurs(ack.seq, reply))) return 'duplicate';
      this.published++;
      const timeout = new Promise<Result<unknown>>((resolve) => {
        timer = setTimeout(() => {
          this.timeouts++;
          resolve(
            unavailable(
              `cluster: partition ${partition} did not answer within ${this.o.commandReplyTimeoutMs} ms (stream seq ${ack.seq}); it is applied when its owner reaches it: ${
                commandId === undefined ? 'retry a trade with the same trade_id to learn its result' : `resend it with command_id=${commandId} to apply it at most once`
              }`,
              commandId,
            ),
          );
        }, this.o.commandReplyTimeoutMs);
      });
      return await Promise.race([answer, timeout]);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      sub.unsubscribe();
    }
  }

  /** Whether the stream's message at seq (the original a duplicate ack names) carries our reply inbox. */
  private async storedIsOurs(seq: number, reply: string): Promise<boolean> {
    try {
      const stored = await this.jsm.streams.getMessage(names.commandStream, { seq });
      if (stored === null) return false;
      const c = decodeCommand(stored.data);
      const ours = c.ok && c.value.reply === reply;
      if (ours) this.ownDuplicates++;
      return ours;
    } catch {
      // Unknown (the stream is moving): answer as for another request's duplicate; a trade resent
      // with its id still learns its result from the owner's trade-id memory.
      return false;
    }
  }
}

/** 503 partition_unavailable (retryable), naming the command id a non-trade command may be resent with. */
function unavailable(message: string, commandId: string | undefined): { ok: false; error: EngineError } {
  return { ok: false, error: { code: ErrorCode.partition_unavailable, message, retryable: true, ...(commandId === undefined ? {} : { command_id: commandId }) } };
}
