// Proves that a process exits while the store writes snapshot and price history: a child (the
// compiled store) writes history every event-loop turn and calls process.exit(0) at several moments;
// each one ends at once with code 0. Regression: until the seventh session history was written in an
// lmdb-js transaction callback, which lmdb-js's write thread waits for the JS thread to run; an exit
// while such a flush was in flight never ran it and Node's exit waited for that thread for good (a
// futex wait, seen after `restartPhases.js` exited during the snapshot round that followed a crash
// restart; this child hung in 4 of 6 runs before the fix). Also: the history bound stays exact with
// flushes in flight (history.ts), read back after the exits.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureBuilt } from './support/builtStore.js';
import { openStore } from '../src/store/store.js';

const root = resolve(import.meta.dirname, '..');
const child = join(root, 'test/fixtures/store-exit-child.mjs');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

beforeAll(() => ensureBuilt(root, join(root, 'dist/src/store/history.js'), join(root, 'src/store/history.ts')), 240_000);

/** Runs the child; answers its exit code and whether it printed that it exits, or 'hung' after hangMs. */
function run(path: string, exitAfterMs: number, from: number, hangMs: number): Promise<{ code: number | null | 'hung'; out: string; err: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [child, path, String(exitAfterMs), String(from)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      done({ code: 'hung', out, err });
    }, hangMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      done({ code, out, err });
    });
  });
}

it('exits at once when process.exit is called while history flushes are in flight', async () => {
  const path = mkdtempSync(join(tmpdir(), 'mtm-store-exit-'));
  dirs.push(path);
  // Exits at several moments of the stream of flushes, on one data dir (each run's as_of above the last's).
  // The last run is long enough to make several turns durable before it exits: at load ~22 a run that
  // exited after 450 ms had made only two of its turns durable, so its portfolios' 3 newest entries
  // rightly included one of the run before, which the check below does not expect (a helper's loaded run).
  const moments = [60, 100, 150, 200, 300, 450, 1_500];
  let last = 0;
  for (const [i, exitAfterMs] of moments.entries()) {
    const r = await run(path, exitAfterMs, (i + 1) * 1_000_000, exitAfterMs + 10_000);
    expect({ exitAfterMs, code: r.code, err: r.err }).toEqual({ exitAfterMs, code: 0, err: '' });
    // (A reopen may first say that it redid the journal's last groups.)
    const exiting = /exiting (\d+)\n$/.exec(r.out);
    expect(exiting, r.out).not.toBeNull();
    last = Number(exiting?.[1]);
  }
  const opened = openStore({ path, snapshotsKeptPerPortfolioMax: 3, pricesKeptPerSymbolMax: 2 });
  if (!opened.ok) throw new Error(opened.error.message);
  const store = opened.value;
  // The last run wrote each portfolio many times: exactly its 3 newest entries are kept.
  const snaps = [...store.loadSnapshots()];
  expect(snaps.length).toBe(300);
  for (const s of snaps) {
    const kept: number[] = [];
    for (let at = Infinity; kept.length < 5; ) {
      const r = store.snapshotBefore(s.portfolio.id, at);
      if (r === undefined) break;
      kept.push(r.as_of);
      at = r.as_of - 1;
    }
    expect(kept).toEqual([s.as_of, s.as_of - 1, s.as_of - 2]);
  }
  // Prices: the 2 newest of the last durable one kept (what was in flight at the exit is lost, as it may be).
  const [latest] = store.loadPrices();
  expect(latest.ts).toBeGreaterThan(moments.length * 1_000_000);
  expect(latest.ts).toBeLessThanOrEqual(last);
  expect(store.priceAt('AAPL', Infinity)).toBe(100 + latest.ts);
  expect(store.priceAt('AAPL', latest.ts - 1)).toBe(100 + latest.ts - 1);
  expect(store.priceAt('AAPL', latest.ts - 2)).toBeUndefined();
  await store.close();
}, 120_000);
