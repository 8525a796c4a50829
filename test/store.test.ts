// Proves the LMDB store (src/store/store.ts) on a real LMDB in a temp dir, no mocks:
// - append assigns contiguous seqs synchronously, they survive close/reopen, and every append of
//   one event-loop turn shares one commit; reads see committed data only;
// - query by portfolio, type, time range, after_seq paging, limit and order equals a brute-force
//   oracle (explicit cases plus a fast-check property over random queries);
// - trade results are first-wins, visible before their commit and durable across reopen;
// - idle() is true only with no LMDB transaction queued, backlogged or in flight, and a copy of the
//   live dir taken then holds every acknowledged append in LMDB (nothing to redo at open);
// - a snapshot commits with or after every event appended before it; loadSnapshots keeps one
//   record per portfolio; snapshotBefore answers from a history bounded per portfolio; prices too;
// - a data dir from another schema version (or foreign LMDB data) is refused, naming both versions;
// - retention removes only events older than the cutoff AND covered by every kept snapshot, also
//   inside a time run (contiguous seqs at one ts, one entry of the time index), which keeps the rest.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { open } from 'lmdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AssertionError } from '../src/assert.js';
import type { DomainEvent, DomainEventType, PortfolioRecord, StoredEvent } from '../src/domain/types.js';
import type { EventQuery } from '../src/engine/api.js';
import { openStore, storeSchemaVersion, type Store, type StoreOptions } from '../src/store/store.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mtm-store-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function openOk(options: StoreOptions): Store {
  const r = openStore(options);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function trade(portfolio_id: string, n: number, ts: number): DomainEvent {
  return { type: 'TradeExecuted', portfolio_id, ts, trade_id: `t-${n}`, symbol: 'AAPL', side: 'buy', quantity: 1, price: 100 + n, fee: 0.5, trade_ts: ts, realized_pnl: 0 };
}

function created(portfolio_id: string, ts: number): DomainEvent {
  return { type: 'PortfolioCreated', portfolio_id, ts, name: portfolio_id, cash: 1000, limits: {} };
}

function opened(portfolio_id: string, ts: number): DomainEvent {
  return { type: 'PositionOpened', portfolio_id, ts, symbol: 'AAPL', side: 'long', quantity: 1, price: 100 };
}

function record(id: string, covered_seq: number, as_of: number): PortfolioRecord {
  return {
    portfolio: { id, name: id, cash: 1000 - covered_seq, capital: 1000, realized_pnl: 0, limits: {}, positions: {}, trades: covered_seq },
    state: 'active',
    equity_hwm: 1000,
    seq: covered_seq,
    covered_seq,
    as_of,
  };
}

