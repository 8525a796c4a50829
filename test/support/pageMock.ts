// A scripted stand-in for the server, for browser tests that need exact control of what the page
// receives (60 updates/s of a 50-position portfolio, 5,000 portfolios): Playwright's page.route
// serves the built page and the REST answers, page.routeWebSocket plays the /ws protocol.

import { readFileSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import type { Page, WebSocketRoute } from 'playwright-core';
import type { PortfolioSnapshot, PositionView } from '../../src/domain/types.js';
import type { UpdateMessage } from '../../src/protocol/messages.js';

export const mockOrigin = 'http://mtm.test';

/** Deterministic PRNG (mulberry32): the same run every time. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

/** A portfolio of `n` long positions whose prices random-walk; it produces snapshots and deltas like the engine. */
export class MockBook {
  readonly symbols: string[];
  private readonly qty: number[];
  private readonly cost: number[];
  private readonly price: number[];
  private readonly random = prng(7);
  seq = 1;
  readonly cash = 250_000;

  constructor(
    readonly id: string,
    n = 50,
  ) {
    this.symbols = Array.from({ length: n }, (_, i) => `S${String(i).padStart(2, '0')}`);
    this.qty = this.symbols.map((_, i) => 10 + ((i * 37) % 490));
    this.cost = this.symbols.map((_, i) => round(20 + ((i * 53) % 400), 2));
    this.price = this.cost.slice();
  }

  private position(i: number, gross: number): PositionView {
    const mv = this.qty[i] * this.price[i];
    const upnl = (this.price[i] - this.cost[i]) * this.qty[i];
    return {
      symbol: this.symbols[i],
      quantity: this.qty[i],
      avg_cost: this.cost[i],
      last_price: this.price[i],
      market_value: mv,
      unrealized_pnl: upnl,
      realized_pnl: 0,
      return_rate: (upnl / (this.qty[i] * this.cost[i])) * 100,
      weight: gross > 0 ? (Math.abs(mv) / gross) * 100 : 0,
    };
  }

  private totals() {
    let holdings = 0;
    let cost = 0;
    let gross = 0;
    for (let i = 0; i < this.symbols.length; i++) {
      holdings += this.qty[i] * this.price[i];
      cost += this.qty[i] * this.cost[i];
      gross += Math.abs(this.qty[i] * this.price[i]);
    }
    const capital = this.cash + cost;
    const unrealized = holdings - cost;
    return {
      cash: this.cash,
      capital,
      holdings_value: holdings,
      cost_basis: cost,
      unrealized_pnl: unrealized,
      realized_pnl: 0,
      total_return: unrealized,
      return_rate: (unrealized / capital) * 100,
      equity: this.cash + holdings,
      gross_exposure: gross,
    };
  }

  snapshot(): PortfolioSnapshot {
    const t = this.totals();
    return {
      portfolio_id: this.id,
      name: `Mock ${this.id}`,
      seq: this.seq,
      as_of: Date.now(),
      state: 'active',
      limits: {},
      equity_hwm: t.equity,
      ...t,
      positions: this.symbols.map((_, i) => this.position(i, t.gross_exposure)),
    };
  }

  /** Moves `changes` prices (never the symbols in `frozen`) and returns the delta the engine would send. */
  update(changes: number, frozen: ReadonlySet<string>): UpdateMessage {
    const touched = new Set<number>();
    while (touched.size < changes) {
      const i = Math.floor(this.random() * this.symbols.length);
      if (frozen.has(this.symbols[i])) continue;
      touched.add(i);
      this.price[i] = Math.max(0.01, round(this.price[i] * (1 + (this.random() - 0.5) * 0.01), 4));
    }
    this.seq++;
    const t = this.totals();
    return {
      type: 'update',
      portfolio_id: this.id,
      seq: this.seq,
      as_of: Date.now(),
      state: 'active',
      tick_ts: Date.now(),
      ...t,
      positions: [...touched].map((i) => this.position(i, t.gross_exposure)),
    };
  }
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};

export interface MockServer {
  /** Every REST path+query the page asked for, in order. */
  readonly requests: string[];
  /** Every op the page sent on /ws. */
  readonly ops: { op: string; portfolios?: string[]; throttle_ms?: number }[];
  /** The current /ws connection (set once the page connected). */
  socket(): WebSocketRoute | null;
}

/** Routes the page's origin to the built files in `webDir`, a list of `count` portfolios (paged like the server) and a scripted /ws. */
export async function installMock(page: Page, webDir: string, count: number, onSubscribe: (ws: WebSocketRoute, id: string) => void): Promise<MockServer> {
  const ids = Array.from({ length: count }, (_, i) => `pf-${String(i).padStart(5, '0')}`);
  const requests: string[] = [];
  const ops: MockServer['ops'] = [];
  let current: WebSocketRoute | null = null;
  await page.route(`${mockOrigin}/**`, async (route) => {
    const url = new URL(route.request().url());
    if (url.pathname.startsWith('/api/')) {
      requests.push(url.pathname + url.search);
      if (url.pathname === '/api/v1/portfolios') {
        const limit = Number(url.searchParams.get('limit') ?? 100);
        const after = url.searchParams.get('after');
        const rest = after === null ? ids : ids.filter((id) => id > after);
        const pageIds = rest.slice(0, limit);
        const body = { portfolios: pageIds.map((id) => ({ id, name: `Book ${id.slice(3)}`, state: 'active' })), next: rest.length > limit ? pageIds[pageIds.length - 1] : null };
        return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
      }
      if (/^\/api\/v1\/portfolios\/[^/]+\/events$/.test(url.pathname)) {
        return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ events: [], next_after_seq: null }) });
      }
      return route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":{"code":"not_found","message":"mock"}}' });
    }
    const rel = url.pathname === '/' ? '/index.html' : url.pathname;
    const file = join(webDir, normalize(rel));
    try {
      return route.fulfill({ status: 200, contentType: contentTypes[extname(file)] ?? 'application/octet-stream', body: readFileSync(file) });
    } catch {
      return route.fulfill({ status: 404, body: 'not found' });
    }
  });
  await page.routeWebSocket(`${mockOrigin.replace('http', 'ws')}/ws`, (ws) => {
    current = ws;
    ws.onMessage((message) => {
      const op = JSON.parse(String(message)) as { op: string; id?: string | number; portfolios?: string[]; throttle_ms?: number };
      ops.push(op);
      const idx = op.id === undefined ? {} : { id: op.id };
      if (op.op === 'subscribe') {
        ws.send(JSON.stringify({ type: 'subscribed', ...idx, portfolios: op.portfolios }));
        for (const id of op.portfolios ?? []) onSubscribe(ws, id);
      } else if (op.op === 'unsubscribe') ws.send(JSON.stringify({ type: 'unsubscribed', ...idx, portfolios: op.portfolios }));
      else if (op.op === 'subscribe_events') ws.send(JSON.stringify({ type: 'events_subscribed', ...idx, portfolios: op.portfolios ?? null, types: null }));
      else if (op.op === 'ping') ws.send(JSON.stringify({ type: 'pong', ...idx, ts: Date.now() }));
    });
  });
  return { requests, ops, socket: () => current };
}
