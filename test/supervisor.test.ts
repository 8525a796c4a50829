// Proves the one worker supervision pattern (src/workers/supervisor.ts) with real worker threads, no
// mocks: a worker that dies is answered for (onDeath), restarted after the delay and resynced
// (onRestarted, with the reason it died); a death while the owner stops, or a stop during the delay,
// restarts nothing; a restart that fails goes to onRestartFailed.

import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Supervisor, type SupervisedWorker } from '../src/workers/supervisor.js';

// A worker that says it is ready, then exits with the code it is sent.
const source = `
const { parentPort } = require('node:worker_threads');
parentPort.postMessage('ready');
parentPort.on('message', (code) => process.exit(code));
`;

const live = new Set<Worker>();
afterEach(async () => {
  await Promise.all([...live].map((w) => w.terminate()));
  live.clear();
});

/** An owner that records what the supervisor asked of it, in order. */
class Owner implements SupervisedWorker {
  readonly steps: string[] = [];
  worker: Worker | null = null;
  starts = 0;
  restartMs = -1;
  failStartsFrom = Infinity;
  restarted: Promise<void>;
  private restartedResolve!: () => void;

  constructor() {
    this.restarted = new Promise((r) => (this.restartedResolve = r));
  }

  async start(died: (reason: unknown) => void): Promise<void> {
    this.starts++;
    this.steps.push(`start ${this.starts}`);
    if (this.starts >= this.failStartsFrom) throw new Error(`start ${this.starts} refused`);
    const worker = new Worker(source, { eval: true });
    live.add(worker);
    await new Promise<void>((resolve) => worker.once('message', () => resolve()));
    worker.on('exit', (code) => {
      live.delete(worker);
      if (this.worker === worker) died(code);
    });
    this.worker = worker;
  }

  onDeath(reason: unknown): void {
    this.steps.push(`death ${String(reason)}`);
    this.worker = null;
  }

  onRestarted(reason: unknown, restartMs: number): void {
    this.steps.push(`restarted after ${String(reason)}`);
    this.restartMs = restartMs;
    this.restartedResolve();
  }

  onRestartFailed(err: unknown): void {
    this.steps.push(`failed: ${(err as Error).message}`);
    this.restartedResolve();
  }
}

const until = async (cond: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('Supervisor', () => {
  it('answers for a dead worker, restarts it after the delay, and resyncs it', async () => {
    const owner = new Owner();
    const s = new Supervisor(owner, { restartDelayMs: 50, stopping: () => false });
    await s.start();
    const first = owner.worker;
    const diedAt = Date.now();
    first?.postMessage(3);
    await owner.restarted;
    expect(Date.now() - diedAt).toBeGreaterThanOrEqual(50);
    expect(owner.steps).toEqual(['start 1', 'death 3', 'start 2', 'restarted after 3']);
    expect(owner.worker).not.toBe(first);
    expect(owner.worker).not.toBeNull();
    expect(owner.restartMs).toBeGreaterThanOrEqual(0);
  });

  it('restarts nothing once the owner stops, nor when it stops during the delay', async () => {
    let stopping = false;
    const owner = new Owner();
    const s = new Supervisor(owner, { restartDelayMs: 200, stopping: () => stopping });
    await s.start();
    owner.worker?.postMessage(1);
    await until(() => owner.steps.includes('death 1'));
    stopping = true; // during the delay
    await new Promise((r) => setTimeout(r, 300));
    expect(owner.steps).toEqual(['start 1', 'death 1']);

    const stopped = new Owner();
    const t = new Supervisor(stopped, { restartDelayMs: 0, stopping: () => true });
    await t.start();
    const w = stopped.worker;
    w?.postMessage(2);
    await until(() => w !== null && !live.has(w));
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped.steps).toEqual(['start 1']);
  });

  it('hands a failed restart to onRestartFailed', async () => {
    const owner = new Owner();
    owner.failStartsFrom = 2;
    const s = new Supervisor(owner, { restartDelayMs: 0, stopping: () => false });
    await s.start();
    owner.worker?.postMessage(7);
    await owner.restarted;
    expect(owner.steps).toEqual(['start 1', 'death 7', 'start 2', 'failed: start 2 refused']);
  });
});
