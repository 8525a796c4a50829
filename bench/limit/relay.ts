// The transport limit: the same feed delivered to the same subscribers through uWebSockets.js with no
// valuation at all, to measure what the transport alone can deliver on this machine, moving the same
// bytes per update as mtm. Exactly:
//   - /ws/feed: binary register and ticks frames (src/client/binary.ts). Each accepted tick only marks
//     its symbol dirty and keeps the newest ts per symbol (typed arrays, no allocation).
//   - once per event-loop turn (setImmediate, as the mtm engine schedules its flush), the dirty symbols
//     are expanded to the portfolios holding them (the workload's holdings, loaded at start as CSR
//     index lists) and each such portfolio gets ONE update carrying one position record per dirty
//     symbol it holds, exactly as mtm's delta does (the positions that changed), published to a topic
//     given as bytes (pre-encoded Buffers, no per-update strings):
//       binary subscribers, topic p/<id>/b: a binary delta in mtm's layout (src/client/delta.ts), same
//         length as mtm's for the same dirty positions: the header written in place into one reused
//         buffer and each position copied from a per-symbol record encoded at start (figures zero);
//       JSON subscribers, topic p/<id>/j: {"type":"update","portfolio_id":...,"seq":...,"tick_ts":...,
//         totals, "positions":[...]} from per-symbol templates encoded at start (about mtm's size).
//     seq counts per portfolio; tick_ts is the newest tick ts among that portfolio's dirty symbols.
//     This is mtm's delivery pattern (one update per portfolio per batch, same uWS settings) minus the
//     work: no valuation, no figures computed, nothing serialized per update beyond a header.
//   - /ws: subscribe (encoding json|binary; subscribes the socket to the topics, answers subscribed
//     and a tiny snapshot per portfolio), trade (acknowledged at once: no book, no journal), ping.
// Start: node dist/bench/limit/relay.js '{"workload":{...}}' (prints a JSON line with its port).
import type { WebSocket } from 'uWebSockets.js';
import { decodeFeedFrame, readTick, totalsFields, type BinaryTick } from '../../src/protocol/binary.js';
import { DELTA_TICK_BYTES, DELTA_VERSION, DeltaHead, DeltaKind, DeltaTick, UPDATES_HEADER_BYTES, UPDATES_RECORD_PREFIX_BYTES, encodeDelta } from '../../src/protocol/delta.js';
import { loadUws } from '../../src/server/uws.js';
import { symbolName } from '../../src/sim/random.js';
import { W1, holdingsOf, portfolioId, type Workload } from '../workload.js';
import { runBenchServer, serverConfig } from '../scenarios/serverHarness.js';

interface RelayConfig {
  workload: Workload;
}

interface UserData {
  kind: 'main' | 'feed';
  /** Feed: this connection's symbol id -> symbol index (-1: unknown symbol). */
  symbols: number[];
  /** frames: 'connection' subscriptions of this socket: portfolio indexes, and whether each is binary. */
  framed: number[];
  framedBinary: boolean[];
}

const cfg = serverConfig<RelayConfig>({ workload: W1 });
/** Same bounds as the mtm server's defaults (src/server/options.ts), so both transports are configured alike. */
const maxPayloadBytes = 64 * 1024;
const backpressureBytesMax = 4 * 1024 * 1024 + 256 * 1024;
// The per-connection updates frame (src/client/delta.ts): u8 kind 0x02 | u8 version | u16 0 | u32 count,
// then per record u32 length + the record.
const updatesKind = DeltaKind.updates;
const updatesHeaderBytes = UPDATES_HEADER_BYTES;
const recordPrefixBytes = UPDATES_RECORD_PREFIX_BYTES;

