// Feed publisher process: one /ws/feed connection sending binary tick frames (src/client/binary.ts
// layout) at the rate the orchestrator sets, paced by the clock: every intervalMs it sends what the
// rate owes for the time actually elapsed, so timer jitter changes frame sizes, not the rate.
// Ticks follow the workload's Zipf stream (bench/workload.ts TickStream); each frame's ticks carry
// ts = nowMs() at the moment the frame is built, which the server echoes as tick_ts.
//
// Built to offer more than any goal (issue 14: one publisher used to cap near 1M ticks/s): the tick
// stream is drawn once at start into a ring of encoded 28-byte records (symbol id, price, ts, size),
// so a frame is one memory copy of the ring plus the ts written into each record; frames are sent
// unmasked-equivalent (an all-zero mask, which the ws package then skips applying: the bytes are
// unchanged, and a server must accept any mask); what each tick owes is read from prefix sums. The
// orchestrator runs several publishers when one is not enough, and flags a phase in which a publisher
// lagged or used more than 0.8 of a core as load-generator-bound.
import WebSocket from 'ws';
import { FrameKind, BINARY_VERSION, TICKS_HEADER_BYTES, TICK_RECORD_BYTES, encodeFeedRegister } from '../../src/protocol/binary.js';
import { TickStream } from '../workload.js';
import { childConfig, cpuSeconds, exitWithParent, fatal, nowMs, send, sleep, subscribedHolders } from './common.js';
import type { PublisherConfig, PublisherIn, PublisherWindow } from './messages.js';

const cfg = childConfig<PublisherConfig>();
/** A stall longer than this is not caught up (the ticks are counted as lagged): it would be one huge burst. */
const catchUpMaxMs = 250;
const registerTimeoutMs = 30_000;
/** Ticks drawn at start and replayed in a loop (28 MB of records): longer than any phase's distinct-tick need. */
const ringTicks = 1 << 20;
/** Offsets inside a tick record (src/client/binary.ts: u32 symbol id | f64 price | f64 ts | f64 size). */
const priceAt = 4;
const tsAt = 12;
const sizeAt = 20;

const stream = new TickStream(cfg.workload, cfg.workload.seed + 1 + cfg.seed);
const owedPerTick = subscribedHolders(cfg.workload, cfg.connections, cfg.perConnection);
const ringSymbols = new Uint32Array(ringTicks);
const ring = Buffer.alloc(ringTicks * TICK_RECORD_BYTES);
/** owedBefore[i] = updates owed by ring ticks [0, i). */
const owedBefore = new Float64Array(ringTicks + 1);
for (let i = 0; i < ringTicks; i++) {
  const s = stream.next();
  ringSymbols[i] = s;
  owedBefore[i + 1] = owedBefore[i] + owedPerTick[s];
  const o = i * TICK_RECORD_BYTES;
  ring.writeDoubleLE(stream.prices[s], o + priceAt);
  ring.writeDoubleLE(NaN, o + sizeAt);
}
let ringAt = 0;
const windows = new Map<number, PublisherWindow>();
let rate = 0;
let credit = 0;
let last = nowMs();
let frames = 0;
let acks = 0;
let running = true;

function win(t: number): PublisherWindow {
  const w = Math.floor((t - cfg.t0) / cfg.windowMs);
  let e = windows.get(w);
  if (e === undefined) {
    e = { w, sent: 0, skipped: 0, accepted: 0, rejected: 0, lagged: 0, owed: 0 };
    windows.set(w, e);
  }
  return e;
}

function takeWindows(before: number): PublisherWindow[] {
  const limit = before === Infinity ? Infinity : Math.floor((before - cfg.t0) / cfg.windowMs);
  const out: PublisherWindow[] = [];
  for (const [w, e] of windows) {
    if (w < limit) {
      out.push(e);
      windows.delete(w);
    }
  }
  return out;
}

const ws = new WebSocket(cfg.url.replace(/^http/, 'ws') + '/ws/feed', { perMessageDeflate: false, skipUTF8Validation: true, generateMask: (mask: Buffer) => void mask.fill(0) });
ws.on('error', (e) => fatal(new Error(`feed socket error: ${e.message}`)));
ws.on('close', (code, reason) => {
  if (running) fatal(new Error(`feed socket closed by the server: ${code} ${reason.toString().slice(0, 200)}`));
});

