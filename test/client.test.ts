// Proves the client SDK's resilience against a real server and engine:
// - reconnection with exponential backoff (growing delays while the server is down) and automatic
//   resubscription when it is back (a fresh snapshot, then updates again);
// - seq-gap detection: a lost update makes the client ask for a resync and its view ends equal to the
//   server's snapshot;
// - browser-style auth (no headers): the key travels as the mtm.bearer sub-protocol;
// - the pending-request map is bounded, requests time out, and a disconnect rejects what was pending.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { MtmClient, type WebSocketFactory, type WebSocketLike } from '../src/client/client.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import type { PortfolioSnapshot } from '../src/domain/types.js';
import { http, sleep, startHarness, until, type Harness } from './support/serverHarness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ limits: { commandsPerSecond: 100_000, connectsPerSecond: 100_000 } });
  expect((await http(h.url, 'POST', '/api/v1/portfolios', { id: 'cl', cash: 10_000 })).status).toBe(201);
  expect((await http(h.url, 'POST', '/api/v1/portfolios/cl/trades', { trade_id: 'cl-1', symbol: 'CL', side: 'buy', quantity: 3, price: 10 })).status).toBe(201);
});
afterAll(async () => {
  await h?.close();
});

async function tick(price: number): Promise<void> {
  h.engine.ingestTicks([{ symbol: 'CL', price, ts: Date.now() }]);
  await h.engine.drain();
}

/** `ws` sockets without headers (like a browser), recording each attempt's time. */
function recordingFactory(attempts: number[], intercept?: (data: unknown) => boolean): WebSocketFactory {
  return (url, protocols) => {
    attempts.push(Date.now());
    const ws = new WebSocket(url, protocols) as unknown as WebSocketLike & { on(e: string, f: () => void): void };
    ws.on('error', () => {});
    if (!intercept) return ws;
    // Drop the messages `intercept` says to drop, before the client sees them.
    return new Proxy(ws, {
      set(target, prop, value) {
        if (prop === 'onmessage' && typeof value === 'function') {
          (target as unknown as Record<string, unknown>).onmessage = (ev: { data: unknown }) => {
            if (!intercept(ev.data)) value(ev);
          };
          return true;
        }
        return Reflect.set(target, prop, value);
      },
    });
  };
}

