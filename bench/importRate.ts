// node dist/bench/importRate.js [--trades N] [--portfolios P] [--workers W]
//
// Bulk import end to end from a file, as an operator runs it: `mtm serve` (its own process, a fresh
// data directory) and `mtm import FILE --url URL` (another process) on an NDJSON file of N trades
// (default 100,000) over P portfolios (default 200, created first over REST), each line buying or
// selling 1 unit of one of 20 symbols. Reports the import's wall time (the `mtm import` process from
// spawn to exit), trades/s, and the server's bytes written per trade (`write_bytes` of
// /proc/<server pid>/io across the import) and the server's CPU time per trade (user + system of every
// thread, /proc/<server pid>/stat: on a shared machine the stable figure, where wall time is not) and
// the client's (/proc/<import pid>/stat, read every 20 ms until it exits), and the server's main
// thread's alone (/proc/<pid>/task/<pid>/stat). Then one JSON line.
// --cpu-prof DIR runs the server under node --cpu-prof (a profile per thread in DIR). Used for issue 15's import figures in
// docs/BENCHMARKS.md; the same command on two builds compares them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

const trades = arg('--trades', 100_000);
const portfolios = arg('--portfolios', 200);
const workers = arg('--workers', 1);
const cli = resolve(import.meta.dirname, '../src/cli/main.js');
/** --cpu-prof DIR: the server runs under node --cpu-prof, its profiles (every thread) written to DIR at exit. */
const profIndex = process.argv.indexOf('--cpu-prof');
const profDir = profIndex >= 0 ? process.argv[profIndex + 1] : null;

function writeBytes(pid: number): number {
  const m = /write_bytes:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  return m === null ? 0 : Number(m[1]);
}

/** CPU seconds (user + system, every thread) the process has used: /proc/<pid>/stat fields 14 and 15. */
function cpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const prof = profDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir];
  const child = spawn(process.execPath, [...prof, cli, 'serve', '--port', '0', '--data', dataDir, '--workers', String(workers), '--stats-interval-ms', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((done, fail) => {
    let out = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const m = /mtm listening on (\S+)/.exec(out);
      if (m !== null) done({ child, url: m[1] });
    });
    child.on('exit', (code) => fail(new Error(`mtm serve exited (${code}): ${out}`)));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'mtm-import-rate-'));
const file = join(dir, 'trades.ndjson');
const lines: string[] = [];
for (let n = 0; n < trades; n++) {
  const p = n % portfolios;
  const side = Math.floor(n / portfolios) % 2 === 0 ? 'buy' : 'sell';
  lines.push(JSON.stringify({ portfolio_id: `p${p}`, trade_id: `t${n}`, symbol: `S${n % 20}`, side, quantity: 1, price: 100 + (n % 7) }));
}
writeFileSync(file, lines.join('\n') + '\n');
const { child, url } = await startServer(join(dir, 'data'));
try {
  for (let p = 0; p < portfolios; p++) {
    const r = await fetch(`${url}/api/v1/portfolios`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: `p${p}`, cash: 1e9 }) });
    if (r.status !== 201) throw new Error(`create p${p}: ${r.status} ${await r.text()}`);
  }
  const b0 = writeBytes(child.pid as number);
  const c0 = cpuSeconds(child.pid as number);
  // The server's main thread alone (its task id is the process id): the import's bound (issue 15).
  const m0 = cpuSeconds(child.pid as number, child.pid as number);
  const t0 = performance.now();
  const imp = spawn(process.execPath, [cli, 'import', file, '--url', url], { stdio: ['ignore', 'pipe', 'inherit'] });
  // The client's own CPU (it must not be the bottleneck): read until it exits, the last reading kept.
  let clientCpu = 0;
  const poll = setInterval(() => {
    try {
      clientCpu = cpuSeconds(imp.pid as number);
    } catch {
      // exited between two readings
    }
  }, 20);
  let summary = '';
  imp.stdout?.setEncoding('utf8');
  imp.stdout?.on('data', (chunk: string) => (summary += chunk));
  const code = await new Promise<number | null>((done) => imp.on('exit', done));
  clearInterval(poll);
  const seconds = (performance.now() - t0) / 1000;
  const b1 = writeBytes(child.pid as number);
  const c1 = cpuSeconds(child.pid as number);
  const m1 = cpuSeconds(child.pid as number, child.pid as number);
  const result = {
    trades,
    portfolios,
    workers,
    exitCode: code,
    seconds: Math.round(seconds * 1000) / 1000,
    tradesPerSecond: Math.round(trades / seconds),
    bytesWrittenPerTrade: Math.round((b1 - b0) / trades),
    serverCpuMicrosPerTrade: Math.round(((c1 - c0) * 1e6) / trades),
    serverMainThreadCpuMicrosPerTrade: Math.round(((m1 - m0) * 1e6) / trades),
    /** Read every 20 ms while it ran: at most 20 ms of its CPU is missed. */
    clientCpuMicrosPerTrade: Math.round((clientCpu * 1e6) / trades),
    summary: summary.trim(),
  };
  console.log(`import: ${trades} trades in ${result.seconds} s, ${result.tradesPerSecond} trades/s, ${result.bytesWrittenPerTrade} bytes written/trade (server), ${result.serverCpuMicrosPerTrade} µs server CPU/trade (main thread ${result.serverMainThreadCpuMicrosPerTrade}), ${result.clientCpuMicrosPerTrade} µs client CPU/trade, exit ${code}: ${result.summary}`);
  console.log(JSON.stringify(result));
} finally {
  child.kill('SIGTERM');
  await new Promise((done) => child.once('exit', done));
  rmSync(dir, { recursive: true, force: true });
}
