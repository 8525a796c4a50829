// Trader process: `connections` /ws connections, each with `inFlight` slots; a slot sends a `trade`
// op and, when its answer (ack or error) arrives, the next one (closed loop). Latency is from send to
// the ack, recorded after the warm-up only. A slot alternates buy and sell of 1 unit of the same symbol
// on its own portfolio, so positions stay small and every trade is a real, accepted trade.
import WebSocket from 'ws';
import { childConfig, cpuSeconds, encodeHistogram, exitWithParent, fatal, newHistogram, nowMs, recordMs, send, sleep } from './common.js';
import type { TradersConfig, TradersIn } from './messages.js';

const cfg = childConfig<TradersConfig>();
const hist = newHistogram();
const sockets: WebSocket[] = [];
/** Per connection: sends the next trade of slot s. */
const fires: ((s: number) => void)[] = [];
let acked = 0;
let errors = 0;
let firstError = '';
let warmEnd = Infinity;
let end = -Infinity;

interface Slot {
  portfolio: string;
  n: number;
  sentAt: number;
}

function openConnection(c: number): Promise<void> {
  const ws = new WebSocket(cfg.url.replace(/^http/, 'ws') + '/ws', { perMessageDeflate: false });
  sockets.push(ws);
  const slots: Slot[] = [];
  for (let s = 0; s < cfg.inFlight; s++) slots.push({ portfolio: cfg.portfolios[(c * cfg.inFlight + s) % cfg.portfolios.length], n: 0, sentAt: 0 });
  const fire = (s: number): void => {
    const t = nowMs();
    if (t >= end || ws.readyState !== WebSocket.OPEN) return;
    const slot = slots[s];
    const symbol = cfg.symbols[(slot.n >> 1) % cfg.symbols.length];
    const trade = { trade_id: `${cfg.prefix}-${c}-${s}-${slot.n}`, symbol, side: slot.n % 2 === 0 ? 'buy' : 'sell', quantity: 1, price: 100 };
    slot.n++;
    slot.sentAt = t;
    ws.send(JSON.stringify({ op: 'trade', id: s, portfolio: slot.portfolio, trade }));
  };
  ws.on('message', (data: Buffer) => {
    const t = nowMs();
    const m = JSON.parse(data.toString('utf8')) as { type: string; id?: number; code?: string; message?: string };
    if (typeof m.id !== 'number' || m.id < 0 || m.id >= slots.length) return;
    const slot = slots[m.id];
    if (m.type === 'ack') {
      // Throughput: acks arriving in the measured interval; latency: trades sent in it, too.
      if (t >= warmEnd && t <= end) {
        acked++;
        if (slot.sentAt >= warmEnd) recordMs(hist, t - slot.sentAt);
      }
      fire(m.id);
    } else if (m.type === 'error') {
      errors++;
      if (firstError === '') firstError = `${m.code}: ${m.message}`.slice(0, 300);
      // A refused trade is retried with the next one a little later, never in a tight loop.
      setTimeout(() => fire(m.id as number), 10);
    }
  });
  fires.push(fire);
  return new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', (e) => reject(new Error(`trader connection ${c}: ${e.message}`)));
  });
}

async function main(): Promise<void> {
  exitWithParent(() => sockets.forEach((s) => s.terminate()));
  const deadline = Date.now() + cfg.readyTimeoutMs;
  for (let c = 0; c < cfg.connections; c++) {
    if (Date.now() > deadline) throw new Error(`only ${c}/${cfg.connections} trader connections within ${cfg.readyTimeoutMs} ms`);
    await openConnection(c);
  }
  process.on('message', (m: TradersIn) => {
    if (m.type === 'stop') process.exit(0);
    if (m.type !== 'start') return;
    const t = nowMs();
    const cpu0 = cpuSeconds();
    warmEnd = t + m.warmupMs;
    end = warmEnd + m.durationMs;
    for (const fire of fires) for (let s = 0; s < cfg.inFlight; s++) fire(s);
    void (async () => {
      await sleep(m.warmupMs + m.durationMs + 20);
      send({ type: 'final', acked, errors, firstError, seconds: m.durationMs / 1000, hist: encodeHistogram(hist), cpuSeconds: cpuSeconds() - cpu0 });
      for (const ws of sockets) ws.close(1000);
    })();
  });
  send({ type: 'ready', connections: sockets.length });
}

main().catch(fatal);
