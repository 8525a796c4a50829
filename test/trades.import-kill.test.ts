// Proves bulk import survives a crash of the server and stays bounded in memory, with real processes
// (mtm serve and mtm import from dist/, real LMDB, no mocks):
// - the server is SIGKILLed while `mtm import` streams a file into it; after a restart on the same
//   data directory the same file is imported again, and every trade of the file is then booked
//   exactly once (each buys 1 unit: the position equals the trades of its portfolio, none lost, none
//   doubled; the second run answers the ones booked before the kill as duplicates);
// - a 1,000,000-line import (50,000 distinct trades, each sent 20 times: applied once, then answered
//   as duplicates) completes on a server whose main-thread heap is capped at 128 MB, and keeps its
//   anonymous memory (RssAnon, not the LMDB file pages it maps) within a fixed bound of what it was
//   after the first 100,000 lines, whatever the body size.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'mtm-import-kill-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const portfolios = 20;
const trades = 20_000;

function serve(data: string, heapMb?: number): Promise<{ url: string; child: ChildProcess }> {
  return new Promise((done, reject) => {
    const node = heapMb === undefined ? [] : [`--max-old-space-size=${heapMb}`];
    const child = spawn(process.execPath, [...node, cli, 'serve', '--port', '0', '--data', data, '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /mtm listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        done({ url: m[1], child });
      }
    });
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => reject(new Error(`server exited (${code}): ${out}`)));
  });
}

