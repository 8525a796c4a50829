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
}

const running = new AsyncLocalStorage<StreamPosition>();

export function atPosition<T>(position: StreamPosition, run: () => Promise<T>): Promise<T> {
  return running.run(position, run);
}

/** The position of the stream message whose command is running here, if any. */
export function currentPosition(): StreamPosition | undefined {
  return running.getStore();
}