runBenchServer(async () => {
  const { uws, binary } = loadUws();
  if (binary !== 'native') throw new Error('uWebSockets.js native binary not loaded: the relay needs pub/sub');
  const w = cfg.workload;
  const P = w.portfolios;
  const S = w.symbols;
  const symbolIndex = new Map<string, number>();
  for (let s = 0; s < S; s++) symbolIndex.set(symbolName(s), s);
  const ids: string[] = Array.from({ length: P }, (_, i) => portfolioId(i));
  const indexOfId = new Map<string, number>(ids.map((id, i) => [id, i]));
  const binaryTopics = ids.map((id) => Buffer.from(`p/${id}/b`));
  const jsonTopics = ids.map((id) => Buffer.from(`p/${id}/j`));
  // Holders per symbol and holdings per portfolio, as CSR indexes (offsets + indexes).
  const lists: number[][] = Array.from({ length: S }, () => []);
  const held: number[][] = Array.from({ length: P }, () => []);
  for (const h of holdingsOf(w)) {
    const s = symbolIndex.get(h.symbol) as number;
    const p = indexOfId.get(h.portfolio) as number;
    lists[s].push(p);
    held[p].push(s);
  }
  const offsets = new Int32Array(S + 1);
  for (let s = 0; s < S; s++) offsets[s + 1] = offsets[s] + lists[s].length;
  const holders = new Int32Array(offsets[S]);
  for (let s = 0; s < S; s++) holders.set(lists[s], offsets[s]);
  const heldAt = new Int32Array(P + 1);
  for (let p = 0; p < P; p++) heldAt[p + 1] = heldAt[p] + held[p].length;
  const heldSymbols = new Int32Array(heldAt[P]);
  for (let p = 0; p < P; p++) heldSymbols.set(held[p], heldAt[p]);
  const encoding = updateEncoding(P, S, ids, heldAt);
  /** Sockets with frames: 'connection' subscriptions (one frame per socket per flush). */
  const framedSockets = new Set<WebSocket<UserData>>();
  // Each dirty portfolio's record is encoded once per flush (arena) for every socket that watches it.
  const arena = Buffer.alloc(P * encoding.recordBytesMax);
  const recAt = new Int32Array(P);
  const recLen = new Int32Array(P);
  const recStamp = new Uint32Array(P);
  const jsonOf: string[] = new Array<string>(P).fill('');
  const jsonStamp = new Uint32Array(P);
  let frameScratch = Buffer.alloc(1 << 20);

  const symTs = new Float64Array(S);
  const symStamp = new Uint32Array(S);
  const symList = new Int32Array(S);
  let symCount = 0;
  let symEpoch = 1;
  const pfTs = new Float64Array(P);
  const pfStamp = new Uint32Array(P);
  const pfList = new Int32Array(P);
  let pfEpoch = 1;
  const seq = new Float64Array(P);
  /** 1 once a socket subscribed to the portfolio: the flush asks uWS for its subscribers only then. */
  const watchedEver = new Uint8Array(P);
  let flushScheduled = false;
  const counters = { ticksAccepted: 0, ticksRejected: 0, portfoliosDirty: 0, updatesPublished: 0, framesSent: 0, bytesPublished: 0, flushes: 0, snapshotsSent: 0, tradesAcked: 0, connections: 0 };

  const app = uws.App();
  const flush = (): void => {
    flushScheduled = false;
    pfEpoch = (pfEpoch + 1) >>> 0 || 1;
    let n = 0;
    for (let k = 0; k < symCount; k++) {
      const s = symList[k];
      const ts = symTs[s];
      for (let j = offsets[s]; j < offsets[s + 1]; j++) {
        const p = holders[j];
        if (pfStamp[p] !== pfEpoch) {
          pfStamp[p] = pfEpoch;
          pfTs[p] = ts;
          pfList[n++] = p;
        } else if (ts > pfTs[p]) pfTs[p] = ts;
      }
    }
    // The load generator's clock (sub-ms, bench/loadgen/common.ts nowMs): as_of splits a latency at this flush.
    const asOf = performance.timeOrigin + performance.now();
    for (let k = 0; k < n; k++) {
      const p = pfList[k];
      seq[p]++;
      // A portfolio no socket ever watched costs nothing more (mtm too writes deltas only for watched books).
      if (watchedEver[p] === 0) continue;
      // Only encodings someone listens to are built (mtm too encodes JSON only for JSON subscribers).
      if (app.numSubscribers(binaryTopics[p]) > 0) {
        const len = encoding.binary(encoding.scratch, 0, p, seq[p], asOf, pfTs[p], heldSymbols, heldAt, symStamp, symEpoch);
        app.publish(binaryTopics[p], encoding.scratch.subarray(0, len), true);
        counters.updatesPublished++;
        counters.bytesPublished += len;
      }
      if (app.numSubscribers(jsonTopics[p]) > 0) {
        const text = encoding.json(p, seq[p], asOf, pfTs[p], heldSymbols, heldAt, symStamp, symEpoch);
        app.publish(jsonTopics[p], text, false);
        counters.updatesPublished++;
        counters.bytesPublished += text.length;
      }
    }
    if (framedSockets.size > 0) sendFrames(asOf);
    symCount = 0;
    symEpoch = (symEpoch + 1) >>> 0 || 1;
    counters.portfoliosDirty += n;
    counters.flushes++;
  };

  /** One frame per socket with frames: 'connection' subscriptions, carrying its dirty portfolios' updates. */
  const sendFrames = (asOf: number): void => {
    let arenaAt = 0;
    for (const ws of framedSockets) {
      const u = ws.getUserData();
      // A socket over the bound is skipped (its next update then shows a seq hole), as publish does.
      if (ws.getBufferedAmount() > backpressureBytesMax) continue;
      let records = 0;
      let o = updatesHeaderBytes;
      let json = '';
      let jsonCount = 0;
      for (let k = 0; k < u.framed.length; k++) {
        const p = u.framed[k];
        if (pfStamp[p] !== pfEpoch) continue;
        if (u.framedBinary[k]) {
          if (recStamp[p] !== pfEpoch) {
            recStamp[p] = pfEpoch;
            recAt[p] = arenaAt;
            recLen[p] = encoding.binary(arena, arenaAt, p, seq[p], asOf, pfTs[p], heldSymbols, heldAt, symStamp, symEpoch);
            arenaAt += recLen[p];
          }
          if (o + recordPrefixBytes + recLen[p] > frameScratch.length) {
            const grown = Buffer.alloc(frameScratch.length * 2 + recLen[p]);
            frameScratch.copy(grown, 0, 0, o);
            frameScratch = grown;
          }
          frameScratch.writeUInt32LE(recLen[p], o);
          arena.copy(frameScratch, o + recordPrefixBytes, recAt[p], recAt[p] + recLen[p]);
          o += recordPrefixBytes + recLen[p];
          records++;
        } else {
          if (jsonStamp[p] !== pfEpoch) {
            jsonStamp[p] = pfEpoch;
            jsonOf[p] = encoding.json(p, seq[p], asOf, pfTs[p], heldSymbols, heldAt, symStamp, symEpoch);
          }
          json += (jsonCount === 0 ? '' : ',') + jsonOf[p];
          jsonCount++;
        }
      }
      if (records > 0) {
        frameScratch[0] = updatesKind;
        frameScratch[1] = encoding.version;
        frameScratch.writeUInt16LE(0, 2);
        frameScratch.writeUInt32LE(records, 4);
        ws.send(frameScratch.subarray(0, o), true);
        counters.framesSent++;
        counters.bytesPublished += o;
      }
      if (jsonCount > 0) {
        const text = `{"type":"updates","updates":[${json}]}`;
        ws.send(text, false);
        counters.framesSent++;
        counters.bytesPublished += text.length;
      }
      counters.updatesPublished += records + jsonCount;
    }
  };

  const tick: BinaryTick = { symbolId: 0, price: 0, ts: 0, size: 0 };
  const onFeed = (ws: WebSocket<UserData>, data: ArrayBuffer): void => {
    const u = ws.getUserData();
    const f = decodeFeedFrame(data);
    if (!f.ok) {
      ws.send(JSON.stringify({ type: 'error', code: 'invalid_field', message: f.reason }));
      return;
    }
    if (f.value.kind === 'register') {
      const out: { symbol: string; id: number }[] = [];
      const rejected: { index: number; code: string }[] = [];
      f.value.symbols.forEach((name, i) => {
        const s = symbolIndex.get(name);
        if (s === undefined) rejected.push({ index: i, code: 'invalid_symbol' });
        else out.push({ symbol: name, id: u.symbols.push(s) - 1 });
      });
      ws.send(JSON.stringify({ type: 'registered', symbols: out, rejected }));
      return;
    }
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < f.value.count; i++) {
      readTick(f.value.view, i, tick);
      const s = u.symbols[tick.symbolId];
      if (s === undefined) {
        rejected++;
        continue;
      }
      accepted++;
      if (tick.ts > symTs[s]) symTs[s] = tick.ts;
      if (symStamp[s] !== symEpoch) {
        symStamp[s] = symEpoch;
        symList[symCount++] = s;
      }
    }
    counters.ticksAccepted += accepted;
    counters.ticksRejected += rejected;
    if (symCount > 0 && !flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
    ws.send(JSON.stringify({ type: 'feed_ack', accepted, rejected, errors: [] }));
  };

  const onMain = (ws: WebSocket<UserData>, data: ArrayBuffer): void => {
    let m: { op?: unknown; id?: unknown; portfolios?: unknown; portfolio?: unknown; encoding?: unknown; frames?: unknown; trade?: { trade_id?: unknown } };
    try {
      m = JSON.parse(Buffer.from(data).toString('utf8')) as typeof m;
    } catch {
      ws.send(JSON.stringify({ type: 'error', code: 'invalid_json', message: 'frame is not valid JSON' }));
      return;
    }
    if (m.op === 'subscribe' && Array.isArray(m.portfolios)) {
      const accepted: number[] = [];
      for (const pid of m.portfolios) {
        const p = typeof pid === 'string' ? indexOfId.get(pid) : undefined;
        if (p === undefined) ws.send(JSON.stringify({ type: 'error', id: m.id, code: 'portfolio_not_found', message: `portfolio '${String(pid)}' not found` }));
        else accepted.push(p);
      }
      const binary = m.encoding === 'binary';
      const framed = m.frames === 'connection';
      const u = ws.getUserData();
      ws.cork(() => {
        ws.send(JSON.stringify({ type: 'subscribed', id: m.id, portfolios: accepted.map((p) => ids[p]) }));
        for (const p of accepted) {
          watchedEver[p] = 1;
          // Subscribing again replaces the subscription (its encoding and framing), as in mtm.
          ws.unsubscribe(binaryTopics[p]);
          ws.unsubscribe(jsonTopics[p]);
          const k = u.framed.indexOf(p);
          if (k >= 0) {
            u.framed.splice(k, 1);
            u.framedBinary.splice(k, 1);
          }
          if (framed) {
            u.framed.push(p);
            u.framedBinary.push(binary);
          } else ws.subscribe(binary ? binaryTopics[p] : jsonTopics[p]);
          ws.send(`{"type":"snapshot","resync":false,"portfolio_id":"${ids[p]}","seq":${seq[p]}}`);
          counters.snapshotsSent++;
        }
      });
      if (u.framed.length > 0) framedSockets.add(ws);
      else framedSockets.delete(ws);
    } else if (m.op === 'trade') {
      ws.send(JSON.stringify({ type: 'ack', id: m.id, trade_id: m.trade?.trade_id, portfolio_id: m.portfolio, applied: true }));
      counters.tradesAcked++;
    } else if (m.op === 'ping') {
      ws.send(JSON.stringify({ type: 'pong', id: m.id, ts: Date.now() }));
    } else {
      ws.send(JSON.stringify({ type: 'error', id: m.id, code: 'unknown_op', message: 'expected subscribe, trade or ping' }));
    }
  };

  const behavior = (kind: 'main' | 'feed') => ({
    maxPayloadLength: maxPayloadBytes,
    idleTimeout: 60,
    sendPingsAutomatically: true,
    maxBackpressure: backpressureBytesMax,
    closeOnBackpressureLimit: 0,
    compression: uws.DISABLED,
    upgrade: (res: import('uWebSockets.js').HttpResponse, req: import('uWebSockets.js').HttpRequest, context: import('uWebSockets.js').us_socket_context_t) => {
      res.upgrade<UserData>(
        { kind, symbols: [], framed: [], framedBinary: [] },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: () => {
      counters.connections++;
    },
    message: (ws: WebSocket<UserData>, data: ArrayBuffer, isBinary: boolean) => {
      if (kind === 'feed') {
        if (isBinary) onFeed(ws, data);
        else ws.send(JSON.stringify({ type: 'error', code: 'invalid_field', message: 'the relay accepts binary feed frames only' }));
      } else onMain(ws, data);
    },
    close: (ws: WebSocket<UserData>) => {
      counters.connections--;
      framedSockets.delete(ws);
    },
  });
  app.ws<UserData>('/ws', behavior('main'));
  app.ws<UserData>('/ws/feed', behavior('feed'));
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end();
  });
  const listenSocket = await new Promise<import('uWebSockets.js').us_listen_socket>((resolve, reject) => {
    app.listen('127.0.0.1', 0, (s) => (s === false ? reject(new Error('relay: cannot listen on 127.0.0.1')) : resolve(s)));
  });
  return {
    port: uws.us_socket_local_port(listenSocket),
    loadMs: 0,
    recoverMs: 0,
    info: { system: 'limit', transport: 'uWebSockets.js', portfolios: P, holdings: holders.length },
    counters: () => ({ ...counters }),
    stop: async () => {
      uws.us_listen_socket_close(listenSocket);
      (app as unknown as { close(): void }).close();
    },
  };
});