function runImport(file: string, url: string): { child: ChildProcess; done: Promise<{ status: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [cli, 'import', file, '--url', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return { child, done: new Promise((r) => child.on('close', (status) => r({ status, stdout, stderr }))) };
}

async function quantity(url: string, id: string): Promise<number> {
  const r = await fetch(`${url}/api/v1/portfolios/${id}`);
  const body = (await r.json()) as { positions: { symbol: string; quantity: number }[] };
  return body.positions.find((p) => p.symbol === 'KIL')?.quantity ?? 0;
}

describe('kill -9 mid-import', () => {
  it('re-running the same file books every trade exactly once', async () => {
    const data = join(dir, 'data');
    const file = join(dir, 'trades.ndjson');
    let body = '';
    for (let i = 0; i < trades; i++) body += JSON.stringify({ portfolio_id: `k${i % portfolios}`, trade_id: `kill-${i}`, symbol: 'KIL', side: 'buy', quantity: 1, price: 10 }) + '\n';
    writeFileSync(file, body);

    let server = await serve(data);
    for (let p = 0; p < portfolios; p++) {
      const r = await fetch(`${server.url}/api/v1/portfolios`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id: `k${p}`, cash: 1_000_000 }) });
      expect(r.status).toBe(201);
    }
    const first = runImport(file, server.url);
    // Kill the server once some trades are durable (the events endpoint reads committed events only),
    // while the import is still streaming.
    const durableTrades = async () => {
      const r = await fetch(`${server.url}/api/v1/portfolios/k0/events?type=TradeExecuted&limit=50`);
      return ((await r.json()) as { events: unknown[] }).events.length;
    };
    const started = Date.now();
    while ((await durableTrades()) < 20) {
      if (Date.now() - started > 60_000) throw new Error('no trade booked within 60 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    server.child.kill('SIGKILL');
    await new Promise((r) => server.child.once('exit', r));
    const cut = await first.done;
    expect(cut.status, cut.stdout + cut.stderr).not.toBe(0);

    server = await serve(data);
    const bookedBefore = (await Promise.all(Array.from({ length: portfolios }, (_, p) => quantity(server.url, `k${p}`)))).reduce((a, b) => a + b, 0);
    expect(bookedBefore).toBeGreaterThan(0);
    expect(bookedBefore).toBeLessThan(trades);
    const second = await runImport(file, server.url).done;
    expect(second.status, second.stdout + second.stderr).toBe(0);
    const m = /(\d+) lines, (\d+) applied, (\d+) duplicate, 0 errors/.exec(second.stdout);
    expect(m, second.stdout).not.toBeNull();
    const [lines, applied, duplicate] = (m as RegExpExecArray).slice(1).map(Number);
    expect(lines).toBe(trades);
    // What survived the kill is answered as duplicates, the rest is applied now.
    expect(duplicate).toBe(bookedBefore);
    expect(applied).toBe(trades - bookedBefore);
    for (let p = 0; p < portfolios; p++) expect(await quantity(server.url, `k${p}`)).toBe(trades / portfolios);
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
  }, 240_000);
});

/** The server's anonymous resident memory (heap, buffers), in bytes. */
function rssAnonBytes(pid: number): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

describe('a 1,000,000-line import', () => {
  it('answers every line and keeps the server memory bounded', async () => {
    const data = join(dir, 'data-1m');
    // The main thread's V8 heap is capped: a server that kept lines or answers would die of it (the
    // body alone is ~100 MB); left uncapped, V8 grows its heap lazily and RSS says little.
    const server = await serve(data, 128);
    const pid = server.child.pid as number;
    for (let p = 0; p < portfolios; p++) {
      const r = await fetch(`${server.url}/api/v1/portfolios`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id: `m${p}`, cash: 1_000_000 }) });
      expect(r.status).toBe(201);
    }
    const lines = 1_000_000;
    const distinct = 50_000;
    let sent = 0;
    let baseline = 0;
    let peak = 0;
    const counts = { applied: 0, duplicate: 0, other: 0, summary: 0 };
    await new Promise<void>((done, reject) => {
      const req = request(`${server.url}/api/v1/trades/import`, { method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' } }, (res) => {
        expect(res.statusCode).toBe(200);
        let rest = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          rest += chunk;
          let nl: number;
          while ((nl = rest.indexOf('\n')) >= 0) {
            const a = JSON.parse(rest.slice(0, nl)) as { result?: string; summary?: unknown };
            rest = rest.slice(nl + 1);
            if (a.summary !== undefined) counts.summary++;
            else if (a.result === 'applied') counts.applied++;
            else if (a.result === 'duplicate') counts.duplicate++;
            else counts.other++;
          }
        });
        res.on('end', () => done());
        res.on('error', reject);
      });
      req.on('error', reject);
      // The body is generated as it is sent, with backpressure: never held whole on either side.
      const write = (): void => {
        while (sent < lines) {
          let chunk = '';
          for (let k = 0; k < 1000 && sent < lines; k++, sent++) {
            const i = sent % distinct;
            chunk += `{"portfolio_id":"m${i % portfolios}","trade_id":"big-${i}","symbol":"BIG","side":"buy","quantity":1,"price":10}\n`;
          }
          if (sent === 100_000) baseline = rssAnonBytes(pid);
          if (sent >= 100_000) peak = Math.max(peak, rssAnonBytes(pid));
          if (!req.write(chunk)) {
            req.once('drain', write);
            return;
          }
        }
        req.end();
      };
      write();
    });
    expect(counts).toEqual({ applied: distinct, duplicate: lines - distinct, other: 0, summary: 1 });
    // Each portfolio holds its distinct trades once.
    expect(await quantityOf(server.url, 'm0', 'BIG')).toBe(distinct / portfolios);
    // 900,000 more lines after the baseline moved the anonymous memory by less than 200 MB (the body
    // alone is ~100 MB, the answers ~90 MB; buffering either would pass it).
    expect(peak - baseline, `baseline ${baseline} peak ${peak}`).toBeLessThan(200 * 1024 * 1024);
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
  }, 600_000);
});

async function quantityOf(url: string, id: string, symbol: string): Promise<number> {
  const r = await fetch(`${url}/api/v1/portfolios/${id}`);
  const body = (await r.json()) as { positions: { symbol: string; quantity: number }[] };
  return body.positions.find((p) => p.symbol === symbol)?.quantity ?? 0;
}
