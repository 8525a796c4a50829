// Shared setup for tests that run a real engine: real shard workers (from dist/, built on demand)
// and real LMDB in a temp dir.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineMessage } from '../../src/engine/api.js';
import type { PortfolioSnapshot, PortfolioUpdate } from '../../src/domain/types.js';

const root = join(import.meta.dirname, '..', '..');

/** Builds dist/ when a test runs on a tree that was never built (npm test builds first anyway). */
export function ensureBuilt(): void {
  if (existsSync(join(root, 'dist/src/shard/worker.js')) && existsSync(join(root, 'dist/assembly/kernel.wasm'))) return;
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
}

export function tempDir(prefix = 'mtm-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Collects what a subscription delivers and lets a test wait for a condition on it. */
export class Inbox {
  readonly messages: EngineMessage[] = [];
  private waiters: { check: () => boolean; resolve: () => void }[] = [];

  readonly listener = (m: EngineMessage): void => {
    this.messages.push(m);
    this.waiters = this.waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  };

  snapshots(): PortfolioSnapshot[] {
    return this.messages.flatMap((m) => (m.kind === 'snapshot' ? [m.snapshot] : []));
  }

  updates(): PortfolioUpdate[] {
    return this.messages.flatMap((m) => (m.kind === 'update' ? [m.update] : []));
  }

  until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`condition not met within ${timeoutMs} ms; got ${JSON.stringify(this.messages).slice(0, 500)}`)), timeoutMs);
      this.waiters.push({ check, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the engine has revalued everything ingested so far. */
export async function settle(engine: { stats(): { batches: number } }, ms = 30): Promise<void> {
  await sleep(ms);
}

/**
 * Crashes the shard worker that owns the portfolio and waits until the engine restarted it from the
 * store (snapshot + replay). Needs an engine created with allowFaultInjection.
 */
export async function crashShardOf(
  engine: { shardOf(id: string): number; crashShard(shard: number, how?: 'throw' | 'exit' | 'heap'): { ok: boolean }; stats(): { shardRestarts: number }; shardStats(): { state: string }[] },
  portfolio: string,
): Promise<void> {
  const shard = engine.shardOf(portfolio);
  const restarts = engine.stats().shardRestarts;
  if (!engine.crashShard(shard, 'throw').ok) throw new Error('crashShard refused: allowFaultInjection is off');
  const started = Date.now();
  while (engine.stats().shardRestarts <= restarts || engine.shardStats()[shard].state !== 'ready') {
    if (Date.now() - started > 30_000) throw new Error('shard did not restart in 30 s');
    await sleep(20);
  }
}
