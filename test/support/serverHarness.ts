// Test harness: a real engine (shard workers from dist/) behind a real server on an ephemeral port,
// plus small HTTP and WebSocket helpers that record every answer for assertions.

import WebSocket from 'ws';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine, EngineOptions } from '../../src/engine/api.js';
import { createEngine } from '../../src/engine/engine.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import type { ServerOptions } from '../../src/server/options.js';

export interface Harness {
  engine: Engine;
  server: RunningServer;
  url: string;
  wsUrl: string;
  dataDir: string | null;
  close(): Promise<void>;
}

export async function startHarness(
  serverOptions: Partial<ServerOptions> = {},
  engineOptions: EngineOptions & { persistent?: boolean } = {},
): Promise<Harness> {
  const { persistent, ...eo } = engineOptions;
  const dataDir = persistent ? mkdtempSync(join(tmpdir(), 'mtm-server-test-')) : null;
  const engine: Engine = await createEngine({ workers: 2, ...eo, ...(dataDir ? { dataDir } : {}) });
  let server: RunningServer;
  try {
    server = await startServer(engine, { port: 0, log: null, ...serverOptions });
  } catch (e) {
    await engine.close();
    throw e;
  }
  return {
    engine,
    server,
    url: server.url,
    wsUrl: server.url.replace('http://', 'ws://'),
    dataDir,
    close: async () => {
      await server.close();
      await engine.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export async function http(base: string, method: string, path: string, body?: unknown, key?: string, extraHeaders: Record<string, string> = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...extraHeaders };
  if (key !== undefined) headers.Authorization = `Bearer ${key}`;
  let payload: string | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    headers['Content-Type'] ??= 'application/json';
  }
  const r = await fetch(base + path, { method, headers, body: payload });
  const text = await r.text();
  let parsed: unknown = undefined;
  try {
    parsed = text.length ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: r.status, headers: r.headers, body: parsed, text };
}

/** A `ws` client that queues every message (JSON parsed; binary as Buffer) for `next`. */
export class TestSocket {
  readonly messages: any[] = [];
  private cursor = 0;
  private waiters: (() => void)[] = [];
  closeCode: number | null = null;
  closeReason = '';
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.messages.push(isBinary ? Buffer.from(data) : JSON.parse(data.toString('utf8')));
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        for (const w of this.waiters.splice(0)) w();
        resolve(code);
      });
    });
    ws.on('error', () => {});
  }

  static async open(url: string, options: { key?: string; protocols?: string[]; headers?: Record<string, string> } = {}): Promise<TestSocket> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.key !== undefined) headers.Authorization = `Bearer ${options.key}`;
    const ws = new WebSocket(url, options.protocols ?? ['mtm.v1'], { headers });
    const s = new TestSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
    return s;
  }

  /** Expects the upgrade to be refused; resolves with the HTTP status and JSON body. */
  static async refused(url: string, options: { key?: string; protocols?: string[] } = {}): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = {};
    if (options.key !== undefined) headers.Authorization = `Bearer ${options.key}`;
    const ws = new WebSocket(url, options.protocols ?? ['mtm.v1'], { headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        ws.close();
        reject(new Error('upgrade was accepted'));
      });
      ws.once('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      });
      ws.once('error', () => {});
    });
  }

  send(op: unknown): void {
    this.ws.send(typeof op === 'string' || Buffer.isBuffer(op) || op instanceof Uint8Array ? (op as string) : JSON.stringify(op));
  }

  /** The next message (from the cursor on) matching `pred`; messages before it are skipped. */
  async next(pred: (m: any) => boolean = () => true, timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.messages.length) {
        const m = this.messages[this.cursor++];
        if (pred(m)) return m;
      }
      if (this.closeCode !== null) throw new Error(`socket closed (${this.closeCode}) while waiting; got ${JSON.stringify(this.messages.slice(-5))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a message; last: ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Marks everything received so far as read: next() looks only at what comes after. */
  skipReceived(): void {
    this.cursor = this.messages.length;
  }

  /** All messages received so far matching `pred` (cursor untouched). */
  all(pred: (m: any) => boolean): any[] {
    return this.messages.filter(pred);
  }

  close(code = 1000): Promise<number> {
    if (this.closeCode === null) this.ws.close(code);
    return this.closed;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export const isType = (type: string, extra: (m: any) => boolean = () => true) => (m: any) => !Buffer.isBuffer(m) && m.type === type && extra(m);
