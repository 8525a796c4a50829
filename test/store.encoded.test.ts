// Proves the store's encoded append (issue 15: a bulk import's events cross from the shard as bytes,
// src/store/log.ts EncodedEvents, store.appendEncoded) and the derived results of imported trades
// (src/store/tradeResults.ts enqueueDerived), on a real LMDB, no mocks:
// - the shard's bytes (protocol/flatRecord.ts LoggedValuesWriter, seq filled in by the store) read back
//   as the very events, with contiguous seqs, whether written as bytes or, not flat (lot_ids), as an
//   object the store encodes; queries by portfolio, type and time find them before and after the
//   lagging index commits;
// - an imported trade's result is {imported, realized_pnl, seq} from its TradeExecuted, from its append
//   on and after its key commits, while a single-route trade's numbered result body is untouched;
// - after a kill -9 with every trade-id key still lagging (a child on the compiled store), the open
//   derives the imported trades' keys again from the log and keeps the single-route trade's body;
// - a forgotten copy (cluster) drops a derived result; the rebuilt copy's import of the same id stores
//   its own, which survives a reopen.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './support/builtStore.js';
import { openStore, type Store } from '../src/store/store.js';
import type { StoredEvent } from '../src/domain/types.js';
// A plain .mjs fixture, shared with the child process.
import { encodedTrades } from './fixtures/storeEncodedEvents.mjs';

const root = resolve(import.meta.dirname, '..');
const child = join(root, 'test/fixtures/store-encoded-child.mjs');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

beforeAll(() => {
  ensureBuilt(root, join(root, 'dist/src/store/store.js'), join(root, 'src/store/store.ts'));
  ensureBuilt(root, join(root, 'dist/src/protocol/flatRecord.js'), join(root, 'src/protocol/flatRecord.ts'));
}, 240_000);

function tempDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `mtm-encoded-${name}-`));
  dirs.push(d);
  return d;
}

function open(path: string, lagMs = 3_600_000): Store {
  const r = openStore({ path, indexLagMaxMs: lagMs, indexEventsPerFlushMax: 1_000_000, log: () => undefined });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

type Part = { part: Parameters<Store['appendEncoded']>[0]; expected: Record<string, unknown>[] };
const trades = (portfolio: string, ids: string[], ts: number, lotsEvery = 0): Part => encodedTrades(portfolio, ids, ts, lotsEvery) as Part;
const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, k) => `${prefix}-${k}`);
const strip = (e: StoredEvent): Record<string, unknown> => {
  const { seq: _seq, ...rest } = e;
  return rest;
};

describe('encoded appends', () => {
  it('logs the shard bytes as the events, seqs filled in, found by every query before and after the index commits', async () => {
    const store = open(tempDir('reads'));
    const a = trades('pa', ids('a', 30), 5_000, 7);
    const r = store.appendEncoded(a.part);
    expect(r.firstSeq).toBe(1);
    await r.durable;
    const check = (store: Store): void => {
      const all = [...store.eventsAfter(0)];
      expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 60 }, (_, k) => k + 1));
      expect(all.map(strip)).toEqual(a.expected);
      expect(store.query({ portfolio_id: 'pa', limit: 1000 }).map((e) => e.seq)).toHaveLength(60);
      expect(store.query({ type: 'PositionOpened', limit: 1000 }).map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, k) => 2 * k + 2));
      expect(store.query({ from: 5_000, to: 5_000, order: 'desc', limit: 3 }).map((e) => e.seq)).toEqual([60, 59, 58]);
      expect(store.query({ portfolio_id: 'pa', type: 'TradeExecuted', limit: 2 }).map(strip)).toEqual([a.expected[0], a.expected[2]]);
    };
    // Committed to LMDB, the index still lagging (an hour): answered from the backlog.
    await store.append([]).durable;
    expect(store.stats().indexLagging).toBeGreaterThan(0);
    check(store);
    for (let k = 0; k < 30; k++) expect(store.tradeResult('pa', `a-${k}`)).toEqual({ imported: true, realized_pnl: k + 0.25, seq: 2 * k + 1 });
    await store.close();
    const again = open(store.path);
    expect(again.stats().indexCaughtUpAtOpen).toBe(0);
    check(again);
    for (let k = 0; k < 30; k++) expect(again.tradeResult('pa', `a-${k}`)).toEqual({ imported: true, realized_pnl: k + 0.25, seq: 2 * k + 1 });
    expect(again.tradeResultNumber('pa', 'a-0')).toBeUndefined();
    await again.close();
  });

  it('derives the lagging keys of imported trades again after kill -9, keeping a single-route result body', async () => {
    const path = tempDir('kill');
    const out = await new Promise<string>((done, reject) => {
      const p = spawn(process.execPath, [child, path], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      let err = '';
      p.stdout.setEncoding('utf8');
      p.stdout.on('data', (c: string) => (text += c));
      p.stderr.on('data', (c: Buffer) => (err += c.toString()));
      p.on('error', reject);
      p.on('exit', (_code, signal) => (signal === 'SIGKILL' ? done(text) : reject(new Error(`child exited without the kill: ${text} ${err}`))));
    });
    const m = /acked (\d+) keysLagging (\d+)/.exec(out);
    expect(m).not.toBeNull();
    expect(Number(m?.[1])).toBe(301);
    expect(Number(m?.[2])).toBeGreaterThan(0);
    const store = open(path);
    // Every imported trade's key derived from its TradeExecuted (150), the single route's by number (1), the events indexed (301).
    expect(store.stats().indexCaughtUpAtOpen).toBe(301 + 1 + 150);
    for (let k = 0; k < 150; k++) {
      const seq = k < 100 ? 2 * k + 1 : 2 * k + 2;
      expect(store.tradeResult('imp', `i-${k}`)).toEqual({ imported: true, realized_pnl: (k < 100 ? k : k - 100) + 0.25, seq });
    }
    expect(store.tradeResult('single', 's-1')).toEqual({ trade_id: 's-1', full: true });
    expect(store.query({ portfolio_id: 'imp', type: 'TradeExecuted', limit: 1000 })).toHaveLength(150);
    await store.close();
    const again = open(path);
    expect(again.stats().indexCaughtUpAtOpen).toBe(0);
    expect(again.tradeResult('imp', 'i-149')).toEqual({ imported: true, realized_pnl: 49.25, seq: 300 });
    await again.close();
  }, 60_000);

  it('drops a forgotten copy derived result; the rebuilt copy import stores its own', async () => {
    const store = open(tempDir('forget'), 1);
    await store.appendEncoded(trades('pf', ['t-1', 't-2'], 1_000).part).durable;
    await store.append([]).durable;
    store.forgetCopies(['pf']);
    expect(store.tradeResult('pf', 't-1')).toBeUndefined();
    await store.appendEncoded(trades('pf', ['t-1'], 2_000).part).durable;
    expect(store.tradeResult('pf', 't-1')).toEqual({ imported: true, realized_pnl: 0.25, seq: 5 });
    expect(store.tradeResult('pf', 't-2')).toBeUndefined();
    await store.close();
    const again = open(store.path, 1);
    expect(again.tradeResult('pf', 't-1')).toEqual({ imported: true, realized_pnl: 0.25, seq: 5 });
    expect(again.tradeResult('pf', 't-2')).toBeUndefined();
    await again.close();
  });
});
