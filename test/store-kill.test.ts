// Proves the store's durability contract with real processes and a real LMDB, no mocks:
// - kill -9 mid-stream, in both modes (default and --sync), twice on the same data dir: every seq
//   the child printed as acknowledged (its `durable` resolved) is present exactly once after reopen,
//   with its own payload and trade result; the stored seqs are contiguous from 1 (no hole, no
//   duplicate, across restarts); no snapshot is durable ahead of the events it covers.
// - a commit the disk refuses (the child runs under a file-size limit) rejects `durable` with
//   store_failed, and the store refuses every later write instead of leaving a hole in the seqs.
// - the same with several pipelined commits in flight when the disk refuses one: acks resolve in log
//   order, none after the refused commit, and the durable log is a contiguous prefix holding every ack.
// - a kill -9 while the lagging index transaction is behind the log (all of it: the child's index
//   never comes): reopening catches the index up before any read, so every acknowledged event is
//   found by portfolio, type and time, and every acknowledged trade id answers its first result.
// The child runs the compiled store (dist/src/store/store.js); beforeAll builds it when missing or
// older than the source.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './support/builtStore.js';
import { openStore } from '../src/store/store.js';

const root = resolve(import.meta.dirname, '..');
const child = join(root, 'test/fixtures/store-kill-child.mjs');
const compiled = join(root, 'dist/src/store/store.js');
const source = join(root, 'src/store/store.ts');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

beforeAll(() => ensureBuilt(root, compiled, source), 240_000);

interface Run {
  ready: number;
  acks: [number, number][];
  snaps: number[];
  lines: string[];
  stderr: string;
}

/** Runs the child until it has acknowledged `acksMin` appends (or `timeoutMs`), then SIGKILLs it. */
function runAndKill(path: string, mode: string, acksMin: number, timeoutMs: number): Promise<Run> {
  return new Promise((done, reject) => {
    const p = spawn(process.execPath, [child, path, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    const run: Run = { ready: -1, acks: [], snaps: [], lines: [], stderr: '' };
    let buffered = '';
    let killed = false;
    const kill = () => {
      if (!killed) {
        killed = true;
        p.kill('SIGKILL');
      }
    };
    const timer = setTimeout(kill, timeoutMs);
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        run.lines.push(line);
        const [word, a, b] = line.split(' ');
        if (word === 'ready') run.ready = Number(a);
        else if (word === 'ack') run.acks.push([Number(a), Number(b)]);
        else if (word === 'snap') run.snaps.push(Number(a));
        if (run.acks.length >= acksMin) kill();
      }
    });
    p.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
    p.on('error', reject);
    // 'exit' comes after the kernel reaped it: its owner.pid names a dead process from then on.
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`child ended by itself (code ${code}): ${run.stderr}`));
      else done(run);
    });
  });
}

async function verify(path: string, runs: Run[]): Promise<number> {
  const opened = openStore({ path });
  if (!opened.ok) throw new Error(opened.error.message);
  const store = opened.value;
  const seqs: number[] = [];
  for (const e of store.eventsAfter(0)) {
    expect(e.type).toBe('TradeExecuted');
    if (e.type === 'TradeExecuted') expect(e.trade_id).toBe(`k-${e.seq}`);
    seqs.push(e.seq);
  }
  const last = seqs.length;
  // Contiguous from 1: no hole and no duplicate, across every kill and restart.
  expect(seqs).toEqual(Array.from({ length: last }, (_, i) => i + 1));
  expect(store.lastSeq()).toBe(last);
  for (const run of runs) {
    for (const [first, end] of run.acks) {
      expect(end).toBeLessThanOrEqual(last);
      for (let s = first; s <= end; s++) expect(store.tradeResult(`p${s % 7}`, `k-${s}`)).toEqual({ trade_id: `k-${s}`, seq: s });
    }
    for (const covered of run.snaps) expect(covered).toBeLessThanOrEqual(last);
  }
  for (const r of store.loadSnapshots()) expect(r.covered_seq).toBeLessThanOrEqual(last);
  await store.close();
  return last;
}

describe('kill -9', () => {
  for (const mode of ['default', 'sync']) {
    it(`loses no acknowledged append and leaves no hole (${mode} mode)`, async () => {
      const path = mkdtempSync(join(tmpdir(), `mtm-store-kill-${mode}-`));
      dirs.push(path);
      const first = await runAndKill(path, mode, 400, 8_000);
      expect(first.ready).toBe(0);
      expect(first.acks.length, first.stderr).toBeGreaterThan(10);
      const afterFirst = await verify(path, [first]);
      // Restart on the crashed directory: seqs continue, and a second kill is just as safe.
      const second = await runAndKill(path, mode, 400, 8_000);
      expect(second.ready).toBe(afterFirst);
      expect(second.acks.length, second.stderr).toBeGreaterThan(10);
      expect(second.acks[0][0]).toBe(afterFirst + 1);
      await verify(path, [first, second]);
    });
  }
});