const registered = new Promise<void>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no 'registered' answer within ${registerTimeoutMs} ms`)), registerTimeoutMs);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return;
    const m = JSON.parse(data.toString('utf8')) as { type: string; accepted?: unknown; rejected?: unknown; symbols?: { symbol: string; id: number }[]; message?: string };
    if (m.type === 'feed_ack') {
      acks++;
      const e = win(nowMs());
      if (typeof m.accepted === 'number') e.accepted += m.accepted;
      if (typeof m.rejected === 'number') e.rejected += m.rejected;
    } else if (m.type === 'registered') {
      const got = m.symbols ?? [];
      if (got.length !== stream.names.length) return reject(new Error(`registered ${got.length} of ${stream.names.length} symbols: ${JSON.stringify(m.rejected).slice(0, 200)}`));
      // The answer lists the symbols in the order sent, each with the id this connection uses for it.
      for (let i = 0; i < ringTicks; i++) ring.writeUInt32LE(got[ringSymbols[i]].id, i * TICK_RECORD_BYTES);
      clearTimeout(timer);
      resolve();
    } else if (m.type === 'error') {
      reject(new Error(`feed error: ${m.message ?? JSON.stringify(m).slice(0, 200)}`));
    }
  });
});

function sendFrame(count: number, t: number): void {
  const bytes = Buffer.allocUnsafe(TICKS_HEADER_BYTES + count * TICK_RECORD_BYTES);
  bytes.writeUInt8(FrameKind.feedTicks, 0);
  bytes.writeUInt8(BINARY_VERSION, 1);
  bytes.writeUInt16LE(0, 2);
  bytes.writeUInt32LE(count, 4);
  // At most two copies: up to the ring's end, then from its start.
  const first = Math.min(count, ringTicks - ringAt);
  ring.copy(bytes, TICKS_HEADER_BYTES, ringAt * TICK_RECORD_BYTES, (ringAt + first) * TICK_RECORD_BYTES);
  let owed = owedBefore[ringAt + first] - owedBefore[ringAt];
  if (first < count) {
    ring.copy(bytes, TICKS_HEADER_BYTES + first * TICK_RECORD_BYTES, 0, (count - first) * TICK_RECORD_BYTES);
    owed += owedBefore[count - first];
  }
  ringAt = (ringAt + count) % ringTicks;
  for (let i = 0, o = TICKS_HEADER_BYTES + tsAt; i < count; i++, o += TICK_RECORD_BYTES) bytes.writeDoubleLE(t, o);
  ws.send(bytes, { binary: true });
  frames++;
  const e = win(t);
  e.sent += count;
  e.owed += owed;
}

/** One pacing step: what the rate owes for the time elapsed since the previous step. */
function step(): void {
  const t = nowMs();
  let elapsed = t - last;
  last = t;
  if (rate <= 0) {
    credit = 0;
    return;
  }
  if (elapsed > catchUpMaxMs) {
    win(t).lagged += Math.round(((elapsed - catchUpMaxMs) * rate) / 1000);
    elapsed = catchUpMaxMs;
  }
  credit += (elapsed * rate) / 1000;
  let n = Math.floor(credit);
  if (n === 0) return;
  credit -= n;
  if (ws.bufferedAmount > cfg.bufferedMaxBytes) {
    win(t).skipped += n;
    return;
  }
  // Bounded: at most catchUpMaxMs worth of ticks, in frames of frameTicksMax.
  while (n > 0) {
    const k = Math.min(n, cfg.frameTicksMax);
    sendFrame(k, t);
    n -= k;
  }
}

function loop(): void {
  if (!running) return;
  step();
  setTimeout(loop, cfg.intervalMs);
}

async function finish(): Promise<void> {
  running = false;
  // Acks of the last frames: wait until every frame is acknowledged, 2 s at most.
  for (let i = 0; i < 200 && acks < frames && ws.readyState === WebSocket.OPEN; i++) await sleep(10);
  send({ type: 'final', frames, acks, windows: takeWindows(Infinity), cpuSeconds: cpuSeconds() });
  ws.close(1000);
}

async function main(): Promise<void> {
  exitWithParent(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(encodeFeedRegister(stream.names));
  await registered;
  process.on('message', (m: PublisherIn) => {
    if (m.type === 'rate') {
      // A rate change starts a fresh pacing interval so the old rate is not applied to the time since.
      step();
      rate = m.rate;
    } else if (m.type === 'finish') void finish().catch(fatal);
    else if (m.type === 'stop') process.exit(0);
  });
  setInterval(() => {
    if (running) send({ type: 'windows', windows: takeWindows(nowMs()), cpuSeconds: cpuSeconds() });
  }, cfg.flushMs).unref();
  send({ type: 'ready' });
  last = nowMs();
  loop();
}

main().catch(fatal);
