// Subscriber process: holds connections [from, to) of the layout (ws package), each subscribing to
// perConnection portfolios over /ws with JSON encoding and no throttle, and measures every update's
// tick-to-client latency: arrival (nowMs) - tick_ts, into 100 ms windows of HDR histograms that are
// pushed to the orchestrator as they complete.
//
// Updates are not JSON.parsed: the fields needed (portfolio_id, seq, from_seq, tick_ts) are found by
// byte search. Two client processes must absorb what the server sends on a 2-core machine, and a full
// parse of every update would make the clients, not the server, the bottleneck. Snapshots and control
// messages are rare and parsed normally.
import WebSocket from 'ws';
import { childConfig, cpuSeconds, exitWithParent, fatal, nowMs, portfoliosOfConnection, send, sleep, Windows } from './common.js';
import type { ClientsConfig, ClientsIn, ClientsTotals } from './messages.js';

const cfg = childConfig<ClientsConfig>();
const windows = new Windows(cfg.t0, cfg.windowMs);
const totals: ClientsTotals = { updates: 0, merged: 0, gaps: 0, resyncs: 0, bytes: 0, errors: 0, closed: 0, firstError: '' };
const sockets: WebSocket[] = [];
let subscribed = 0;
let snapshots = 0;
let ready = false;
let finishing = false;
let lastPush = 0;

/**
 * Pushes the completed windows. Called from the timer and, because a backlogged process can spend
 * seconds in socket reads before a timer runs, also from the message path once flushMs has passed.
 */
function push(t: number): void {
  if (!ready || finishing) return;
  lastPush = t;
  send({ type: 'windows', windows: windows.take(t), cpuSeconds: cpuSeconds(), updates: totals.updates });
}

const UPDATE = Buffer.from('{"type":"update"');
const SNAPSHOT = Buffer.from('{"type":"snapshot"');
const K_TICK_TS = '"tick_ts":';
const K_SEQ = '"seq":';
const K_FROM_SEQ = '"from_seq":';
const K_PID = '"portfolio_id":"';

function startsWith(data: Buffer, prefix: Buffer): boolean {
  return data.length >= prefix.length && data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** The JSON number right after `key` (NaN when absent). Numbers end at ',' or '}'. */
function numberAfter(data: Buffer, key: string): number {
  const i = data.indexOf(key);
  if (i < 0) return NaN;
  const start = i + key.length;
  let end = start;
  // Bounded by the buffer; a JSON number is at most a few dozen bytes.
  while (end < data.length && end - start < 40) {
    const c = data[end];
    if (c === 0x2c || c === 0x7d) break;
    end++;
  }
  return Number(data.toString('latin1', start, end));
}

function stringAfter(data: Buffer, key: string): string {
  const i = data.indexOf(key);
  if (i < 0) return '';
  const start = i + key.length;
  const end = data.indexOf(0x22, start);
  return end < 0 ? '' : data.toString('utf8', start, end);
}

function onError(text: string): void {
  totals.errors++;
  if (totals.firstError === '') totals.firstError = text.slice(0, 300);
}

function open(c: number): Promise<void> {
  const portfolios = portfoliosOfConnection(c, cfg.perConnection, cfg.portfolios);
  const lastSeq = new Map<string, number>();
  const ws = new WebSocket(cfg.url.replace(/^http/, 'ws') + '/ws', { perMessageDeflate: false, skipUTF8Validation: true });
  sockets.push(ws);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return onError('unexpected binary frame');
    const t = nowMs();
    if (t - lastPush >= cfg.flushMs) push(t);
    if (startsWith(data, UPDATE)) {
      const tickTs = numberAfter(data, K_TICK_TS);
      const counts = tickTs > 0 ? windows.record(t, t - tickTs) : windows.at(t).counts;
      counts.n++;
      counts.bytes += data.length;
      totals.updates++;
      totals.bytes += data.length;
      const pid = stringAfter(data, K_PID);
      const seq = numberAfter(data, K_SEQ);
      const fromSeq = numberAfter(data, K_FROM_SEQ);
      const first = fromSeq === fromSeq ? fromSeq : seq;
      const last = lastSeq.get(pid);
      if (last !== undefined && first > last + 1) {
        counts.gaps += first - last - 1;
        totals.gaps += first - last - 1;
      }
      if (first < seq) {
        counts.merged += seq - first;
        totals.merged += seq - first;
      }
      if (last === undefined || seq > last) lastSeq.set(pid, seq);
      return;
    }
    if (startsWith(data, SNAPSHOT)) {
      const m = JSON.parse(data.toString('utf8')) as { portfolio_id: string; seq: number };
      if (lastSeq.has(m.portfolio_id)) {
        windows.at(t).counts.resyncs++;
        totals.resyncs++;
      } else snapshots++;
      lastSeq.set(m.portfolio_id, m.seq);
      return;
    }
    const m = JSON.parse(data.toString('utf8')) as { type: string; portfolios?: string[] };
    if (m.type === 'subscribed') subscribed += m.portfolios?.length ?? 0;
    else if (m.type === 'error') onError(data.toString('utf8'));
  });
  ws.on('close', () => {
    if (!finishing) totals.closed++;
  });
  return new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      ws.send(JSON.stringify({ op: 'subscribe', id: c, portfolios }));
      resolve();
    });
    ws.once('error', (e) => reject(new Error(`connection ${c}: ${e.message}`)));
    ws.on('error', (e) => onError(e.message));
  });
}

async function connectAll(): Promise<void> {
  let next = cfg.from;
  const worker = async () => {
    // Bounded by the connection range.
    while (next < cfg.to) await open(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, cfg.connectConcurrency) }, worker));
  const want = (cfg.to - cfg.from) * cfg.perConnection;
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
    send({ type: 'final', totals, windows: windows.take(Infinity), cpuSeconds: cpuSeconds() });
    for (const s of sockets) s.terminate();
  });
  await connectAll();
  ready = true;
  setInterval(() => {
    const t = nowMs();
    if (t - lastPush >= cfg.flushMs) push(t);
  }, cfg.flushMs).unref();
  send({ type: 'ready', connections: cfg.to - cfg.from, subscriptions: subscribed, snapshots });
}

main().catch(fatal);
