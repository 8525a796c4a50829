// The market worker thread: MarketCore (core.ts) fed from the tick ring (ring.ts). It owns no I/O:
// the main thread owns LMDB and the engine. The worker reads the ring every ringPollMs while ticks
// come (so hot symbols' ticks gather into long runs), sleeps in Atomics.waitAsync when it is empty,
// and sends one message per chunk read only when the chunk produced something (closed, revised or
// watched bars, alerts). Before handling any message it reads the ring dry, so an answer reflects
// every tick the main thread wrote before posting, and comes after that ticks' output.

import { parentPort } from 'node:worker_threads';
import { createMarketCore, type CoreOutput, type MarketCore } from './core.js';
import { SymbolNameTable, TickRingReader } from './ring.js';
import type { FromMarketWorker, ToMarketWorker } from './workerProtocol.js';

const port = parentPort;
if (port === null) throw new Error('src/market/worker.ts runs as a worker thread (see src/market/service.ts)');

/** Ticks per MarketCore.onTape call: bounds one output message. */
const chunkTicksMax = 65_536;
/** An empty ring is looked at again after this even without a notify (a safety net, not the path). */
const idleWaitMs = 1_000;

let core: MarketCore | null = null;
let ring: TickRingReader | null = null;
let pollMs = 5;
const send = (msg: FromMarketWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);

function sendOut(out: CoreOutput): void {
  if (out.bars.count === 0 && out.gaps.length === 0 && out.alerts.length === 0) return;
  send({ t: 'out', bars: out.bars, gaps: out.gaps, alerts: out.alerts }, out.bars.count > 0 ? [out.bars.data.buffer as ArrayBuffer] : []);
}

/** Aggregates every tick in the ring. */
function drain(): void {
  const c = core;
  if (c === null || ring === null) return;
  while (ring.read(chunkTicksMax, (ticks, n) => sendOut(c.onTape(ticks, n))) > 0);
}

async function pump(): Promise<void> {
  for (;;) {
    drain();
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    if (ring !== null && ring.size === 0) await ring.waitForTicks(idleWaitMs);
  }
}

port.on('message', (msg: ToMarketWorker) => {
  if (msg.t === 'init') {
    const created = createMarketCore(msg.options);
    if (!created.ok) return send({ t: 'failed', message: created.error.message });
    core = created.value;
    const names = new SymbolNameTable(msg.names);
    core.nameEngineIds((id) => names.read(id));
    ring = new TickRingReader(msg.ring);
    pollMs = msg.pollMs;
    send({ t: 'ready', refused: core.restore(msg.open, msg.recent, msg.revisable) });
    void pump();
    return;
  }
  if (core === null) return;
  drain();
  switch (msg.t) {
    case 'check':
      return sendOut(core.check(msg.now));
    case 'rules': {
      const r = core.setRules(msg.rules);
      return send({ t: 'rules', request: msg.request, ok: r.ok, message: r.ok ? '' : r.error.message });
    }
    case 'watch':
      return core.watch(msg.symbol, msg.tf, msg.on);
    case 'open':
      return send({ t: 'open', request: msg.request, bar: core.openBar(msg.symbol, msg.tf) });
    case 'checkpoint': {
      const bars = core.checkpoint(msg.all);
      return send({ t: 'checkpoint', request: msg.request, bars }, bars.count > 0 ? [bars.data.buffer as ArrayBuffer] : []);
    }
    case 'stats':
      return send({ t: 'stats', request: msg.request, stats: core.stats() });
  }
});