describe('append', () => {
  it('assigns contiguous seqs synchronously, and they survive close and reopen', async () => {
    const path = tempDir();
    const store = openOk({ path });
    const a = store.append([created('p1', 1), trade('p1', 1, 2), trade('p1', 2, 3)]);
    expect(a.stored.map((e) => e.seq)).toEqual([1, 2, 3]);
    const b = store.append([trade('p2', 3, 4)]);
    expect(b.stored[0].seq).toBe(4);
    expect(store.lastSeq()).toBe(4);
    await Promise.all([a.durable, b.durable]);
    await store.close();

    const again = openOk({ path });
    expect(again.lastSeq()).toBe(4);
    expect([...again.eventsAfter(0)]).toEqual([...a.stored, ...b.stored]);
    expect([...again.eventsAfter(2)].map((e) => e.seq)).toEqual([3, 4]);
    const c = again.append([trade('p1', 4, 5)]);
    expect(c.stored[0].seq).toBe(5);
    await c.durable;
    await again.close();
  });

  it('puts every append of one event-loop turn in one commit', async () => {
    const store = openOk({ path: tempDir() });
    await store.append([]).durable; // the fresh store's own first commit (schema version)
    const before = store.stats().commitsTotal;
    const commits: [number, number][] = [];
    store.onCommit((seconds, events) => commits.push([seconds, events]));
    const receipts = [];
    for (let i = 0; i < 50; i++) receipts.push(store.append([trade('p1', i, 10 + i), opened('p1', 10 + i)]));
    expect(store.stats().pendingWrites).toBe(100);
    await Promise.all(receipts.map((r) => r.durable));
    expect(store.stats().commitsTotal).toBe(before + 1);
    expect(commits).toHaveLength(1);
    expect(commits[0][1]).toBe(100);
    expect(commits[0][0]).toBeGreaterThan(0);
    expect(store.stats().pendingWrites).toBe(0);
    expect(store.stats().lastCommitSeconds).toBe(commits[0][0]);
    await store.close();
  });

  it('reads see an append once it is durable, not before', async () => {
    const store = openOk({ path: tempDir() });
    const r = store.append([created('p1', 1)]);
    expect(store.query({ portfolio_id: 'p1' })).toEqual([]);
    await r.durable;
    expect(store.query({ portfolio_id: 'p1' })).toEqual(r.stored);
    await store.close();
  });

  it('an empty append is a barrier for everything enqueued before it', async () => {
    const store = openOk({ path: tempDir() });
    const r = store.append([created('p1', 1)]);
    await nextTurn(); // its commit is now in flight
    await store.append([]).durable;
    expect(store.query({})).toEqual(r.stored);
    await store.close();
  });

  it('is idle only with no LMDB transaction queued, backlogged or in flight; a copy taken then holds every acknowledged append in LMDB (nothing to redo)', async () => {
    // What test/support/engine.ts copyLiveDataDir waits for before it copies a live data dir as a
    // crash (the flake at seed 44 of test/restart.test.ts: a copy with a commit still to come).
    const path = tempDir();
    const store = openOk({ path, indexLagMaxMs: 20 });
    await store.append([]).durable;
    const r = store.append([created('p1', 1), opened('p1', 2)]);
    expect(store.idle()).toBe(false);
    await r.durable;
    const started = Date.now();
    while (!store.idle()) {
      expect(Date.now() - started).toBeLessThan(30_000);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const copy = tempDir();
    cpSync(path, copy, { recursive: true });
    await store.close();
    const again = openOk({ path: copy });
    expect(again.stats().journalRedoneAtOpen.records).toBe(0);
    expect(again.query({})).toEqual(r.stored);
    await again.close();
  });

  it('refuses an event it cannot encode at the call, with no seq consumed and nothing enqueued', async () => {
    const store = openOk({ path: tempDir() });
    const bad = { ...created('p1', 1), name: Symbol('not storable') } as unknown as DomainEvent;
    expect(() => store.append([created('p0', 1), bad])).toThrow();
    expect(() => store.append([{ ...created('p1', 1), portfolio_id: 'a\u0000b' }])).toThrow(AssertionError);
    expect(store.lastSeq()).toBe(0);
    const ok = store.append([created('p2', 2)]);
    expect(ok.stored[0].seq).toBe(1);
    await ok.durable;
    expect(store.query({}).map((e) => e.portfolio_id)).toEqual(['p2']);
    await store.close();
  });

  it('reports pending writes and turns overloaded at pendingWritesMax', async () => {
    const store = openOk({ path: tempDir(), pendingWritesMax: 10 });
    const events = Array.from({ length: 10 }, (_, i) => trade('p1', i, i));
    const r = store.append(events);
    expect(store.stats().pendingWrites).toBe(10);
    expect(store.overloaded()).toBe(true);
    await r.durable;
    expect(store.stats().pendingWrites).toBe(0);
    expect(store.overloaded()).toBe(false);
    await store.close();
    expect(() => store.append([created('p1', 1)])).toThrow(AssertionError);
  });

  it('bounds the lagging index: overloaded once indexLaggingMax events wait for it, until it is written', async () => {
    const store = openOk({ path: tempDir(), indexEventsPerFlushMax: 1e9, indexLagMaxMs: 2e9, indexLaggingMax: 30, retention: { keepEventsMs: 1_000 } });
    const r = store.append(Array.from({ length: 30 }, (_, i) => trade('p1', i, i)), [{ portfolio_id: 'p1', trade_id: 't-0', result: { n: 0 } }]);
    await r.durable;
    // Committed and readable, but not indexed: only the index bound holds the store back.
    expect(store.stats().pendingWrites).toBe(0);
    expect(store.stats().indexLagging).toBe(31);
    expect(store.overloaded()).toBe(true);
    expect(store.query({ portfolio_id: 'p1', limit: 1000 })).toEqual(r.stored);
    expect(store.tradeResult('p1', 't-0')).toEqual({ n: 0 });
    // Compaction reads the time index: it has the index (and the trade-id keys with it) written first.
    expect(await store.compact(Date.now())).toEqual({ removed: 0, more: false });
    expect(store.stats().indexLagging).toBe(0);
    expect(store.overloaded()).toBe(false);
    await store.close();
  });

  // Another live process is refused by the data dir lock (lock.ts lockDataDir), tested with real
  // processes, zombies and reused pids in test/restart.lock.test.ts. owner.pid is never trusted (issue
  // 16: a zombie or a reused pid blocked restarts), so a pid file naming a live process blocks nothing.
  it('refuses a second open of the same data dir in this process; a stale owner.pid blocks nothing', async () => {
    const path = tempDir();
    const store = openOk({ path });
    const twice = openStore({ path });
    expect(twice.ok).toBe(false);
    if (!twice.ok) expect(twice.error.code).toBe('store_failed');
    await store.close();
    writeFileSync(join(path, 'owner.pid'), String(process.ppid));
    const after = openOk({ path });
    await after.close();
  });
});

// The index lags the log (eventIndex.ts): queries answer from the committed index plus the committed
// events not yet in it. Every query case runs with the index fully written (the data reopened), not
// written at all, and part-way (chunks of 400 of the 1,500 events, the rest in memory).
const indexStates: [string, Partial<StoreOptions>, boolean][] = [
  ['index written (reopened)', {}, true],
  ['index lagging: nothing indexed', { indexEventsPerFlushMax: 1e9, indexLagMaxMs: 2e9, indexLaggingMax: 1e9 }, false],
  ['index part-way: chunks of 400 indexed', { indexEventsPerFlushMax: 400, indexLagMaxMs: 2e9 }, false],
];

for (const [indexState, indexOptions, reopen] of indexStates)
describe(`query (${indexState})`, () => {
  const portfolios = ['p1', 'p2', 'p3'];
  const types: DomainEventType[] = ['PortfolioCreated', 'TradeExecuted', 'PositionOpened', 'CashDeposited'];
  let store: Store;
  let all: StoredEvent[] = [];

  beforeAll(async () => {
    const path = tempDir();
    store = openOk({ path, ...indexOptions });
    // 1,500 events in 15 appends; ts is not monotonic in seq (jitter), as with several shards.
    let rnd = 12345;
    const next = () => (rnd = (rnd * 1103515245 + 12345) % 2147483648) / 2147483648;
    const receipts = [];
    for (let a = 0; a < 15; a++) {
      const events: DomainEvent[] = [];
      for (let i = 0; i < 100; i++) {
        const n = a * 100 + i;
        const pid = portfolios[Math.floor(next() * portfolios.length)];
        const ts = 10_000 + n * 10 + Math.floor(next() * 40) - 20;
        const type = types[Math.floor(next() * types.length)];
        if (type === 'TradeExecuted') events.push(trade(pid, n, ts));
        else if (type === 'PortfolioCreated') events.push(created(pid, ts));
        else if (type === 'PositionOpened') events.push(opened(pid, ts));
        else events.push({ type: 'CashDeposited', portfolio_id: pid, ts, amount: n });
      }
      const r = store.append(events);
      all = all.concat(r.stored);
      receipts.push(r.durable);
    }
    await Promise.all(receipts);
    if (reopen) {
      await store.close();
      store = openOk({ path });
    } else if (indexOptions.indexLagMaxMs !== undefined && indexOptions.indexEventsPerFlushMax === 1e9) {
      // Committed, and none of it in the index: every answer below comes from the lagging part.
      expect(store.stats().indexLagging).toBe(1_500);
    }
  });
  afterAll(() => store.close());

  function oracle(q: EventQuery, unlimited = false): StoredEvent[] {
    let r = all.filter(
      (e) =>
        (q.portfolio_id === undefined || e.portfolio_id === q.portfolio_id) &&
        (q.type === undefined || e.type === q.type) &&
        (q.from === undefined || e.ts >= q.from) &&
        (q.to === undefined || e.ts <= q.to),
    );
    if (q.order === 'desc') r = r.slice().reverse();
    if (q.after_seq !== undefined) r = r.filter((e) => (q.order === 'desc' ? e.seq < (q.after_seq as number) : e.seq > (q.after_seq as number)));
    const limit = Math.min(1000, Math.max(1, Math.floor(q.limit ?? 100)));
    return unlimited ? r : r.slice(0, limit);
  }

  it('filters by portfolio, type and inclusive time range, 100 by default, in seq order', () => {
    for (const q of [
      {},
      { portfolio_id: 'p2' },
      { type: 'TradeExecuted' as const },
      { portfolio_id: 'p1', type: 'CashDeposited' as const },
      { from: 12_000, to: 13_000 },
      { from: all[200].ts, to: all[200].ts },
      { portfolio_id: all[300].portfolio_id, from: all[300].ts, to: all[300].ts },
      { type: all[400].type, from: all[400].ts, to: all[400].ts },
      { portfolio_id: 'p3', from: 15_000 },
      { type: 'PositionOpened' as const, to: 11_000, order: 'desc' as const },
      { portfolio_id: 'nobody' },
      { from: 20_000, to: 10_000 },
    ]) {
      expect(store.query(q), JSON.stringify(q)).toEqual(oracle(q));
    }
    expect(store.query({})).toHaveLength(100);
  });

  it('clamps limit to [1, 1000]', () => {
    expect(store.query({ limit: 5000 })).toHaveLength(1000);
    expect(store.query({ limit: 0 })).toHaveLength(1);
    expect(store.query({ limit: 7, order: 'desc' })).toEqual(all.slice(-7).reverse());
  });

  it('pages with after_seq in both orders, one cursor per page, to exactly the full result', () => {
    for (const base of [{}, { portfolio_id: 'p1' }, { type: 'TradeExecuted' as const }, { from: 11_000, to: 19_000 }]) {
      for (const order of ['asc', 'desc'] as const) {
        const got: StoredEvent[] = [];
        let after: number | undefined;
        for (;;) {
          const page = store.query({ ...base, order, limit: 97, after_seq: after });
          got.push(...page);
          if (page.length < 97) break;
          after = page[page.length - 1].seq;
        }
        expect(got, JSON.stringify({ base, order })).toEqual(oracle({ ...base, order }, true));
      }
    }
  });

  it('matches the oracle for random queries (fast-check)', () => {
    // Bounds are often exactly an event's ts, where inclusive and exclusive differ.
    const instant = fc.oneof(fc.integer({ min: 9_000, max: 26_000 }), fc.constantFrom(...all.map((e) => e.ts)));
    const query = fc.record(
      {
        portfolio_id: fc.constantFrom('p1', 'p2', 'p3', 'nobody'),
        type: fc.constantFrom<DomainEventType>(...types, 'PortfolioClosed'),
        from: instant,
        to: instant,
        after_seq: fc.integer({ min: 0, max: 1_600 }),
        limit: fc.integer({ min: 1, max: 1_200 }),
        order: fc.constantFrom('asc' as const, 'desc' as const),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(query, (q) => {
        expect(store.query(q)).toEqual(oracle(q));
      }),
      { numRuns: 300 },
    );
  });
});

describe('trade results', () => {
  it('keeps the first result, answers before the commit, and survives reopen', async () => {
    const path = tempDir();
    const store = openOk({ path });
    expect(store.tradeResult('p1', 't1')).toBeUndefined();
    const r = store.append([trade('p1', 1, 1)], [{ portfolio_id: 'p1', trade_id: 't1', result: { applied: true, n: 1 } }]);
    expect(store.tradeResult('p1', 't1')).toEqual({ applied: true, n: 1 });
    store.append([], [{ portfolio_id: 'p1', trade_id: 't1', result: { applied: true, n: 2 } }]); // pending: ignored
    await r.durable;
    await store.append([], [{ portfolio_id: 'p1', trade_id: 't1', result: { n: 3 } }]).durable; // committed: ignored
    expect(store.tradeResult('p1', 't1')).toEqual({ applied: true, n: 1 });
    expect(store.tradeResult('p2', 't1')).toBeUndefined();
    await store.close();
    const again = openOk({ path });
    expect(again.tradeResult('p1', 't1')).toEqual({ applied: true, n: 1 });
    await again.close();
  });
});

describe('snapshots', () => {
  it('commits a snapshot with the events appended before it in the same turn', async () => {
    const store = openOk({ path: tempDir() });
    await store.append([]).durable;
    const before = store.stats().commitsTotal;
    const r = store.append([created('p1', 1), trade('p1', 1, 2)]);
    const written = store.writeSnapshots([record('p1', r.stored[1].seq, 3)]);
    await written;
    expect(store.stats().commitsTotal).toBe(before + 1);
    expect(store.query({})).toEqual(r.stored);
    await store.close();
  });

  it('never makes a snapshot durable before an event appended earlier, even one whose commit is in flight', async () => {
    const store = openOk({ path: tempDir() });
    const seen: number[] = [];
    const first = store.append([created('p1', 1)]);
    void first.durable.then(() => seen.push(1));
    await nextTurn(); // first commit in flight
    const second = store.append([trade('p1', 1, 2)]);
    void second.durable.then(() => seen.push(2));
    await store.writeSnapshots([record('p1', store.lastSeq(), 3)]).then(() => seen.push(3));
    expect(seen).toEqual([1, 2, 3]);
    expect(store.query({}).map((e) => e.seq)).toEqual([1, 2]);
    await store.close();
  });

  it('writes a large snapshot round a bounded chunk per flush, without holding appends behind it', async () => {
    const store = openOk({ path: tempDir(), snapshotsPerFlushMax: 10, pendingWritesMax: 20 });
    await store.append([]).durable;
    const before = store.stats().commitsTotal;
    const records = Array.from({ length: 55 }, (_, i) => record(`p${i}`, 0, 100));
    let snapshotsDone = false;
    const written = store.writeSnapshots(records).then(() => (snapshotsDone = true));
    expect(store.stats().backlogWrites).toBe(55);
    expect(store.overloaded()).toBe(false); // a snapshot round does not make the engine refuse trades
    await nextTurn();
    const trade1 = store.append([created('p0', 1)]);
    await trade1.durable;
    expect(snapshotsDone).toBe(false); // the append went in an early flush, not after all 55 records
    await written;
    expect(store.stats().commitsTotal - before).toBeGreaterThanOrEqual(6);
    expect(store.stats().backlogWrites).toBe(0);
    expect([...store.loadSnapshots()]).toHaveLength(55);
    expect(store.snapshotBefore('p54', 100)).toEqual(records[54]);
    await store.close();
  });

  it('rejects a snapshot call whose record cannot be encoded, and keeps working', async () => {
    const store = openOk({ path: tempDir() });
    const bad = { ...record('p1', 0, 1), state: Symbol('x') } as unknown as PortfolioRecord;
    await expect(store.writeSnapshots([bad])).rejects.toThrow();
    await store.writeSnapshots([record('p2', 0, 1)]);
    expect(store.stats().failed).toBe(false);
    expect([...store.loadSnapshots()].map((r) => r.portfolio.id)).toEqual(['p2']);
    await store.close();
  });

  it('keeps one current record per portfolio and a bounded history for snapshotBefore', async () => {
    const path = tempDir();
    const store = openOk({ path, snapshotsKeptPerPortfolioMax: 3 });
    await store.writeSnapshots([record('p1', 1, 100), record('p2', 1, 150)]);
    await store.writeSnapshots([record('p1', 2, 200)]);
    store.writeSnapshots([record('p1', 3, 300)]);
    await store.writeSnapshots([record('p1', 4, 400), record('p1', 4, 400)]); // same as_of twice: one entry
    const current = [...store.loadSnapshots()].sort((a, b) => a.portfolio.id.localeCompare(b.portfolio.id));
    expect(current).toEqual([record('p1', 4, 400), record('p2', 1, 150)]);
    expect(store.snapshotBefore('p1', 150)).toBeUndefined(); // as_of 100 was the oldest of 4: dropped
    expect(store.snapshotBefore('p1', 250)).toEqual(record('p1', 2, 200));
    expect(store.snapshotBefore('p1', 400)).toEqual(record('p1', 4, 400));
    expect(store.snapshotBefore('p1', 1e15)).toEqual(record('p1', 4, 400));
    expect(store.snapshotBefore('p2', 149)).toBeUndefined();
    expect(store.snapshotBefore('p2', 150)).toEqual(record('p2', 1, 150));
    expect(store.snapshotBefore('nobody', 1e15)).toBeUndefined();
    await store.close();

    const again = openOk({ path, snapshotsKeptPerPortfolioMax: 3 });
    await again.writeSnapshots([record('p1', 5, 500)]);
    expect(again.snapshotBefore('p1', 250)).toBeUndefined();
    expect(again.snapshotBefore('p1', 350)).toEqual(record('p1', 3, 300));
    expect(again.snapshotBefore('p1', 500)).toEqual(record('p1', 5, 500));
    await again.close();
  });
});

describe('prices', () => {
  it('keeps the latest price per symbol and a bounded history for priceAt', async () => {
    const path = tempDir();
    const store = openOk({ path, pricesKeptPerSymbolMax: 4 });
    await store.savePrices([
      { symbol: 'AAPL', price: 10, ts: 100 },
      { symbol: 'MSFT', price: 20, ts: 100 },
    ]);
    for (let i = 1; i <= 5; i++) await store.savePrices([{ symbol: 'AAPL', price: 10 + i, ts: 100 + i * 100 }]);
    await store.savePrices([{ symbol: 'AAPL', price: 15, ts: 600 }]); // same instant again: no new entry
    expect(store.loadPrices().sort((a, b) => a.symbol.localeCompare(b.symbol))).toEqual([
      { symbol: 'AAPL', price: 15, ts: 600 },
      { symbol: 'MSFT', price: 20, ts: 100 },
    ]);
    // AAPL history: 100..600 written, 4 kept: 300, 400, 500, 600.
    expect(store.priceAt('AAPL', 250)).toBeUndefined();
    expect(store.priceAt('AAPL', 300)).toBe(12);
    expect(store.priceAt('AAPL', 450)).toBe(13);
    expect(store.priceAt('AAPL', 1e15)).toBe(15);
    expect(store.priceAt('MSFT', 99)).toBeUndefined();
    expect(store.priceAt('MSFT', 100)).toBe(20);
    expect(store.priceAt('NOPE', 100)).toBeUndefined();
    await store.close();
    const again = openOk({ path, pricesKeptPerSymbolMax: 4 });
    expect(again.loadPrices()).toHaveLength(2);
    await again.savePrices([{ symbol: 'AAPL', price: 16, ts: 700 }]);
    expect(again.priceAt('AAPL', 350)).toBeUndefined();
    expect(again.priceAt('AAPL', 400)).toBe(13);
    await again.close();
  });
});

describe('schema version', () => {
  it('refuses a data dir written by another schema version, naming both versions', async () => {
    const path = tempDir();
    const store = openOk({ path });
    await store.append([created('p1', 1)]).durable;
    await store.close();
    const raw = open({ path, maxDbs: 16 });
    await raw.openDB('meta', {}).put('schemaVersion', 99);
    await raw.close();
    const r = openStore({ path });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('store_failed');
    expect(r.error.message).toContain('schema version 99');
    expect(r.error.message).toContain(`schema version ${storeSchemaVersion}`);
  });

  it('refuses LMDB data it did not write, and starts fresh in a missing or empty dir', async () => {
    const foreign = tempDir();
    const raw = open({ path: foreign });
    await raw.put('someone-else', 1);
    await raw.close();
    const r = openStore({ path: foreign });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain(`schema version ${storeSchemaVersion}`);

    const missing = join(tempDir(), 'a', 'b');
    const store = openOk({ path: missing });
    expect(store.schemaVersion).toBe(storeSchemaVersion);
    expect(store.lastSeq()).toBe(0);
    await store.close();
    const again = openOk({ path: missing }); // the version was written by the first commit
    await again.close();
  });
});

describe('retention', () => {
  it('keeps everything when keepEventsMs is null (audit)', async () => {
    const store = openOk({ path: tempDir(), retention: { keepEventsMs: null } });
    await store.append([created('p1', 1)]).durable;
    await store.writeSnapshots([record('p1', 1, 2)]);
    expect(await store.compact(1e15)).toEqual({ removed: 0, more: false });
    expect(store.query({})).toHaveLength(1);
    await store.close();
  });

  it('removes only events older than the cutoff AND covered by every kept snapshot of their portfolio', async () => {
    const path = tempDir();
    const store = openOk({ path, retention: { keepEventsMs: 1_000 } });
    const r = store.append([
      created('pA', 1_000), // 1 old, covered
      trade('pA', 1, 2_000), // 2 old, covered
      opened('pA', 2_000), // 3 old, covered
      trade('pA', 2, 9_500), // 4 new
      created('pB', 1_000), // 5 old, pB has no snapshot: needed to rebuild pB
      opened('pB', 1_500), // 6 old, derived, no snapshot needs it
      { type: 'ShardRestarted', portfolio_id: '_engine', ts: 1_200, shard: 0, reason: 'test' }, // 7 old, derived
      trade('pA', 3, 3_000), // 8 old but after the snapshot's covered_seq
    ]);
    await store.writeSnapshots([record('pA', 3, 5_000)]);
    expect(await store.compact(10_000)).toEqual({ removed: 5, more: false });
    const kept = [4, 5, 8];
    expect([...store.eventsAfter(0)].map((e) => e.seq)).toEqual(kept);
    expect(store.query({ portfolio_id: 'pA' }).map((e) => e.seq)).toEqual([4, 8]);
    expect(store.query({ type: 'TradeExecuted' }).map((e) => e.seq)).toEqual([4, 8]);
    expect(store.query({ from: 0, to: 1e15 }).map((e) => e.seq)).toEqual(kept);
    expect([...store.eventsForPortfolio('pA', 0, 1e15)]).toEqual([r.stored[3], r.stored[7]]);
    expect(await store.compact(10_000)).toEqual({ removed: 0, more: false });
    await store.close();
    const again = openOk({ path, retention: { keepEventsMs: 1_000 } });
    expect(again.lastSeq()).toBe(8);
    await again.close();
  });

  it('keeps events an older kept snapshot still needs for time travel, until history drops it', async () => {
    const path = tempDir();
    const store = openOk({ path, retention: { keepEventsMs: 1_000 } });
    await store.append([created('pA', 100), trade('pA', 1, 200), trade('pA', 2, 300)]).durable;
    await store.writeSnapshots([record('pA', 1, 150)]);
    await store.writeSnapshots([record('pA', 3, 350)]);
    expect(await store.compact(10_000)).toEqual({ removed: 1, more: false }); // the as_of 150 snapshot covers seq 1 only
    await store.close();
    const narrow = openOk({ path, retention: { keepEventsMs: 1_000 }, snapshotsKeptPerPortfolioMax: 1 });
    await narrow.writeSnapshots([record('pA', 3, 400)]); // history now holds only as_of 400
    expect(await narrow.compact(10_000)).toEqual({ removed: 2, more: false });
    expect([...narrow.eventsAfter(0)]).toEqual([]);
    expect(narrow.lastSeq()).toBe(3);
    await narrow.close();
    const again = openOk({ path });
    expect(again.lastSeq()).toBe(3); // kept in meta when every event is gone
    expect(again.append([created('pB', 1)]).stored[0].seq).toBe(4);
    await again.close();
  });

  it('time runs (contiguous seqs at one ts, one index entry): pages inside a run, and compaction keeps what a snapshot still needs of a run', async () => {
    const path = tempDir();
    // Index flushed at once: the time index holds the runs, not the in-memory backlog.
    const store = openOk({ path, retention: { keepEventsMs: 1_000 }, indexLagMaxMs: 1 });
    // 1..6 one run at ts 2_000 (pA's created + trades, pB's created + trade), 7 alone, 8..9 a run at 5_000.
    await store.append([created('pA', 2_000), trade('pA', 1, 2_000), opened('pA', 2_000), created('pB', 2_000), trade('pB', 2, 2_000), opened('pB', 2_000), trade('pA', 3, 3_000), trade('pB', 4, 5_000), opened('pB', 5_000)]).durable;
    await store.append([]).durable;
    await new Promise((r) => setTimeout(r, 20));
    await store.append([]).durable;
    expect(store.stats().indexLagging).toBe(0);
    expect(store.query({ from: 2_000, to: 2_000, after_seq: 2, limit: 2 }).map((e) => e.seq)).toEqual([3, 4]);
    expect(store.query({ from: 0, to: 2_500, after_seq: 5, order: 'desc', limit: 3 }).map((e) => e.seq)).toEqual([4, 3, 2]);
    expect(store.query({ from: 2_500, limit: 10 }).map((e) => e.seq)).toEqual([7, 8, 9]);
    // pA's snapshot covers seq 7: its events of the run go, pB's (no snapshot: replayed ones needed) stay.
    await store.writeSnapshots([record('pA', 7, 4_000)]);
    expect(await store.compact(10_000)).toEqual({ removed: 6, more: false }); // pA 1, 2, 3, 7 and pB's derived 6, 9
    const kept = [4, 5, 8];
    expect([...store.eventsAfter(0)].map((e) => e.seq)).toEqual(kept);
    expect(store.query({ from: 0, to: 1e15 }).map((e) => e.seq)).toEqual(kept);
    expect(store.query({ from: 2_000, to: 2_000, order: 'desc' }).map((e) => e.seq)).toEqual([5, 4]);
    expect(await store.compact(10_000)).toEqual({ removed: 0, more: false });
    await store.close();
    const again = openOk({ path, retention: { keepEventsMs: 1_000 } });
    expect(again.query({ from: 0, to: 1e15 }).map((e) => e.seq)).toEqual(kept);
    await again.close();
  });

  it('works through a long backlog in bounded calls that resume where the last one stopped', async () => {
    const store = openOk({ path: tempDir(), retention: { keepEventsMs: 1_000 }, compactScannedPerCallMax: 4 });
    const events: DomainEvent[] = [];
    for (let i = 0; i < 10; i++) events.push(created('pB', 100 + i)); // pB has no snapshot: never removed
    for (let i = 0; i < 10; i++) events.push(opened('pC', 200 + i)); // derived: removable
    await store.append(events).durable;
    let removed = 0;
    let calls = 0;
    for (let more = true; more; calls++) {
      const r = await store.compact(10_000);
      removed += r.removed;
      more = r.more;
    }
    expect(calls).toBe(6); // 20 entries, 4 per call, and one more call that finds the range ended
    expect(removed).toBe(10);
    expect((await store.compact(10_000)).removed).toBe(0); // a new cycle: pB's 10 are scanned again, kept
    expect(store.query({ limit: 1000 }).map((e) => e.type)).toEqual(Array(10).fill('PortfolioCreated'));
    await store.close();
  });
});
