// Support for the page tests: Debian's Chromium through playwright-core (never downloaded browsers),
// the built page (dist/web), and the real CLI server as a child process that a test can kill and
// start again on the same port and data dir.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const root = join(import.meta.dirname, '..', '..');
export const chromiumPath = '/usr/bin/chromium';
export const hasChromium = existsSync(chromiumPath);

/** Says loudly why the browser tests do not run; they are skipped with it.skipIf(!hasChromium), never silently. */
export function announceSkip(file: string): void {
  if (hasChromium) return;
  const line = '='.repeat(100);
  console.warn(`\n${line}\nSKIPPED: chromium not installed; CI installs it via apt-get install chromium (${file})\n${line}\n`);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
    timeout: 30_000,
  });
}

export const webDir = join(root, 'dist', 'web');

/** Builds the page when dist/web is missing (npm test builds it first; a bare `vitest run` may not have). */
export function ensureWebBuilt(): void {
  if (existsSync(join(webDir, 'index.html'))) return;
  execFileSync(process.execPath, [join(root, 'web', 'build.mjs')], { cwd: root, stdio: 'inherit', timeout: 60_000 });
}

/** The engine and server (dist/) must be built: the CLI and the in-process servers run compiled code. */
export function ensureServerBuilt(): void {
  if (existsSync(join(root, 'dist/src/cli/main.js')) && existsSync(join(root, 'dist/src/shard/worker.js')) && existsSync(join(root, 'dist/assembly/kernel.wasm'))) return;
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
}

/** `mtm serve --demo` in a child process. */
export class CliServer {
  private readonly output: string[] = [];

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly port: number,
  ) {}

  /** Starts the CLI and resolves once it listens and the demo book is seeded (its "demo:" line). */
  static start(dataDir: string, port = 0, timeoutMs = 60_000): Promise<CliServer> {
    const child = spawn(process.execPath, [join(root, 'dist/src/cli/main.js'), 'serve', '--demo', '--port', String(port), '--data', dataDir, '--workers', '1'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    return new Promise<CliServer>((resolve, reject) => {
      let url: string | null = null;
      let done = false;
      const timer = setTimeout(() => finish(new Error(`CLI not ready within ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs);
      const finish = (e: Error | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (e !== null) {
          child.kill('SIGKILL');
          reject(e);
          return;
        }
        const s = new CliServer(child, url!, Number(new URL(url!).port));
        s.output.push(...lines);
        child.stdout!.on('data', (d: Buffer) => s.keep(String(d)));
        child.stderr!.on('data', (d: Buffer) => s.keep(String(d)));
        resolve(s);
      };
      const onData = (d: Buffer) => {
        for (const line of String(d).split('\n')) {
          if (line.trim() === '') continue;
          lines.push(line);
          const m = /mtm listening on (http:\/\/\S+)/.exec(line);
          if (m) url = m[1];
          if (line.startsWith('demo:') && url !== null) finish(null);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code, signal) => finish(new Error(`CLI exited (${code ?? signal}) before it was ready:\n${lines.join('\n')}`)));
    });
  }

  /**
   * Starts the CLI on the port a killed server held, retrying while the port cannot be bound (bounded
   * by timeoutMs). The first server gets a port below the ephemeral range (startPort): on an ephemeral
   * port, the browser's reconnect attempts to the dead server can TCP self-connect (source port ==
   * destination port) and hold it for a minute, which is what made this step take ~65 s.
   */
  static async restart(dataDir: string, port: number, timeoutMs = 100_000): Promise<{ server: CliServer; waitedMs: number }> {
    const t0 = Date.now();
    for (;;) {
      // Probing with a plain bind is much cheaper than spawning a CLI that builds an engine and then fails.
      while (!(await canBind(port)) && Date.now() - t0 < timeoutMs) await sleep(500);
      try {
        return { server: await CliServer.start(dataDir, port), waitedMs: Date.now() - t0 };
      } catch (e) {
        if (!/cannot listen/.test(String(e)) || Date.now() - t0 > timeoutMs) throw e;
        await sleep(2_000);
      }
    }
  }

  private keep(text: string): void {
    for (const line of text.split('\n')) if (line.trim() !== '' && !line.startsWith('ticks/s')) this.output.push(line);
    if (this.output.length > 200) this.output.splice(0, this.output.length - 200);
  }

  /** The last lines it printed (stats lines left out), for failure messages. */
  log(): string {
    return this.output.join('\n');
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends `signal` and waits for the exit (SIGKILL after timeoutMs). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}

/** A free port below Linux's ephemeral range (32768-60999), so no client socket can ever take it. */
export async function startPort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canBind(port)) return port;
  }
  throw new Error('no free port in 20000-31999');
}

/** JSON over HTTP against a running server. */
export async function api<T = any>(base: string, method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (key !== undefined) headers.Authorization = `Bearer ${key}`;
  const r = await fetch(base + path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await r.text();
  return { status: r.status, body: (text === '' ? null : JSON.parse(text)) as T };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether 127.0.0.1:port can be listened on right now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
