// Subscriber process: holds connections [from, to) of the layout, each subscribing to perConnection
// portfolios over /ws (encoding json or binary, no throttle), and measures every update's
// tick-to-client latency: arrival - tick_ts, into 100 ms windows of HDR histograms pushed to the
// orchestrator as they complete, with this process's own CPU (process.cpuUsage) so that the
// orchestrator can tell when the load generator, not the server, is the bottleneck.
//
// Built not to be the bottleneck (issue 14): raw TCP sockets with the WebSocket frame loop by hand
// (rawWs.ts: one read buffer for every connection, one clock read per socket read), and updates read
// in place (updateFields.ts: binary fields at fixed offsets, JSON fields by key search). Snapshots and
// control messages are rare and parsed normally.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { portfolioId } from '../workload.js';
import { childConfig, cpuSeconds, exitWithParent, fatal, newHistogram, nowMs, portfolioIndexesOfConnection, recordMs, send, sleep, Windows, type WindowEntry } from './common.js';
import type { ClientsConfig, ClientsIn, ClientsTotals } from './messages.js';
import { Opcode, RawWs, type RawWsHandler } from './rawWs.js';
import { forEachJsonUpdate, forEachRecord, isJsonSnapshot, isJsonUpdate, isJsonUpdates, isUpdatesFrame, newUpdateFields, readBinaryUpdate, readJsonUpdate, type UpdateFields } from './updateFields.js';

const cfg = childConfig<ClientsConfig>();
const loopDelayResolutionMs = 5;
const windows = new Windows(cfg.t0, cfg.windowMs);
const totals: ClientsTotals = { updates: 0, frames: 0, merged: 0, gaps: 0, resyncs: 0, bytes: 0, errors: 0, closed: 0, firstError: '' };
const S = cfg.perConnection;
const connections = cfg.to - cfg.from;
/** Per subscription (local connection index x S + j): the portfolio index it watches and its last seq (NaN before its snapshot). */
const watched = new Int32Array(connections * S);
const lastSeq = new Float64Array(connections * S).fill(NaN);
const sockets: RawWs[] = [];
let subscribed = 0;
let snapshots = 0;
let ready = false;
let finishing = false;
let lastPush = 0;
/** The window of the last read's time: one Map lookup per read, not per message. */
let curT = -1;
let cur: WindowEntry = windows.at(nowMs());
const fields: UpdateFields = newUpdateFields();
/**
 * This process's own event-loop stalls (timer lateness, 5 ms resolution), reported with each push: an
 * update that arrives while the loop is blocked is read late, and its latency includes the stall.
 */
const loopDelay = monitorEventLoopDelay({ resolution: loopDelayResolutionMs });

for (let c = 0; c < connections; c++) {
  const ps = portfolioIndexesOfConnection(cfg.from + c, S, cfg.portfolios);
  for (let j = 0; j < S; j++) watched[c * S + j] = ps[j];
}

/**
 * Pushes the completed windows. Called from the timer and, because a backlogged process can spend
 * seconds in socket reads before a timer runs, also from the message path once flushMs has passed.
 */
function push(t: number): void {
  if (!ready || finishing) return;
  lastPush = t;
  const encoded = windows.take(t);
  send({ type: 'windows', windows: encoded, cpuSeconds: cpuSeconds(), updates: totals.updates, loopDelayMaxMs: loopDelayMaxMs() });
  curT = -1;
}

/**
 * The longest event-loop stall since the previous call (ms), then starts over. The histogram records
 * the whole interval between two timer turns (an idle loop records ~resolution): the stall is the excess.
 */
function loopDelayMaxMs(): number {
  const ms = loopDelay.count > 0 ? Math.max(0, loopDelay.max / 1e6 - loopDelayResolutionMs) : 0;
  loopDelay.reset();
  return ms;
}

function onError(text: string): void {
  totals.errors++;
  if (totals.firstError === '') totals.firstError = text.slice(0, 300);
}

/** The subscription of local connection c watching portfolio p; -1 when c does not watch it. */
function slotOf(c: number, p: number): number {
  const base = c * S;
  for (let j = 0; j < S; j++) if (watched[base + j] === p) return base + j;
  return -1;
}

/** One update read into `fields`: latency, counts, and the seq rule (docs/PROTOCOL.md). */
function onUpdate(c: number, t: number, bytes: number): void {
  const counts = cur.counts;
  counts.n++;
  counts.bytes += bytes;
  totals.updates++;
  totals.bytes += bytes;
  const tickTs = fields.tickTs;
  if (tickTs > 0) {
    cur.hist ??= newHistogram();
    recordMs(cur.hist, t - tickTs);
    const asOf = fields.asOf;
    if (asOf > 0) {
      cur.histStamp ??= newHistogram();
      recordMs(cur.histStamp, asOf - tickTs);
      cur.histSend ??= newHistogram();
      recordMs(cur.histSend, t - asOf);
    }
  }
  const slot = slotOf(c, fields.portfolio);
  if (slot < 0) return onError(`update for portfolio ${fields.portfolio}, not watched by connection ${cfg.from + c}`);
  const seq = fields.seq;
  const first = fields.fromSeq === fields.fromSeq ? fields.fromSeq : seq;
  const last = lastSeq[slot];
  if (last === last && first > last + 1) {
    counts.gaps += first - last - 1;
    totals.gaps += first - last - 1;
  }
  if (first < seq) {
    counts.merged += seq - first;
    totals.merged += seq - first;
  }
  if (!(seq <= last)) lastSeq[slot] = seq;
}

