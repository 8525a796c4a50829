// The command-stream position a command runs at (cluster mode, docs/CLUSTER.md). A cluster node's
// consumer runs each stream message's command inside atPosition(); Commit.run reads the position
// where the shard's answer is read and advances the store's cursor for that partition in the same
// synchronous step that appends the command's events, so both land in one LMDB transaction. The
// engine knows a position only as (partition, seq): nothing of NATS. AsyncLocalStorage carries it
// through the command's awaits, so every command path (create, trade, cash, limits, ...) takes it
// without a parameter threaded through each of them.

import { AsyncLocalStorage } from 'node:async_hooks';

export interface StreamPosition {
  readonly partition: number;
  readonly seq: number;
  /**
   * A non-trade command's idempotency id (cluster: the client's or the receiving node's command_id).
   * Commit.run records it with the command's events and cursor, so a resend of the command after a
   * timeout is recognised (engine.commandApplied) and not applied twice.
   */
  readonly commandId?: string;
}

/**
 * The idempotency table's key of a command id (store.tradeResult, beside trade ids): a trade id
 * matches [A-Za-z0-9._:/-], so the U+001F prefix cannot collide with one.
 */
export function commandKey(commandId: string): string {
  return `\u001fcmd:${commandId}`;
}

const running = new AsyncLocalStorage<StreamPosition>();

export function atPosition<T>(position: StreamPosition, run: () => Promise<T>): Promise<T> {
  return running.run(position, run);
}

/** The position of the stream message whose command is running here, if any. */
export function currentPosition(): StreamPosition | undefined {
  return running.getStore();
}