/** Bytes of the position records and JSON templates: symbols are the workload's (SYM0000..). */
function updateEncoding(P: number, S: number, ids: string[], heldAt: Int32Array) {
  // One position record per symbol, in mtm's binary delta layout (version 4) as a tick writes it: a
  // tick record (u8 symbol length, symbol, u8 flags, f64 price, f64 price_ts), the record mtm's shards
  // write for a position a tick re-marked, so the record length is mtm's by construction.
  const totals = Object.fromEntries(totalsFields.map((f) => [f, 0])) as Record<(typeof totalsFields)[number], number>;
  const bare = (id: string) => encodeDelta({ portfolio_id: id, seq: 0, as_of: 0, state: 'active', tick_ts: 0, positions: [], ...totals });
  const records: Buffer[] = [];
  for (let s = 0; s < S; s++) {
    const symbol = Buffer.from(symbolName(s));
    const r = Buffer.alloc(1 + symbol.length + DELTA_TICK_BYTES);
    r[0] = symbol.length;
    symbol.copy(r, 1);
    r[1 + symbol.length + DeltaTick.flags] = 0;
    records.push(r);
  }
  const heads = ids.map((id) => Buffer.from(bare(id)));
  let most = 0;
  for (let p = 0; p < P; p++) most = Math.max(most, heldAt[p + 1] - heldAt[p]);
  let recordMax = 0;
  for (const r of records) recordMax = Math.max(recordMax, r.length);
  let headMax = 0;
  for (const h of heads) headMax = Math.max(headMax, h.length);
  const scratch = Buffer.alloc(headMax + most * recordMax);
  // JSON: the same fields as mtm's update, figures as long as typical ones.
  const jsonTotals = totalsFields.map((f) => `"${f}":1234567.891234`).join(',');
  const jsonPositions: string[] = [];
  for (let s = 0; s < S; s++) {
    jsonPositions.push(
      `{"symbol":"${symbolName(s)}","currency":"USD","quantity":123,"avg_cost":123.456789,"last_price":123.456789,"market_value":15185.185047,"unrealized_pnl":-12.345678,"realized_pnl":0,"return_rate":-0.000812,"weight":0.041234,"fx_rate":null,"price_ts":1765000000000.123,"price_age_ms":0.123,"stale":false}`,
    );
  }
  return {
    scratch,
    version: DELTA_VERSION,
    recordBytesMax: headMax + most * recordMax,
    /** Writes portfolio p's update into out at `start`; returns its length. Positions: p's symbols stamped `epoch`. */
    binary(out: Buffer, start: number, p: number, seq: number, asOf: number, tickTs: number, heldSymbols: Int32Array, at: Int32Array, stamp: Uint32Array, epoch: number): number {
      const head = heads[p];
      head.copy(out, start);
      out.writeDoubleLE(seq, start + DeltaHead.seq);
      out.writeDoubleLE(seq, start + DeltaHead.fromSeq);
      out.writeDoubleLE(asOf, start + DeltaHead.asOf);
      out.writeDoubleLE(tickTs, start + DeltaHead.tickTs);
      let len = head.length;
      let count = 0;
      for (let j = at[p]; j < at[p + 1]; j++) {
        const s = heldSymbols[j];
        if (stamp[s] !== epoch) continue;
        len += records[s].copy(out, start + len);
        count++;
      }
      out.writeUInt16LE(count, start + DeltaHead.positionCount);
      return len;
    },
    json(p: number, seq: number, asOf: number, tickTs: number, heldSymbols: Int32Array, at: Int32Array, stamp: Uint32Array, epoch: number): string {
      let positions = '';
      for (let j = at[p]; j < at[p + 1]; j++) {
        const s = heldSymbols[j];
        if (stamp[s] !== epoch) continue;
        positions += (positions === '' ? '' : ',') + jsonPositions[s];
      }
      return `{"type":"update","portfolio_id":"${ids[p]}","seq":${seq},"as_of":${asOf},"state":"active","tick_ts":${tickTs},${jsonTotals},"positions":[${positions}]}`;
    },
  };
}
