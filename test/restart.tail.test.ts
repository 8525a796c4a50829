// Proves the bounded shard restart of issue 16 (sixth session), with real workers and real LMDB:
// - a snapshot round starts by itself once snapshotTailEventsMax events were logged after the last
//   columnar generation (no snapshotAll call, the interval a day away), so what a shard restart
//   replays stays about that bound;
// - a restarted shard reads its own snapshot and tail from the data directory (the worker opens it
//   read-only: 'loadStored' + 'replayTail'; the main thread reads nothing) and shows the figures it
//   showed before it died;
// - a shard restarted while the newest generation was written by another shard count reads every
//   part and keeps its own books (the figures equal those before the restart);
// - a snapshot round whose shard dies before answering ends, incomplete (it used to wait forever for
//   the dead worker's records, which with the tail bound would have stopped every later round);
// - a start whose shard workers read their own snapshot parts (seventh session: the main thread reads
//   only the directory's segments) on shard threads an entry started before it loaded the engine
//   (startShardThreads) shows the figures shown before the stop; threads started for another worker
//   count are refused naming shardThreads; each round's figures are in engine.stats();
// - a restarted shard's task runs on the booted standby thread with its modules loaded before the
//   death (seventh session: the standby's module import sat blocked behind piscina's Atomics.wait
//   until the task came, 200-450 ms of every restart), and one death restarts the shard once.
import { open } from 'lmdb';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, EngineStartError, type MtmEngine } from '../src/engine/engine.js';
import { startShardThreads } from '../src/engine/shards/threads.js';
import { copyLiveDataDir, ensureBuilt, sleep, tempDir } from './support/engine.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => ensureBuilt(), 120_000);

const tailMax = 40;

async function engineOn(dataDir: string, workers = 2, snapshotTailEventsMax = tailMax): Promise<MtmEngine> {
  const engine = await createEngine({ dataDir, workers, allowFaultInjection: true, snapshotIntervalMs: 86_400_000, pricesFlushIntervalMs: 20, snapshotTailEventsMax });
  cleanups.push(() => engine.close());
  return engine;
}

/** The committed generation's oldest covered seq and the log's last seq, read as another reader of the directory would. */
function generation(dataDir: string): { covered: number; lastSeq: number } {
  const env = open({ path: dataDir, noSubdir: false, maxDbs: 16, readOnly: true });
  try {
    const meta = env.openDB('meta', {});
    const pointer = meta.get('shardSnapshot') as { covered: number[] } | undefined;
    return { covered: pointer === undefined ? 0 : Math.min(...pointer.covered), lastSeq: Number(meta.get('lastSeq') ?? 0) };
  } finally {
    void env.close();
  }
}

async function until(pred: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(10);
  }
}

/** Every portfolio's snapshot without what a restart may rightly change: as_of, ages, seq, and equity_hwm (ticks raise it without an event). */
async function figures(engine: MtmEngine): Promise<string[]> {
  const out: string[] = [];
  for (const p of engine.listPortfolios()) {
    const r = await engine.snapshot(p.id);
    if (!r.ok) throw new Error(r.error.message);
    out.push(JSON.stringify({ ...r.value, as_of: 0, seq: 0, equity_hwm: 0, positions: r.value.positions.map((x) => ({ ...x, price_age_ms: 0 })) }));
  }
  return out;
}

