// Proves POST /api/v1/trades/import on a real engine behind the real uWS server (no mocks):
// - NDJSON in, one NDJSON answer a line out, in input order: applied, duplicate (a trade id seen
//   before, in the file or earlier), or the line's error with its code; a summary line ends it;
// - idempotent per trade id: the same file imported twice applies nothing the second time;
// - bad input: a wrong content type is refused (415) before a byte is applied; a 10 MB line, a line
//   that is not JSON, stop the import at that line number and apply nothing after it; NaN (as text,
//   JSON has no NaN), an unknown portfolio and a portfolio outside the key's trade: scopes are
//   answered on their own line and change nothing;
// - the CLI (`mtm import`, dist/) reads NDJSON and CSV with a header and prints one summary line
//   when stdout is not a terminal.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startHarness, type Harness } from './support/serverHarness.js';

const keys = [
  { key: 'admin-key-0123456789', name: 'admin', scopes: ['admin', 'trade:*', 'read:*'] },
  { key: 'desk1-key-0123456789', name: 'desk1', scopes: ['read:imp-1', 'read:imp-2', 'trade:imp-1'] },
];
const [ADMIN, DESK1] = keys.map((k) => k.key);
const root = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'mtm-import-test-'));

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ keys, limits: { commandsPerSecond: 100_000 } });
  for (const id of ['imp-1', 'imp-2', 'imp-3', 'imp-4']) expect((await http(h.url, 'POST', '/api/v1/portfolios', { id, cash: 1_000_000 }, ADMIN)).status).toBe(201);
});

afterAll(async () => {
  await h?.close();
  rmSync(tmp, { recursive: true, force: true });
});

interface Answer {
  line?: number;
  portfolio_id?: string | null;
  trade_id?: string | null;
  result?: string;
  error?: { code: string; message: string };
  summary?: { lines: number; applied: number; duplicate: number; errors: number; stopped: boolean };
}

async function importBody(body: string, key = ADMIN, contentType = 'application/x-ndjson'): Promise<{ status: number; answers: Answer[]; text: string }> {
  const r = await fetch(h.url + '/api/v1/trades/import', { method: 'POST', headers: { 'Content-Type': contentType, Authorization: `Bearer ${key}` }, body });
  const text = await r.text();
  if (r.status !== 200) return { status: r.status, answers: [], text };
  return { status: r.status, answers: text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Answer), text };
}

const line = (o: object) => JSON.stringify(o) + '\n';
const buy = (portfolio_id: string, trade_id: string, symbol = 'IMP', quantity: unknown = 1) => ({ portfolio_id, trade_id, symbol, side: 'buy', quantity, price: 10 });

async function quantity(id: string, symbol: string): Promise<number> {
  const s = await http(h.url, 'GET', `/api/v1/portfolios/${id}`, undefined, ADMIN);
  return (s.body.positions as { symbol: string; quantity: number }[]).find((p) => p.symbol === symbol)?.quantity ?? 0;
}

