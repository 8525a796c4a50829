// Builds the persisted state the recovery scenario restarts from.
//   phase 'base': P portfolios x K positions (bench/workload.ts holdings: P creations + P*K trades),
//                 then a clean shutdown (mtm: engine.close(), which writes the columnar snapshot);
//   phase 'tail': E more trades (1 unit bought on existing holdings, round-robin), acknowledged, then
//                 the process kills itself with SIGKILL: a crash with E events since the last clean
//                 shutdown (mtm runs this phase through the engine with snapshots deferred by a day,
//                 so none is taken).
// mtm's base is written by the bulk path (bench/scenarios/bulkBase.ts): the engine's own shard code decides every
// event and trade result (in-process Shards, the same `Shard.commands` a worker runs), and they are
// appended straight to the store in large batches, skipping the per-command round trips and acks
// that made 2.6M commands take over an hour. The engine then starts on that log (a full replay) and
// closes cleanly, which writes its snapshot. The result is the state the engine path writes: the same
// events with the same bodies and the same trade results, each portfolio's events in the same order
// (test/recoveryBuild.test.ts compares both paths); only timestamps, the interleaving of different
// portfolios' seqs and per-portfolio update seqs (epochs) differ.
// The peer's journal is written in its own JSON-lines format (bench/peer/book.ts), in large appends
// since building is not what is measured.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { W1, holdingsOf, portfolioId, type Holding, type Workload } from '../workload.js';
import { childConfig, exitWithParent, fatal, send } from '../loadgen/common.js';
import type { PeerEvent } from '../peer/book.js';
import { bulkBase } from './bulkBase.js';

export interface RecoveryBuildConfig {
  system: 'mtm' | 'peer';
  dir: string;
  portfolios: number;
  positions: number;
  events: number;
  phase: 'base' | 'tail';
}

export interface RecoveryBuildDone {
  type: 'done';
  events: number;
  failed: number;
  ms: number;
}

const inFlightMax = 2_000;

function recoveryWorkload(c: { portfolios: number; positions: number }): Workload {
  return { ...W1, portfolios: c.portfolios, positionsPerPortfolio: c.positions };
}

function tailTrade(i: number, holdings: Holding[]): { portfolio: string; trade_id: string; symbol: string; price: number } {
  const h = holdings[i % holdings.length];
  return { portfolio: h.portfolio, trade_id: `tail-${i}`, symbol: h.symbol, price: h.price };
}

async function mtm(c: RecoveryBuildConfig, w: Workload): Promise<RecoveryBuildDone> {
  // Loaded here only: building the peer's journal must not depend on the engine's modules.
  const { createEngine } = await import('../../src/engine/engine.js');
  const t0 = performance.now();
  if (c.phase === 'base') {
    await bulkBase(c.dir, w);
    // The clean shutdown that ends the base: the engine recovers the log and snapshots on close.
    const engine = await createEngine({ dataDir: c.dir });
    await engine.close();
    // Commands, as the peer counts its journal (bulkBase also wrote a PositionOpened per holding).
    return { type: 'done', events: w.portfolios + holdingsOf(w).length, failed: 0, ms: performance.now() - t0 };
  }
  const engine = await createEngine({ dataDir: c.dir, snapshotIntervalMs: 86_400_000 });
  const holdings = holdingsOf(w);
  let failed = 0;
  let inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < c.events; i++) {
    const t = tailTrade(i, holdings);
    inFlight.push(
      engine.trade(t.portfolio, { trade_id: t.trade_id, symbol: t.symbol, side: 'buy', quantity: 1, price: t.price }).then((r) => {
        if (!r.ok) failed++;
      }),
    );
    if (inFlight.length >= inFlightMax) await Promise.all(inFlight.splice(0));
  }
  await Promise.all(inFlight);
  inFlight = [];
  return { type: 'done', events: c.events, failed, ms: performance.now() - t0 };
}

function peer(c: RecoveryBuildConfig, w: Workload): RecoveryBuildDone {
  const t0 = performance.now();
  const path = join(c.dir, 'journal.jsonl');
  let chunk: string[] = [];
  let events = 0;
  const add = (e: PeerEvent): void => {
    chunk.push(JSON.stringify(e));
    events++;
    if (chunk.length >= 10_000) {
      appendFileSync(path, chunk.join('\n') + '\n');
      chunk = [];
    }
  };
  const holdings = holdingsOf(w);
  if (c.phase === 'base') {
    for (let p = 0; p < w.portfolios; p++) add({ t: 'c', id: portfolioId(p), cash: 1_000_000 });
    let n = 0;
    for (const h of holdings) add({ t: 'x', p: h.portfolio, id: 'seed-' + n++, s: h.symbol, side: 'buy', q: h.quantity, px: h.price });
  } else {
    for (let i = 0; i < c.events; i++) {
      const t = tailTrade(i, holdings);
      add({ t: 'x', p: t.portfolio, id: t.trade_id, s: t.symbol, side: 'buy', q: 1, px: t.price });
    }
  }
  if (chunk.length > 0) appendFileSync(path, chunk.join('\n') + '\n');
  return { type: 'done', events, failed: 0, ms: performance.now() - t0 };
}

async function main(): Promise<void> {
  // A build outliving its orchestrator would write for minutes into a directory nobody reads.
  exitWithParent();
  const c = childConfig<RecoveryBuildConfig>();
  const w = recoveryWorkload(c);
  const done = c.system === 'mtm' ? await mtm(c, w) : peer(c, w);
  if (c.system === 'mtm' && c.phase === 'tail') {
    // The crash: every trade is acknowledged (durable), nothing is shut down.
    if (process.send === undefined) process.kill(process.pid, 'SIGKILL');
    else process.send(done, () => process.kill(process.pid, 'SIGKILL'));
    return;
  }
  send(done);
  process.exit(0);
}

main().catch(fatal);
