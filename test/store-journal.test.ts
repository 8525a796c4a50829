// Proves the journal in front of LMDB (src/store/journal.ts) with real processes, real files and a
// real LMDB, no mocks:
// - kill -9 between the journal write and the LMDB commit (default mode and --sync): the child's last
//   appends were acknowledged by the journal while LMDB had not committed them; reopening redoes them
//   (the open's log line says so), every acknowledged seq is there exactly once with its trade
//   result (exactly-once: a journaled trade id is found after the crash), the log is contiguous, and
//   a second open has nothing left to redo.
// - a torn last record (cut short, or its CRC broken) is cut off and reported, never applied; a bad
//   record with data after it refuses the open instead of dropping acknowledged groups.
// - a failed journal write (a full disk: a 512 KiB tmpfs mounted on the journal directory in a
//   private mount namespace): the write's appends are rejected with store_failed, acks before it
//   came in log order and none after it, the store reports itself failed and refuses later appends,
//   and the journal as the disk held it redoes every acknowledged append.
// The children run the compiled store (dist/src/store/store.js); beforeAll builds it when stale.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './support/builtStore.js';
import { openStore, type Store } from '../src/store/store.js';

const root = resolve(import.meta.dirname, '..');
const child = join(root, 'test/fixtures/store-journal-child.mjs');
const compiled = join(root, 'dist/src/store/journal.js');
const source = join(root, 'src/store/journal.ts');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

beforeAll(() => ensureBuilt(root, compiled, source), 240_000);

function tempDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `mtm-journal-${name}-`));
  dirs.push(d);
  return d;
}

interface Behind {
  acks: [number, number][];
  lmdbCommits: number;
  stderr: string;
}

/** Runs the child in a `behind` mode until it kills itself right after its last ack. */
function runBehind(path: string, mode: 'behind' | 'behind-sync'): Promise<Behind> {
  return new Promise((done, reject) => {
    const p = spawn(process.execPath, [child, path, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    const run: Behind = { acks: [], lmdbCommits: -1, stderr: '' };
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (chunk: string) => (out += chunk));
    p.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
    p.on('error', reject);
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (_code, signal) => {
      clearTimeout(timer);
      for (const line of out.split('\n')) {
        const [word, a, b] = line.split(' ');
        if (word === 'ack') run.acks.push([Number(a), Number(b)]);
        else if (word === 'lmdb') run.lmdbCommits = Number(a);
      }
      if (signal !== 'SIGKILL') reject(new Error(`child ended by itself: ${run.stderr}`));
      else done(run);
    });
  });
}

function open(path: string, lines: string[] = []): Store {
  const opened = openStore({ path, log: (line) => lines.push(line) });
  if (!opened.ok) throw new Error(opened.error.message);
  return opened.value;
}

/** Every seq 1..last once, each event and trade result its own (trade_id k-<seq>). */
function expectLog(store: Store, last: number): void {
  let n = 0;
  for (const e of store.eventsAfter(0)) {
    expect(e.seq).toBe(++n);
    if (e.type === 'TradeExecuted') expect(e.trade_id).toBe(`k-${e.seq}`);
  }
  expect(n).toBe(last);
  expect(store.lastSeq()).toBe(last);
}

function expectAcked(store: Store, acks: [number, number][]): void {
  for (const [first, end] of acks) for (let s = first; s <= end; s++) expect(store.tradeResult(`p${s % 7}`, `k-${s}`)).toEqual({ trade_id: `k-${s}`, seq: s });
}

/** The journal's records of a segment: [offset, bytes] each (layout in src/store/journal.ts). */
function records(file: string): [number, number][] {
  const buf = readFileSync(file);
  const out: [number, number][] = [];
  for (let off = 0; off + 8 <= buf.length; ) {
    const bytes = 8 + buf.readUInt32LE(off);
    out.push([off, bytes]);
    off += bytes;
  }
  return out;
}

function segments(path: string): string[] {
  return readdirSync(join(path, 'journal'))
    .filter((n) => n.endsWith('.jnl'))
    .sort()
    .map((n) => join(path, 'journal', n));
}

describe('kill -9 between the journal write and the LMDB commit', () => {
  for (const mode of ['behind', 'behind-sync'] as const) {
    it(`redoes every acknowledged append from the journal, once (${mode === 'behind' ? 'default mode' : '--sync'})`, async () => {
      const path = tempDir(mode);
      const run = await runBehind(path, mode);
      // The large append and the five small ones after it were acknowledged before the kill.
      expect(run.acks.length, run.stderr).toBe(6);
      const last = Math.max(...run.acks.map((a) => a[1]));
      expect(last).toBe(20_000 + 2 + 3 + 1 + 2 + 3);
      const lines: string[] = [];
      const store = open(path, lines);
      // Acknowledged appends were in no LMDB commit when the child died: the open redid them (the last
      // one at least: the child died right after its ack; the others unless LMDB's large commit
      // settled while they were written, which a loaded machine allows).
      const redone = store.stats().journalRedoneAtOpen;
      expect(redone.records).toBeGreaterThanOrEqual(1);
      expect(redone.trades).toBe(redone.events);
      expect(lines.join('\n')).toMatch(new RegExp(`journal: redid ${redone.records} groups \\(${redone.events} events, ${redone.trades} trade results\\) into LMDB`));
      expectLog(store, last);
      expectAcked(store, run.acks);
      // Queries by portfolio see the redone events (the index catches up from the log at open).
      expect(store.query({ portfolio_id: 'p3', limit: 1000, order: 'desc' })[0].seq).toBe(last - ((last - 3) % 7));
      await store.close();
      // A clean close left nothing to redo, and the log is the same.
      const again = open(path);
      expect(again.stats().journalRedoneAtOpen.records).toBe(0);
      expectLog(again, last);
      await again.close();
    }, 90_000);
  }
});