describe('kill -9 with the index behind the log', () => {
  it('rebuilds the lagging index and the trade-id keys on reopen', async () => {
    const path = mkdtempSync(join(tmpdir(), 'mtm-store-kill-lagging-'));
    dirs.push(path);
    const run = await runAndKill(path, 'lagging', 200, 8_000);
    expect(run.acks.length, run.stderr).toBeGreaterThan(10);
    const opened = openStore({ path });
    if (!opened.ok) throw new Error(opened.error.message);
    const store = opened.value;
    const last = store.lastSeq();
    // Nothing of the log was indexed before the kill: the open indexed every event and trade id.
    expect(store.stats().indexCaughtUpAtOpen).toBe(2 * last);
    expect(store.stats().indexLagging).toBe(0);
    const byPortfolio = new Map<string, number[]>();
    for (let s = 1; s <= last; s++) byPortfolio.set(`p${s % 7}`, [...(byPortfolio.get(`p${s % 7}`) ?? []), s]);
    for (const [id, seqs] of byPortfolio) {
      const found: number[] = [];
      for (const e of store.eventsForPortfolio(id, 0, Infinity)) found.push(e.seq);
      expect(found).toEqual(seqs);
    }
    expect(store.query({ type: 'TradeExecuted', limit: 1000, order: 'desc' }).map((e) => e.seq)).toEqual(Array.from({ length: Math.min(last, 1000) }, (_, i) => last - i));
    expect(store.query({ from: 0, to: Date.now(), limit: 1000 })).toHaveLength(Math.min(last, 1000));
    for (const [first, end] of run.acks) for (let s = first; s <= end; s++) expect(store.tradeResult(`p${s % 7}`, `k-${s}`)).toEqual({ trade_id: `k-${s}`, seq: s });
    await store.close();
    // Caught up once: the next open has nothing to do.
    const again = openStore({ path });
    if (!again.ok) throw new Error(again.error.message);
    expect(again.value.stats().indexCaughtUpAtOpen).toBe(0);
    expect(again.value.query({ portfolio_id: 'p1', limit: 1000 }).map((e) => e.seq)).toEqual(byPortfolio.get('p1')?.slice(0, 1000));
    await again.value.close();
  });
});

describe('disk failure', () => {
  it('rejects durable with store_failed and refuses every later write', async () => {
    const path = mkdtempSync(join(tmpdir(), 'mtm-store-full-'));
    dirs.push(path);
    // ulimit -f counts 512-byte blocks in POSIX sh: 4 MB of data file, then writes fail (EFBIG).
    const p = spawnSync('/bin/sh', ['-c', 'ulimit -f 8192 && exec "$0" "$@"', process.execPath, child, path, 'fill'], { encoding: 'utf8', timeout: 30_000 });
    // Exit 0: the failed commit did not also crash the child with an unhandled rejection.
    expect(p.status, p.stderr).toBe(0);
    const line = p.stdout.split('\n').find((l) => l.startsWith('failed')) ?? '';
    expect(line, p.stdout + p.stderr).toMatch(/^failed store_failed store_failed later-refused true /);
    expect(line).toContain('store commit failed');
    // What was acknowledged before the failure is intact and contiguous.
    const opened = openStore({ path });
    if (!opened.ok) throw new Error(opened.error.message);
    let n = 0;
    for (const e of opened.value.eventsAfter(0)) expect(e.seq).toBe(++n);
    expect(n).toBeGreaterThan(0);
    await opened.value.close();
  });
});

describe('disk failure with pipelined commits', () => {
  it('acknowledges in log order, nothing after the refused commit, and leaves no hole', async () => {
    const path = mkdtempSync(join(tmpdir(), 'mtm-store-full-pipe-'));
    dirs.push(path);
    const p = spawnSync('/bin/sh', ['-c', 'ulimit -f 8192 && exec "$0" "$@"', process.execPath, child, path, 'pipeline-fill'], { encoding: 'utf8', timeout: 60_000 });
    expect(p.status, p.stderr).toBe(0);
    const line = p.stdout.split('\n').find((l) => l.startsWith('result ')) ?? '';
    expect(line, p.stdout + p.stderr).not.toBe('');
    const r = JSON.parse(line.slice('result '.length)) as { acks: [number, number][]; firstRefused: number; code: string; message: string; commitsInFlightSeen: number; failed: boolean };
    expect(r.failed).toBe(true);
    expect(r.code).toBe('store_failed');
    expect(r.message).toContain('store commit failed');
    // Several commits were in flight at once: the failure met a pipeline, not a single commit.
    expect(r.commitsInFlightSeen).toBeGreaterThan(1);
    expect(r.acks.length).toBeGreaterThan(0);
    // Acks resolved in log order, each right after the one before, and none at or after the refused seq.
    for (let i = 0; i < r.acks.length; i++) {
      expect(r.acks[i][0]).toBe(i === 0 ? 1 : r.acks[i - 1][1] + 1);
      expect(r.acks[i][1]).toBeLessThan(r.firstRefused);
    }
    const opened = openStore({ path });
    if (!opened.ok) throw new Error(opened.error.message);
    let n = 0;
    for (const e of opened.value.eventsAfter(0)) expect(e.seq).toBe(++n);
    // The durable log is exactly what was acknowledged: every commit before the refused one, and not
    // one commit after it (they were in flight, conditional on it, and wrote nothing).
    expect(r.acks[r.acks.length - 1][1]).toBe(r.firstRefused - 1);
    expect(n).toBe(r.firstRefused - 1);
    for (const [first, last] of r.acks) for (let s = first; s <= last; s++) expect(opened.value.tradeResult(`p${s % 7}`, `k-${s}`)).toEqual({ trade_id: `k-${s}`, seq: s });
    await opened.value.close();
  }, 90_000);
});
