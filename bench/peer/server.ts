// The peer: the same job done the straightforward way, as a baseline for mtm in the same run.
//   - transport: the `ws` package on node:http, JSON text frames;
//   - /ws: the protocol subset the load generator uses: subscribe (a snapshot per portfolio, then an
//     update per change), trade (journal, then ack), ping;
//   - /ws/feed: the binary register and ticks frames of src/client/binary.ts (same codec as mtm);
//   - valuation: each tick, on the main thread, every portfolio holding the symbol is revalued from
//     scratch (all of its positions) and an update with the tick's ts as tick_ts is sent to each of its
//     subscribers at once. No coalescing, no throttling, no backpressure handling (ws buffers).
// Start: node dist/bench/peer/server.js '{"workload":{...}}' (prints a JSON line with its port).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { decodeFeedFrame, readTick, type BinaryTick } from '../../src/protocol/binary.js';
import { holdingsOf, portfolioId, type Workload } from '../workload.js';
import { runBenchServer, serverConfig } from '../scenarios/serverHarness.js';
import { PeerBook, PeerJournal, replay, type PeerPortfolio, type PeerTrade } from './book.js';

interface PeerConfig {
  /** Loaded in memory at start (not journaled: loading is not what is measured). */
  workload: Workload | null;
  /** Journal file: trades are appended to it; with replay, it is read back at start. */
  journal: string | null;
  sync: boolean;
  replay: boolean;
}

const cfg = serverConfig<PeerConfig>({ workload: null, journal: null, sync: false, replay: false });