describe('POST /api/v1/trades/import', () => {
  it('answers every line in input order, applies each trade id once, and says why a line was refused', async () => {
    const body =
      line(buy('imp-1', 'a1')) +
      line(buy('imp-2', 'a2')) +
      line(buy('imp-1', 'a1')) + // the same trade id again: a duplicate
      line(buy('imp-1', 'a3', 'IMP', 'NaN')) +
      line(buy('nope', 'a4')) +
      '\n' + // an empty line is skipped (it still counts as a line number)
      line(buy('imp-2', 'a5', 'IMP', 2));
    const r = await importBody(body);
    expect(r.status).toBe(200);
    const answers = r.answers.filter((a) => a.summary === undefined);
    expect(answers.map((a) => [a.line, a.trade_id, a.result])).toEqual([
      [1, 'a1', 'applied'],
      [2, 'a2', 'applied'],
      [3, 'a1', 'duplicate'],
      [4, 'a3', 'error'],
      [5, 'a4', 'error'],
      [7, 'a5', 'applied'],
    ]);
    expect(answers[3].error?.code).toBe('invalid_quantity');
    expect(answers[4].error?.code).toBe('portfolio_not_found');
    expect(r.answers[r.answers.length - 1].summary).toEqual({ lines: 6, applied: 3, duplicate: 1, errors: 2, stopped: false });
    expect(await quantity('imp-1', 'IMP')).toBe(1);
    expect(await quantity('imp-2', 'IMP')).toBe(3);
    // The same file again: every trade id is known, nothing is applied twice.
    const again = await importBody(body);
    expect(again.answers.filter((a) => a.result === 'applied')).toEqual([]);
    expect(again.answers[again.answers.length - 1].summary).toMatchObject({ applied: 0, duplicate: 4, errors: 2 });
    expect(await quantity('imp-1', 'IMP')).toBe(1);
    expect(await quantity('imp-2', 'IMP')).toBe(3);
  });

  it('needs trade: scope for each portfolio a line touches: outside it the line is refused, the rest applies', async () => {
    const r = await importBody(line(buy('imp-1', 's1', 'SCP')) + line(buy('imp-2', 's2', 'SCP')) + line(buy('imp-4', 's3', 'SCP')), DESK1);
    expect(r.answers.slice(0, 3).map((a) => [a.trade_id, a.result, a.error?.code])).toEqual([
      ['s1', 'applied', undefined],
      // readable but not tradeable: forbidden; neither: the same answer as a missing portfolio
      ['s2', 'error', 'forbidden'],
      ['s3', 'error', 'portfolio_not_found'],
    ]);
    expect(await quantity('imp-1', 'SCP')).toBe(1);
    expect(await quantity('imp-2', 'SCP')).toBe(0);
    expect(await quantity('imp-4', 'SCP')).toBe(0);
  });

  it('refuses a wrong content type before applying anything', async () => {
    const r = await importBody(line(buy('imp-3', 'c1', 'CT')), ADMIN, 'application/json');
    expect(r.status).toBe(415);
    expect(JSON.parse(r.text).error.code).toBe('unsupported_media_type');
    expect(await quantity('imp-3', 'CT')).toBe(0);
  });

  it('stops at a 10 MB line, naming it, and applies nothing after it', async () => {
    const huge = JSON.stringify({ ...buy('imp-3', 'big'), pad: 'x'.repeat(10 * 1024 * 1024) }) + '\n';
    const r = await importBody(line(buy('imp-3', 'b1', 'BIG')) + huge + line(buy('imp-3', 'b2', 'BIG')));
    expect(r.status).toBe(200);
    expect(r.answers.map((a) => a.result ?? 'summary')).toEqual(['applied', 'stopped', 'summary']);
    expect(r.answers[1]).toMatchObject({ line: 2, error: { code: 'payload_too_large' } });
    expect(r.answers[1].error?.message).toContain('line 2');
    expect(r.answers[2].summary).toMatchObject({ applied: 1, stopped: true });
    expect(await quantity('imp-3', 'BIG')).toBe(1);
  });

  it('stops at a line that is not JSON (NaN is not JSON), naming its number', async () => {
    const r = await importBody(line(buy('imp-3', 'm1', 'MAL')) + line(buy('imp-3', 'm2', 'MAL')) + '{"portfolio_id":"imp-3","trade_id":"m3","symbol":"MAL","side":"buy","quantity":NaN,"price":1}\n' + line(buy('imp-3', 'm4', 'MAL')));
    expect(r.answers.map((a) => a.result ?? 'summary')).toEqual(['applied', 'applied', 'stopped', 'summary']);
    expect(r.answers[2]).toMatchObject({ line: 3, error: { code: 'invalid_json', message: 'line 3: not valid JSON' } });
    expect(await quantity('imp-3', 'MAL')).toBe(2);
  });
});

describe('mtm import (CLI)', () => {
  const cli = join(root, 'dist/src/cli/main.js');
  // Asynchronous: the server runs in this process, so a synchronous spawn would starve it.
  const run = (file: string, ...extra: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((done, reject) => {
      const p = spawn(process.execPath, [cli, 'import', file, '--url', h.url, '--key', ADMIN, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      p.on('error', reject);
      p.on('close', (status) => done({ status, stdout, stderr }));
    });

  it('imports NDJSON and prints one summary line when not on a terminal', async () => {
    const file = join(tmp, 'trades.ndjson');
    writeFileSync(file, Array.from({ length: 50 }, (_, i) => line(buy('imp-4', `n${i}`, 'CLI'))).join(''));
    const p = await run(file);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/^imported .*trades\.ndjson: 50 lines, 50 applied, 0 duplicate, 0 errors in [\d.]+ s \(\d+ trades\/s\)\n$/);
    const again = await run(file);
    expect(again.stdout).toContain('50 lines, 0 applied, 50 duplicate, 0 errors');
  });

  it('imports CSV with a header row, and exits 1 naming the lines it refused', async () => {
    const file = join(tmp, 'trades.csv');
    writeFileSync(file, 'portfolio_id,trade_id,symbol,side,quantity,price\nimp-4,c1,CSV,buy,2,10\nimp-4,c2,CSV,sell,1,"11"\nimp-4,c3,CSV,buy,abc,10\n');
    const p = await run(file);
    expect(p.status).toBe(1);
    expect(p.stdout).toContain('3 lines, 2 applied, 0 duplicate, 1 errors');
    expect(p.stderr).toContain('line 3: invalid_quantity');
    expect(await quantity('imp-4', 'CSV')).toBe(1);
  });
});