describe('a torn journal tail', () => {
  it('cuts a record cut short or with a broken CRC (never acknowledged), and refuses a bad record with data after it', async () => {
    const base = tempDir('torn');
    const run = await runBehind(base, 'behind');
    const last = Math.max(...run.acks.map((a) => a[1]));
    const seg = segments(base);
    const recs = records(seg[seg.length - 1]);
    expect(recs.length).toBeGreaterThanOrEqual(5);
    const [lastOff, lastBytes] = recs[recs.length - 1];
    // The child's last append (3 events) is the last record: a torn write of it was never acknowledged.
    const lastGroupEvents = 3;

    // 1. Cut short: 3 bytes of the last record missing.
    const short = tempDir('torn-short');
    cpSync(base, short, { recursive: true });
    const shortSeg = segments(short).pop() as string;
    truncateSync(shortSeg, lastOff + lastBytes - 3);
    const lines: string[] = [];
    const store = open(short, lines);
    expect(lines.join('\n')).toContain(`cut a torn last record (${lastBytes - 3} bytes at byte ${lastOff} of '${shortSeg}', never acknowledged)`);
    expect(statSync(shortSeg).size).toBe(lastOff);
    expectLog(store, last - lastGroupEvents);
    expectAcked(store, run.acks.filter((a) => a[1] <= last - lastGroupEvents));
    // The store goes on from there: the next seq follows the cut.
    const r = store.append([{ type: 'PortfolioCreated', portfolio_id: 'p1', ts: 1, name: 'p1', cash: 0, base_currency: 'USD', limits: {} } as never]);
    expect(r.stored[0].seq).toBe(last - lastGroupEvents + 1);
    await r.durable;
    await store.close();

    // 2. A broken CRC in the last record (a byte of its body flipped).
    const crc = tempDir('torn-crc');
    cpSync(base, crc, { recursive: true });
    const crcSeg = segments(crc).pop() as string;
    const bytes = readFileSync(crcSeg);
    bytes[lastOff + 20] ^= 0xff;
    writeFileSync(crcSeg, bytes);
    const crcLines: string[] = [];
    const crcStore = open(crc, crcLines);
    expect(crcLines.join('\n')).toContain(`cut a torn last record (${lastBytes} bytes at byte ${lastOff}`);
    expectLog(crcStore, last - lastGroupEvents);
    await crcStore.close();

    // 3. A broken record with good ones after it: acknowledged groups would be lost, so no open.
    const bad = tempDir('torn-middle');
    cpSync(base, bad, { recursive: true });
    const badSeg = segments(bad).pop() as string;
    const [midOff] = recs[recs.length - 3];
    const mid = readFileSync(badSeg);
    mid[midOff + 20] ^= 0xff;
    writeFileSync(badSeg, mid);
    const refused = openStore({ path: bad });
    expect(refused.ok).toBe(false);
    if (!refused.ok) {
      expect(refused.error.code).toBe('store_failed');
      expect(refused.error.message).toContain(`journal segment '${badSeg}' has a bad record at byte ${midOff} with data after it`);
    }
    // Refused without touching it: the segment is as it was.
    expect(readFileSync(badSeg).equals(mid)).toBe(true);
  }, 90_000);
});

describe('a failed journal write (the disk is full)', () => {
  it('rejects it and everything after, acknowledges in log order before it, and the journal redoes every ack', async () => {
    const path = tempDir('full');
    mkdirSync(join(path, 'journal'));
    const saved = join(path, 'journal-as-the-disk-held-it');
    mkdirSync(saved);
    // A private mount namespace: a 512 KiB tmpfs on the journal directory only (LMDB's file is not on
    // it); what the tmpfs held is copied out after the child, before the namespace goes.
    const script = 'mount -t tmpfs -o size=512k tmpfs "$1/journal" && "$0" "$2" "$1" fill; s=$?; cp -a "$1/journal/." "$3/"; exit $s';
    const p = spawnSync('unshare', ['-r', '-m', 'sh', '-c', script, process.execPath, path, child, saved], { encoding: 'utf8', timeout: 60_000 });
    expect(p.status, p.stderr).toBe(0);
    const line = p.stdout.split('\n').find((l) => l.startsWith('result ')) ?? '';
    expect(line, p.stdout + p.stderr).not.toBe('');
    const r = JSON.parse(line.slice('result '.length)) as { acks: [number, number][]; firstRefused: number; code: string; message: string; failed: boolean; laterRefused: boolean };
    expect(r.failed).toBe(true);
    expect(r.laterRefused).toBe(true);
    expect(r.code).toBe('store_failed');
    expect(r.message).toMatch(/^store commit failed \(journal write of \d+ events from seq \d+\): ENOSPC/);
    expect(r.acks.length).toBeGreaterThan(10);
    for (let i = 0; i < r.acks.length; i++) {
      expect(r.acks[i][0]).toBe(i === 0 ? 1 : r.acks[i - 1][1] + 1);
      expect(r.acks[i][1]).toBeLessThan(r.firstRefused);
    }
    expect(r.acks[r.acks.length - 1][1]).toBe(r.firstRefused - 1);
    // The journal as the full disk held it (a partial last record included, if the write was cut short).
    rmSync(join(path, 'journal'), { recursive: true });
    cpSync(saved, join(path, 'journal'), { recursive: true });
    const store = open(path);
    // Every acknowledged append, whether or not LMDB had committed it, and nothing after the failure.
    expectLog(store, r.firstRefused - 1);
    expectAcked(store, r.acks);
    await store.close();
  }, 90_000);
});