runBenchServer(async () => {
  const book = new PeerBook();
  const counters = { ticksAccepted: 0, ticksRejected: 0, updatesSent: 0, snapshotsSent: 0, tradesAcked: 0, feedFrames: 0, connections: 0 };
  let recoverMs = 0;
  let loadMs = 0;
  if (cfg.replay && cfg.journal !== null) {
    const t0 = performance.now();
    await replay(book, cfg.journal);
    recoverMs = performance.now() - t0;
  }
  if (cfg.workload !== null) {
    const t0 = performance.now();
    for (let p = 0; p < cfg.workload.portfolios; p++) book.create(portfolioId(p), 1_000_000);
    let n = 0;
    for (const h of holdingsOf(cfg.workload)) {
      const p = book.portfolios.get(h.portfolio) as PeerPortfolio;
      book.trade(p, { trade_id: 'seed-' + n++, symbol: h.symbol, side: 'buy', quantity: h.quantity, price: h.price });
    }
    loadMs = performance.now() - t0;
  }
  const journal = cfg.journal === null ? null : new PeerJournal(cfg.journal, cfg.sync);
  const subscribers = new Map<string, Set<WebSocket>>();
  const mainSockets = new Set<WebSocket>();

  const snapshotOf = (p: PeerPortfolio): string => {
    const totals = book.value(p);
    const positions = p.positions.map((pos) => book.view(pos, totals.gross_exposure));
    return JSON.stringify({ type: 'snapshot', resync: false, portfolio_id: p.id, seq: p.seq, as_of: Date.now(), state: 'active', ...totals, positions });
  };

  /** Revalues p from scratch and sends one update, carrying the changed position, to its subscribers. */
  const publish = (p: PeerPortfolio, symbol: string, tickTs: number): void => {
    p.seq++;
    const subs = subscribers.get(p.id);
    const totals = book.value(p);
    if (subs === undefined || subs.size === 0) return;
    const pos = p.positions.find((x) => x.symbol === symbol);
    const positions = pos === undefined ? [] : [book.view(pos, totals.gross_exposure)];
    const text = JSON.stringify({ type: 'update', portfolio_id: p.id, seq: p.seq, as_of: Date.now(), state: 'active', tick_ts: tickTs, ...totals, positions });
    for (const ws of subs) {
      ws.send(text);
      counters.updatesSent++;
    }
  };

  const onMain = (ws: WebSocket, data: RawData): void => {
    let m: { op?: unknown; id?: unknown; portfolios?: unknown; portfolio?: unknown; trade?: unknown };
    try {
      m = JSON.parse(data.toString()) as typeof m;
    } catch {
      ws.send(JSON.stringify({ type: 'error', code: 'invalid_json', message: 'frame is not valid JSON' }));
      return;
    }
    const id = m.id;
    if (m.op === 'subscribe' && Array.isArray(m.portfolios)) {
      const accepted: PeerPortfolio[] = [];
      for (const pid of m.portfolios) {
        const p = typeof pid === 'string' ? book.portfolios.get(pid) : undefined;
        if (p === undefined) {
          ws.send(JSON.stringify({ type: 'error', id, code: 'portfolio_not_found', message: `portfolio '${String(pid)}' not found` }));
          continue;
        }
        accepted.push(p);
        let set = subscribers.get(p.id);
        if (set === undefined) {
          set = new Set();
          subscribers.set(p.id, set);
        }
        set.add(ws);
      }
      ws.send(JSON.stringify({ type: 'subscribed', id, portfolios: accepted.map((p) => p.id) }));
      for (const p of accepted) {
        ws.send(snapshotOf(p));
        counters.snapshotsSent++;
      }
    } else if (m.op === 'trade') {
      const p = typeof m.portfolio === 'string' ? book.portfolios.get(m.portfolio) : undefined;
      const t = m.trade as { trade_id?: unknown; symbol?: unknown; side?: unknown; quantity?: unknown; price?: unknown } | undefined;
      if (p === undefined) {
        ws.send(JSON.stringify({ type: 'error', id, code: 'portfolio_not_found', message: 'portfolio not found' }));
        return;
      }
      if (
        t === undefined ||
        typeof t.trade_id !== 'string' ||
        typeof t.symbol !== 'string' ||
        (t.side !== 'buy' && t.side !== 'sell') ||
        typeof t.quantity !== 'number' ||
        !(t.quantity > 0) ||
        typeof t.price !== 'number' ||
        !(t.price > 0)
      ) {
        ws.send(JSON.stringify({ type: 'error', id, code: 'invalid_field', message: 'trade needs trade_id, symbol, side, quantity > 0, price > 0' }));
        return;
      }
      const trade: PeerTrade = { trade_id: t.trade_id, symbol: t.symbol, side: t.side, quantity: t.quantity, price: t.price };
      const applied = book.trade(p, trade);
      // Durable before the ack: written to the journal (and flushed to disk in sync mode).
      if (applied) journal?.append({ t: 'x', p: p.id, id: trade.trade_id, s: trade.symbol, side: trade.side, q: trade.quantity, px: trade.price });
      const totals = book.value(p);
      const pos = p.positions.find((x) => x.symbol === trade.symbol);
      ws.send(
        JSON.stringify({
          type: 'ack',
          id,
          trade_id: trade.trade_id,
          portfolio_id: p.id,
          applied,
          realized_pnl: pos?.realized ?? 0,
          position: pos === undefined ? null : book.view(pos, totals.gross_exposure),
          totals,
          state: 'active',
        }),
      );
      counters.tradesAcked++;
      if (applied) publish(p, trade.symbol, 0);
    } else if (m.op === 'ping') {
      ws.send(JSON.stringify({ type: 'pong', id, ts: Date.now() }));
    } else {
      ws.send(JSON.stringify({ type: 'error', id, code: 'unknown_op', message: 'expected subscribe, trade or ping' }));
    }
  };

  const tick: BinaryTick = { symbolId: 0, price: 0, ts: 0, size: 0 };
  const onFeed = (ws: WebSocket, symbols: string[], symbolIds: Map<string, number>, data: RawData, isBinary: boolean): void => {
    if (!isBinary) {
      ws.send(JSON.stringify({ type: 'error', code: 'invalid_field', message: 'the peer accepts binary feed frames only' }));
      return;
    }
    const f = decodeFeedFrame(data as Buffer);
    if (!f.ok) {
      ws.send(JSON.stringify({ type: 'error', code: 'invalid_field', message: f.reason }));
      return;
    }
    if (f.value.kind === 'register') {
      const out: { symbol: string; id: number }[] = [];
      for (const s of f.value.symbols) {
        let sid = symbolIds.get(s);
        if (sid === undefined) {
          sid = symbols.push(s) - 1;
          symbolIds.set(s, sid);
        }
        out.push({ symbol: s, id: sid });
      }
      ws.send(JSON.stringify({ type: 'registered', symbols: out, rejected: [] }));
      return;
    }
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < f.value.count; i++) {
      readTick(f.value.view, i, tick);
      const symbol = symbols[tick.symbolId];
      if (symbol === undefined || !(tick.price > 0)) {
        rejected++;
        continue;
      }
      accepted++;
      book.prices.set(symbol, tick.price);
      const holders = book.holders.get(symbol);
      if (holders !== undefined) for (const p of holders) publish(p, symbol, tick.ts);
    }
    counters.ticksAccepted += accepted;
    counters.ticksRejected += rejected;
    counters.feedFrames++;
    ws.send(JSON.stringify({ type: 'feed_ack', batch: counters.feedFrames, accepted, rejected, errors: [] }));
  };

  const http = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1 << 20 });
  http.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/ws' && path !== '/ws/feed') {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      counters.connections++;
      if (path === '/ws/feed') {
        const symbols: string[] = [];
        const symbolIds = new Map<string, number>();
        ws.on('message', (data, isBinary) => onFeed(ws, symbols, symbolIds, data, isBinary));
      } else {
        mainSockets.add(ws);
        ws.on('message', (data) => onMain(ws, data));
        ws.on('close', () => {
          mainSockets.delete(ws);
          for (const set of subscribers.values()) set.delete(ws);
        });
      }
      ws.on('close', () => counters.connections--);
      ws.on('error', () => ws.terminate());
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (http.address() as AddressInfo).port,
    loadMs,
    recoverMs,
    info: { system: 'peer', transport: 'ws', sync: cfg.sync, portfolios: book.portfolios.size },
    counters: () => {
      let buffered = 0;
      for (const ws of mainSockets) buffered += ws.bufferedAmount;
      return { ...counters, sendBufferedBytes: buffered };
    },
    stop: async () => {
      for (const ws of wss.clients) ws.terminate();
      journal?.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
});