describe('client SDK', () => {
  it('reconnects with exponential backoff and resubscribes', async () => {
    const server2 = await startServer(h.engine, { port: 0, log: null });
    const port = server2.port;
    const attempts: number[] = [];
    const states: string[] = [];
    const c = await MtmClient.connect({
      url: server2.url,
      webSocket: recordingFactory(attempts),
      reconnect: { initialDelayMs: 60, maxDelayMs: 1000, factor: 3, jitter: 0 },
      onStateChange: (s) => states.push(s),
    });
    const snaps: PortfolioSnapshot[] = [];
    c.subscribe(['cl'], { onSnapshot: (s) => snaps.push(s) });
    await until(() => snaps.length === 1, 5000, 'first snapshot');
    await server2.close();
    await sleep(900); // down: reconnect attempts after ~60, 180, 540 ms
    const server3: RunningServer = await startServer(h.engine, { port, log: null });
    try {
      await until(() => c.state === 'open' && snaps.length === 2, 10_000, 'resubscribed snapshot');
      const gaps = attempts.slice(1).map((t, i) => t - attempts[i]);
      expect(attempts.length).toBeGreaterThanOrEqual(4);
      expect(gaps[2]).toBeGreaterThan(gaps[1] + 150); // growing delays (180 -> 540 ms)
      expect(states).toContain('reconnecting');
      expect(c.stats.reconnects).toBeGreaterThanOrEqual(3);
      const updates: number[] = [];
      c.subscribe(['cl'], { onUpdate: (u) => updates.push(u.seq) });
      await until(() => snaps.length >= 2, 1000, 'snapshot');
      await sleep(100);
      await tick(11);
      await until(() => updates.length >= 1, 5000, 'update after reconnect');
    } finally {
      c.close();
      await server3.close();
    }
  });

  it('detects a seq gap, resyncs, and ends with the server state', async () => {
    let dropNext = false;
    let dropped = 0;
    const c = await MtmClient.connect({
      url: h.url,
      webSocket: recordingFactory([], (data) => {
        if (!dropNext || typeof data !== 'string' || !data.startsWith('{"type":"update"')) return false;
        dropNext = false;
        dropped++;
        return true;
      }),
    });
    const snaps: { seq: number; resync: boolean }[] = [];
    c.subscribe(['cl'], { onSnapshot: (s, m) => snaps.push({ seq: s.seq, resync: m.resync }) });
    await until(() => snaps.length === 1, 5000, 'snapshot');
    dropNext = true;
    await tick(12); // lost
    await tick(13); // reveals the gap
    await until(() => snaps.length === 2, 5000, 'resync snapshot');
    expect(dropped).toBe(1);
    expect(snaps[1].resync).toBe(true);
    expect(c.stats.gaps).toBeGreaterThanOrEqual(1);
    await tick(14);
    const server = (await http(h.url, 'GET', '/api/v1/portfolios/cl')).body;
    await until(() => c.portfolio('cl')?.seq === server.seq, 5000, 'view catching up');
    expect(c.portfolio('cl')!.positions.map((p) => [p.symbol, p.quantity, p.last_price])).toEqual(server.positions.map((p: any) => [p.symbol, p.quantity, p.last_price]));
    c.close();
  });

  it('sends the key as a sub-protocol when it cannot set headers (browsers)', async () => {
    const keyed = await startServer(h.engine, { port: 0, log: null, keys: [{ key: 'browser-key-0123456789', name: 'b', scopes: ['read:*'] }] });
    try {
      const c = await MtmClient.connect({ url: keyed.url, key: 'browser-key-0123456789', webSocket: recordingFactory([]), reconnect: false });
      const snaps: PortfolioSnapshot[] = [];
      c.subscribe(['cl'], { onSnapshot: (s) => snaps.push(s) });
      await until(() => snaps.length === 1, 5000, 'snapshot over protocol auth');
      c.close();
      await expect(MtmClient.connect({ url: keyed.url, key: 'wrong-key-0123456789', webSocket: recordingFactory([]), reconnect: false })).rejects.toMatchObject({
        code: 'connect_failed',
      });
    } finally {
      await keyed.close();
    }
  });

  it('bounds pending requests, times them out, and rejects them on disconnect', async () => {
    // A socket that opens and never answers.
    let sock: (WebSocketLike & { fireClose(): void }) | null = null;
    const silent: WebSocketFactory = () => {
      const s = {
        readyState: 1,
        binaryType: 'arraybuffer',
        send: () => {},
        close: () => s.onclose?.({ code: 1000, reason: '' }),
        onopen: null as ((ev: unknown) => void) | null,
        onclose: null as ((ev: { code: number; reason: string }) => void) | null,
        onerror: null,
        onmessage: null,
        fireClose: () => s.onclose?.({ code: 1006, reason: '' }),
      };
      sock = s;
      setTimeout(() => s.onopen?.({}), 0);
      return s;
    };
    const c = await MtmClient.connect({ url: 'ws://unused', webSocket: silent, requestTimeoutMs: 100, pendingRequestsMax: 2, reconnect: false });
    const t = { trade_id: 'x', symbol: 'CL', side: 'buy' as const, quantity: 1, price: 1 };
    const a = c.trade('cl', t);
    const b = c.ping();
    await expect(c.trade('cl', t)).rejects.toMatchObject({ code: 'too_many_pending' });
    await expect(a).rejects.toMatchObject({ code: 'timeout' });
    await expect(b).rejects.toMatchObject({ code: 'timeout' });
    expect(c.pendingRequests).toBe(0);
    const d = c.trade('cl', t);
    sock!.fireClose();
    await expect(d).rejects.toMatchObject({ code: 'disconnected' });
    expect(c.state).toBe('closed');
  });
});
