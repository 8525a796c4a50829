// The one worker supervision pattern, for the shard workers (a piscina task each) and the market
// worker (a raw Worker): start an incarnation and wait until it is ready; when it dies, let the owner
// answer what waited on it, wait the restart delay if any, start a new incarnation, let the owner
// resync it. Nothing is restarted once the owner stops. The owner keeps its own counters and logs.

import { performance } from 'node:perf_hooks';

export interface SupervisedWorker {
  /**
   * Starts one incarnation and resolves once it is ready. Calls `died` (at most once) when that
   * incarnation dies; a start that fails before it runs rejects instead.
   */
  start(died: (reason: unknown) => void): Promise<void>;
  /** The incarnation died: answer what waited on it (before the restart). */
  onDeath(reason: unknown): void | Promise<void>;
  /** A new incarnation is ready after `restartMs`: bring it up to date. */
  onRestarted?(reason: unknown, restartMs: number): void | Promise<void>;
  /** A restart failed; without this hook the error propagates (unhandled). */
  onRestartFailed?(err: unknown): void;
}

export interface SupervisorOptions {
  /** Pause between a death and the restart (0: restart at once). */
  restartDelayMs: number;
  /** True once the owner stops: deaths are then not restarted. */
  stopping: () => boolean;
}

export class Supervisor {
  constructor(
    private readonly worker: SupervisedWorker,
    private readonly o: SupervisorOptions,
  ) {}

  /** Starts the first incarnation. */
  start(): Promise<void> {
    return this.worker.start((reason) => void this.died(reason));
  }

  private async died(reason: unknown): Promise<void> {
    if (this.o.stopping()) return;
    await this.worker.onDeath(reason);
    if (this.o.restartDelayMs > 0) {
      await new Promise((r) => setTimeout(r, this.o.restartDelayMs));
      // A delay may outlast the owner.
      if (this.o.stopping()) return;
    }
    const started = performance.now();
    try {
      await this.start();
    } catch (err) {
      if (this.worker.onRestartFailed === undefined) throw err;
      this.worker.onRestartFailed(err);
      return;
    }
    await this.worker.onRestarted?.(reason, performance.now() - started);
  }
}