describe('a bounded shard restart', () => {
  it('starts a round once snapshotTailEventsMax events follow the last one; a restarted shard reads its own snapshot and tail', async () => {
    const d = tempDir('mtm-restart-tail-');
    cleanups.push(() => d.remove());
    const engine = await engineOn(d.path);
    const ids = ['ta', 'tb', 'tc', 'td', 'te', 'tf'];
    for (const id of ids) await engine.createPortfolio({ id, cash: 100_000 });
    for (let i = 0; i < 3 * tailMax; i++) {
      const r = await engine.trade(ids[i % ids.length], { trade_id: `t${i}`, symbol: i % 3 === 0 ? 'AA' : 'BB', side: i % 4 === 3 ? 'sell' : 'buy', quantity: 2, price: 10 + (i % 7) });
      expect(r.ok).toBe(true);
    }
    engine.ingestTicks([{ symbol: 'AA', price: 12.5, ts: Date.now() }, { symbol: 'BB', price: 9.75, ts: Date.now() }]);
    await engine.drain();
    // Every event after the last generation is at most the bound (+ what a round in flight did not cover).
    await until(() => {
      const g = generation(d.path);
      return g.covered > 0 && g.lastSeq - g.covered < tailMax;
    }, 'a round started by the tail bound');
    // A tail after that generation, then each shard restarted: it loads its part and replays that tail itself.
    for (let i = 0; i < 10; i++) await engine.trade(ids[i % ids.length], { trade_id: `u${i}`, symbol: 'CC', side: 'buy', quantity: 1, price: 20 });
    const before = await figures(engine);
    for (const shard of [0, 1]) {
      const restarts = engine.stats().shardRestarts;
      expect(engine.crashShard(shard, 'exit').ok).toBe(true);
      await until(() => engine.stats().shardRestarts > restarts && engine.shardStats().every((s) => s.state === 'ready'), `shard ${shard} restarted`);
    }
    expect(await figures(engine)).toEqual(before);
    const marks = engine.progress.marks.map((m) => m.step);
    expect(marks).toContain('shard 0 restart: snapshot posted');
    expect(marks).toContain('shard 1 restart: snapshot posted');
  }, 120_000);

  it('ends a round whose shard died before it answered, and the next round is complete', async () => {
    const d = tempDir('mtm-restart-tail-');
    cleanups.push(() => d.remove());
    const engine = await engineOn(d.path);
    await engine.createPortfolio({ id: 'r1', cash: 1_000 });
    const restarts = engine.stats().shardRestarts;
    // The worker exits on this message; the round's request reaches it after, never answered.
    expect(engine.crashShard(engine.shardOf('r1'), 'exit').ok).toBe(true);
    const ended = await Promise.race([engine.snapshotAll().then(() => 'ended'), sleep(15_000).then(() => 'still waiting')]);
    expect(ended).toBe('ended');
    await until(() => engine.stats().shardRestarts > restarts && engine.shardStats().every((s) => s.state === 'ready'), 'the shard restarted');
    await engine.trade('r1', { trade_id: 'r1-1', symbol: 'AA', side: 'buy', quantity: 1, price: 10 });
    const seq = generation(d.path).lastSeq;
    await engine.snapshotAll();
    expect(generation(d.path).covered).toBeGreaterThanOrEqual(seq);
  }, 120_000);

  it('runs a restarted shard on the standby thread, loaded before the death; one death, one restart', async () => {
    const d = tempDir('mtm-restart-tail-');
    cleanups.push(() => d.remove());
    const engine = await engineOn(d.path, 1);
    await engine.createPortfolio({ id: 's1', cash: 10_000 });
    await engine.trade('s1', { trade_id: 's1-1', symbol: 'AA', side: 'buy', quantity: 3, price: 10 });
    const before = await figures(engine);
    // The standby's import runs beside the shard's start; give a loaded machine time to end it.
    await sleep(3_000);
    const restarts = engine.stats().shardRestarts;
    const work = engine.progress.shardWork.length;
    const killedAt = performance.now();
    expect(engine.crashShard(0, 'exit').ok).toBe(true);
    await until(() => engine.stats().shardRestarts > restarts && engine.shardStats()[0].state === 'ready', 'the shard restarted');
    const w = engine.progress.shardWork[work];
    expect(w.modules_at_ms).toBeLessThan(killedAt);
    expect(w.task_at_ms).toBeGreaterThan(killedAt);
    // The dead thread's exit and its replacement (the next standby) restart nothing more.
    await sleep(1_500);
    expect(engine.stats().shardRestarts).toBe(restarts + 1);
    expect(engine.progress.marks.filter((m) => m.step === 'shard 0 restart: death seen')).toHaveLength(1);
    expect(await figures(engine)).toEqual(before);
  }, 120_000);

  it('restarts a shard from a generation another shard count wrote: the worker reads every part and keeps its own books', async () => {
    const d = tempDir('mtm-restart-tail-');
    cleanups.push(() => d.remove());
    let engine = await engineOn(d.path, 2, 1_000_000);
    const ids = ['pa', 'pb', 'pc', 'pd', 'pe', 'pf', 'pg'];
    for (const id of ids) await engine.createPortfolio({ id, cash: 50_000 });
    for (let i = 0; i < 28; i++) await engine.trade(ids[i % ids.length], { trade_id: `p${i}`, symbol: i % 2 === 0 ? 'AA' : 'DD', side: 'buy', quantity: 1 + (i % 3), price: 10 + i });
    await engine.snapshotAll();
    // A tail after the 2-shard generation, then the engine stops without a round of its own.
    for (let i = 0; i < 7; i++) await engine.trade(ids[i], { trade_id: `q${i}`, symbol: 'EE', side: 'buy', quantity: 1, price: 30 });
    const crashed = tempDir('mtm-restart-tail-');
    cleanups.push(() => crashed.remove());
    await copyLiveDataDir(engine, d.path, crashed.path);
    await engine.close();
    engine = await engineOn(crashed.path, 3, 1_000_000);
    const before = await figures(engine);
    for (const shard of [0, 1, 2]) {
      const restarts = engine.stats().shardRestarts;
      expect(engine.crashShard(shard, 'exit').ok).toBe(true);
      await until(() => engine.stats().shardRestarts > restarts && engine.shardStats().every((s) => s.state === 'ready'), `shard ${shard} restarted`);
    }
    expect(engine.listPortfolios().length).toBe(ids.length);
    expect(await figures(engine)).toEqual(before);
  }, 120_000);
});

