// Builds the persisted state the recovery scenario restarts from.
//   phase 'base': P portfolios x K positions (bench/workload.ts holdings: P creations + P*K trades),
//                 then a clean shutdown (mtm: engine.close(), which writes the columnar snapshot);
//   phase 'tail': E more trades (1 unit bought on existing holdings, round-robin), acknowledged, then
//                 the process kills itself with SIGKILL: a crash with E events since the last clean
//                 shutdown. mtm runs this phase through the engine, by default with its own snapshot
//                 settings (tailSnapshots 'engine': a round every snapshotTailEventsMax events, so the
//                 crash leaves a bounded tail, what a running engine leaves; each round's figures are
//                 printed as a JSON line), or with snapshots deferred by a day and the tail bound off
//                 (tailSnapshots 'deferred': all E events after the last snapshot, the worst case;
//                 docs/BENCHMARKS.md "Restart, seventh session (start)").
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
  /** mtm's tail phase: the engine's snapshot settings ('engine', the default) or none taken ('deferred'). */
  tailSnapshots?: 'engine' | 'deferred';
}

export interface RecoveryBuildDone {
  type: 'done';
  events: number;
  failed: number;
  ms: number;
  /** mtm's tail phase: the snapshot rounds the engine took during it. */
  snapshotRounds?: number;
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
  const deferred = c.tailSnapshots === 'deferred' ? { snapshotIntervalMs: 86_400_000, snapshotTailEventsMax: Number.MAX_SAFE_INTEGER } : {};
  const engine = await createEngine({ dataDir: c.dir, ...deferred });
  // Each snapshot round the engine takes during the load, as it ends (what the tail bound costs).
  let rounds = 0;
  let sent = 0;
  const watch = setInterval(() => {
    const s = engine.stats();
    if (s.snapshotRounds === rounds) return;
    rounds = s.snapshotRounds;
    const at = performance.now() - t0;
    console.log(JSON.stringify({ round: rounds, at_s: Math.round(at) / 1000, round_ms: Math.round(s.lastSnapshotRoundMs), bytes: s.lastSnapshotRoundBytes, records: s.lastSnapshotRoundRecords, trades_sent: sent }));
  }, 100);
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
    sent = i + 1;
    if (inFlight.length >= inFlightMax) await Promise.all(inFlight.splice(0));
  }
  await Promise.all(inFlight);
  inFlight = [];
  clearInterval(watch);
  return { type: 'done', events: c.events, failed, ms: performance.now() - t0, snapshotRounds: engine.stats().snapshotRounds };
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