function onSnapshot(c: number, buf: Buffer, start: number, end: number, t: number): void {
  const m = JSON.parse(buf.toString('utf8', start, end)) as { portfolio_id: string; seq: number };
  fields.portfolio = Number(/(\d+)$/.exec(m.portfolio_id)?.[1] ?? -1);
  const slot = slotOf(c, fields.portfolio);
  if (slot < 0) return onError(`snapshot of ${m.portfolio_id}, not watched by connection ${cfg.from + c}`);
  if (lastSeq[slot] === lastSeq[slot]) {
    windows.at(t).counts.resyncs++;
    totals.resyncs++;
  } else snapshots++;
  lastSeq[slot] = m.seq;
}

// Per-connection frames (frames: 'connection'): one frame, many updates. The callbacks are made once;
// the frame being read is in these variables.
let frameBuf: Buffer = Buffer.alloc(0);
let frameConn = 0;
let frameT = 0;
const onRecord = (s: number, e: number): void => {
  if (readBinaryUpdate(frameBuf, s, e, fields)) onUpdate(frameConn, frameT, e - s);
  else onError(`record that is not an update in an updates frame (kind ${frameBuf[s]}, version ${frameBuf[s + 1]})`);
};
const onJsonElement = (s: number, e: number): void => {
  if (readJsonUpdate(frameBuf, s, e, fields)) onUpdate(frameConn, frameT, e - s);
  else onError(`unreadable update in an updates frame: ${frameBuf.toString('utf8', s, Math.min(e, s + 200))}`);
};

const handler: RawWsHandler = {
  message(ws, opcode, buf, start, end, t) {
    if (t !== curT) {
      curT = t;
      if (t - lastPush >= cfg.flushMs) push(t);
      cur = windows.at(t);
      curT = t;
    }
    const c = ws.tag;
    if (opcode === Opcode.binary) {
      if (readBinaryUpdate(buf, start, end, fields)) onUpdate(c, t, end - start);
      else if (isUpdatesFrame(buf, start, end)) {
        frameBuf = buf;
        frameConn = c;
        frameT = t;
        totals.frames++;
        if (forEachRecord(buf, start, end, onRecord) < 0) onError('updates frame with a record past its end');
      } else onError(`binary frame that is not an update (kind ${buf[start]}, version ${buf[start + 1]})`);
      return;
    }
    if (isJsonUpdate(buf, start, end)) {
      if (readJsonUpdate(buf, start, end, fields)) onUpdate(c, t, end - start);
      else onError(`unreadable update: ${buf.toString('utf8', start, Math.min(end, start + 200))}`);
      return;
    }
    if (isJsonUpdates(buf, start, end)) {
      frameBuf = buf;
      frameConn = c;
      frameT = t;
      totals.frames++;
      forEachJsonUpdate(buf, start, end, onJsonElement);
      return;
    }
    if (isJsonSnapshot(buf, start, end)) return onSnapshot(c, buf, start, end, t);
    const m = JSON.parse(buf.toString('utf8', start, end)) as { type: string; portfolios?: string[] };
    if (m.type === 'subscribed') subscribed += m.portfolios?.length ?? 0;
    else if (m.type === 'error') onError(buf.toString('utf8', start, end));
  },
  closed(_ws, why) {
    if (!finishing && why !== '') {
      totals.closed++;
      onError(why);
    }
  },
};

async function open(c: number): Promise<void> {
  const ws = new RawWs(cfg.url.replace(/^http/, 'ws') + '/ws', handler, c);
  sockets.push(ws);
  try {
    await ws.opened;
  } catch (e) {
    throw new Error(`connection ${cfg.from + c}: ${(e as Error).message}`);
  }
  const portfolios: string[] = [];
  for (let j = 0; j < S; j++) portfolios.push(portfolioId(watched[c * S + j]));
  ws.sendText(
    JSON.stringify({
      op: 'subscribe',
      id: cfg.from + c,
      portfolios,
      ...(cfg.encoding === 'binary' ? { encoding: 'binary' } : {}),
      ...(cfg.frames === 'connection' ? { frames: 'connection' } : {}),
    }),
  );
}

async function connectAll(): Promise<void> {
  let next = 0;
  const worker = async () => {
    // Bounded by the connection range.
    while (next < connections) await open(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, cfg.connectConcurrency) }, worker));
  const want = connections * S;
  const deadline = Date.now() + cfg.readyTimeoutMs;
  while ((subscribed < want || snapshots < want) && Date.now() < deadline) {
    if (totals.errors > 0) throw new Error(`subscribing failed: ${totals.firstError}`);
    await sleep(20);
  }
  if (subscribed < want || snapshots < want) {
    throw new Error(`after ${cfg.readyTimeoutMs} ms: ${subscribed}/${want} subscriptions, ${snapshots}/${want} snapshots (${totals.errors} errors: ${totals.firstError})`);
  }
}

async function main(): Promise<void> {
  exitWithParent(() => sockets.forEach((s) => s.terminate()));
  process.on('message', (m: ClientsIn) => {
    if (m.type === 'stop') process.exit(0);
    if (m.type !== 'finish') return;
    finishing = true;
    send({ type: 'final', totals, windows: windows.take(Infinity), cpuSeconds: cpuSeconds(), loopDelayMaxMs: loopDelayMaxMs() });
    for (const s of sockets) s.terminate();
  });
  await connectAll();
  ready = true;
  loopDelay.enable();
  setInterval(() => {
    const t = nowMs();
    if (t - lastPush >= cfg.flushMs) push(t);
  }, cfg.flushMs).unref();
  send({ type: 'ready', connections, subscriptions: subscribed, snapshots });
}

main().catch(fatal);