describe('the start', () => {
  it('workers read their own parts on threads started before the engine; threads for another count are refused', async () => {
    const d = tempDir('mtm-restart-start-');
    cleanups.push(() => d.remove());
    const first = await createEngine({ dataDir: d.path, workers: 2, snapshotIntervalMs: 86_400_000 });
    const ids = ['sa', 'sb', 'sc', 'sd', 'se'];
    for (const id of ids) await first.createPortfolio({ id, cash: 50_000 });
    for (let i = 0; i < 20; i++) expect((await first.trade(ids[i % ids.length], { trade_id: `s${i}`, symbol: i % 2 === 0 ? 'AA' : 'BB', side: 'buy', quantity: 3, price: 10 + i })).ok).toBe(true);
    await first.snapshotAll();
    const round = first.stats();
    expect(round.snapshotRounds).toBe(1);
    expect(round.lastSnapshotRoundBytes).toBeGreaterThan(0);
    expect(round.lastSnapshotRoundRecords).toBe(ids.length);
    expect(round.lastSnapshotRoundMs).toBeGreaterThan(0);
    // A tail after the generation, then the clean stop.
    for (let i = 0; i < 5; i++) await first.trade(ids[i], { trade_id: `t${i}`, symbol: 'CC', side: 'buy', quantity: 1, price: 7 });
    const before = await figures(first);
    await first.close();

    const wrong = startShardThreads({ workers: 1 });
    const refused = await createEngine({ dataDir: d.path, workers: 2, shardThreads: wrong }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(EngineStartError);
    expect((refused as EngineStartError).error).toMatchObject({ code: 'invalid_field', field: 'shardThreads' });

    const again = await createEngine({ dataDir: d.path, workers: 2, shardThreads: startShardThreads({ workers: 2 }) });
    cleanups.push(() => again.close());
    expect(again.threads).toBe(2);
    expect(await figures(again)).toEqual(before);
    expect(again.progress.marks.map((m) => m.step)).toEqual(expect.arrayContaining(['snapshots read', 'workers up', 'shards loaded']));
  }, 120_000);
});
