// The market worker thread: a message loop around MarketCore (core.ts). It owns no I/O: the main
// thread owns LMDB and the engine, and gets back, per tape, one message with the closed, revised and
// watched bars, the feed gaps and the alerts. Messages are handled in arrival order, so an 'open'
// or 'checkpoint' answer reflects every tape posted before it.

import { parentPort } from 'node:worker_threads';
import { createMarketCore, type CoreOutput, type MarketCore } from './core.js';
import type { FromMarketWorker, ToMarketWorker } from './workerProtocol.js';

const port = parentPort;
if (port === null) throw new Error('src/market/worker.ts runs as a worker thread (see src/market/service.ts)');

let core: MarketCore | null = null;
const send = (msg: FromMarketWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);

function sendOut(out: CoreOutput, tape: Float64Array | null): void {
  // An empty check result is not worth a message; a tape's always is: it acknowledges the tape and
  // gives its buffer back (transferred) for the next one.
  if (tape === null && out.bars.count === 0 && out.gaps.length === 0 && out.alerts.length === 0) return;
  const transfer = out.bars.count > 0 ? [out.bars.data.buffer as ArrayBuffer] : [];
  if (tape !== null) transfer.push(tape.buffer as ArrayBuffer);
  send({ t: 'out', tape: tape !== null, bars: out.bars, gaps: out.gaps, alerts: out.alerts, ...(tape === null ? {} : { buffer: tape }) }, transfer);
}

port.on('message', (msg: ToMarketWorker) => {
  if (msg.t === 'init') {
    const created = createMarketCore(msg.options);
    if (!created.ok) return send({ t: 'failed', message: created.error.message });
    core = created.value;
    return send({ t: 'ready', refused: core.restore(msg.open, msg.recent, msg.revisable) });
  }
  if (core === null) return;
  switch (msg.t) {
    case 'tape':
      if (msg.names.length > 0) core.name(msg.base, msg.names);
      return sendOut(core.onTape(msg.tape, msg.n), msg.tape);
    case 'check':
      return sendOut(core.check(msg.now), null);
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
