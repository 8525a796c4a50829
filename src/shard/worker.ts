// The piscina task that IS a shard: one long-lived task per worker thread, fed over a MessagePort.
// Its promise settles only when the shard stops; if the worker dies, piscina rejects it and the
// engine's supervisor restarts the shard from the store.

import type { MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { unwatchedRowsPerSliceMaxDefault, type FromShard, type SettledResult, type ShardInit, type ShardRecoveryWork, type ToShard } from './protocol.js';
import { Shard } from './shard.js';
import { ShardMetrics } from './shardMetrics.js';
import { TailReplay, type TailLog } from './tail.js';

/** When this thread's modules were evaluated (the recovery breakdown's worker boot). */
const modulesAtMs = performance.now();

export interface ShardTaskInput {
  init: ShardInit;
  port: MessagePort;
}

/** Opens the data directory read-only in this thread (src/store/logReader.ts, given by the worker's entry). */
export type OpenTailLog = (path: string) => TailLog;

/**
 * The shard task; `openLog` lets it read its own tail at recovery ('replayTail'), given by the entry
 * the engine starts (src/engine/shards/shardWorker.ts), since a shard imports nothing from the store.
 */
export function shardTaskWith(openLog: OpenTailLog | null): (input: ShardTaskInput) => Promise<{ stopped: true }> {
  return (input) => shardTask(input, openLog);
}

export default function shardTask({ init, port }: ShardTaskInput, openLog: OpenTailLog | null = null): Promise<{ stopped: true }> {
  const taskAtMs = performance.now();
  const shard = new Shard(init);
  const metrics = new ShardMetrics();
  const send = (msg: FromShard) => port.postMessage(msg);
  // The events' bytes move to the main thread (no copy, no clone per event).
  const sendResults = (msg: Extract<FromShard, { t: 'results' }>): void => {
    if (msg.eventBytes === undefined) send(msg);
    else port.postMessage(msg, [msg.eventBytes.buffer, (msg.eventEnds as Int32Array).buffer, (msg.eventTypes as Uint8Array).buffer, (msg.bodyBytes as Uint8Array).buffer, (msg.bodyEnds as Int32Array).buffer] as ArrayBuffer[]);
  };
  // Watched first (Shard.ticks): the rest of the book is revalued a slice (about
  // unwatchedRowsPerSliceMax rows) per event-loop turn once the batches already queued were taken
  // (an immediate runs after them), so a batch arriving meanwhile waits for one slice, not the whole
  // pass; inline and whole when it is due (restDue), and whole before any other message, so nothing
  // read, snapshotted or traded ever sees an unwatched row behind the prices.
  const rowsPerSlice = init.unwatchedRowsPerSliceMax ?? unwatchedRowsPerSliceMaxDefault;
  let sliceScheduled = false;
  const sent = (settled: SettledResult | null): void => {
    if (settled === null) return;
    metrics.batch(settled.positionsRevalued, settled.portfoliosRevalued, settled.openPositions);
    send(settled);
  };
  const settle = (): void => sent(shard.settle());
  const slice = (): void => {
    sliceScheduled = false;
    sent(shard.settleSlice(rowsPerSlice));
    scheduleSlice();
  };
  const scheduleSlice = (): void => {
    if (sliceScheduled || !shard.restPending) return;
    sliceScheduled = true;
    setImmediate(slice);
  };
  // This thread's time in each recovery step (performance.now(): ms since the process started), reported
  // with 'loaded' for the start's phase breakdown; a worker reads no clock for anything it computes.
  const work: ShardRecoveryWork = { shard: init.shard, modules_at_ms: modulesAtMs, task_at_ms: taskAtMs, ready_at_ms: 0, trades_in_columns: 0, load_ms: 0, read_ms: 0, replay_ms: 0, finish_ms: 0 };
  let t0 = 0;
  let tail: TailReplay | null = null;
  // The data directory, read-only in this thread, from the snapshot load to the end of the tail pass.
  let log: TailLog | null = null;
  /** The oldest seq the snapshot 'loadStored' read covers: a tail with no given start reads after it. */
  let storedCovered = 0;
  const logAt = (path: string): TailLog => {
    if (openLog === null) throw new Error('this shard worker was started without a log reader (src/engine/shards/shardWorker.ts)');
    return (log ??= openLog(path));
  };
  const runTail = (): void => {
    const pass = tail as TailReplay;
    t0 = performance.now();
    pass.run();
    work.replay_ms += performance.now() - t0;
    if (!pass.done) return;
    log?.close();
    log = null;
  };
  return new Promise((resolve) => {
    port.on('message', (msg: ToShard) => {
      // A hold reads only a watched book's rows, which every batch keeps current: no pass needed first.
      if (msg.t !== 'ticks' && msg.t !== 'hold') settle();
      switch (msg.t) {
        case 'symbols':
          shard.registerSymbols(msg.from, msg.names);
          break;
        case 'instruments':
          shard.defineInstruments(msg.instruments);
          break;
        case 'ticks': {
          const result = shard.ticks(msg.batch, msg.n, msg.syms, msg.prices, msg.ts, msg.now);
          metrics.batch(result.positionsRevalued, result.portfoliosRevalued, result.openPositions);
          // The deltas' buffer moves to the main thread (no copy); the shard writes the next batch's elsewhere.
          port.postMessage(result, [result.deltas.buffer as ArrayBuffer, result.deltaIndex.buffer as ArrayBuffer]);
          if (shard.restDue(msg.now)) settle();
          else scheduleSlice();
          break;
        }
        case 'metrics':
          void metrics.registry.getMetricsAsJSON().then((json) => send({ t: 'metrics', request: msg.request, metrics: json }));
          break;
        case 'commands':
          sendResults(shard.commandsAnswer(msg.commands));
          break;
        case 'tradeCommands':
          sendResults(shard.tradeCommands(msg.ids, msg.now, msg.bytes));
          break;
        case 'tradeChunk': {
          const answer = shard.tradeChunk(msg.chunk, msg.bytes, msg.count, msg.now);
          // The per-trade columns and the events' bytes move to the main thread (no copy, no clone per event).
          port.postMessage(answer, [answer.kinds.buffer, answer.realized.buffer, answer.eventBytes.buffer, answer.eventEnds.buffer, answer.eventTypes.buffer, answer.eventTrades.buffer] as ArrayBuffer[]);
          break;
        }
        case 'watch':
          shard.watch(msg.portfolio, msg.on);
          break;
        case 'hold':
          if (shard.hold(msg.portfolio, msg.on, msg.now)) {
            const d = shard.takeDeltas();
            port.postMessage({ t: 'deltas', deltas: d.bytes, deltaIndex: d.index } satisfies FromShard, [d.bytes.buffer as ArrayBuffer, d.index.buffer as ArrayBuffer]);
          }
          break;
        case 'records': {
          const segments = shard.snapshotSegments();
          // The segments are transferred, not cloned: the main thread stores them as they are.
          const records = msg.segmentsOnly === true ? [] : shard.records(msg.now);
          port.postMessage({ t: 'records', request: msg.request, records, segments } satisfies FromShard, segments.map((b) => b.buffer as ArrayBuffer));
          break;
        }
        case 'load':
          t0 = performance.now();
          shard.load(msg.records, msg.prices);
          work.load_ms += performance.now() - t0;
          break;
        case 'loadColumnar':
          t0 = performance.now();
          shard.loadColumnar(msg.parts, msg.filter, msg.prices, msg.clean);
          work.load_ms += performance.now() - t0;
          break;
        case 'loadStored': {
          t0 = performance.now();
          const stored = logAt(msg.path);
          const pointer = stored.shardSnapshotPointer();
          if (pointer === undefined) throw new Error('loadStored: the data directory has no columnar snapshot');
          // Its own part when the generation has this shard count; else every part, filtered.
          const same = pointer.shards === (init.shards ?? 1);
          const picked = same ? [init.shard] : pointer.covered.map((_, i) => i);
          const parts = picked.map((i) => ({ segments: stored.shardSnapshotSegments(pointer, i), covered: pointer.covered[i] }));
          work.read_ms += performance.now() - t0;
          storedCovered = Math.min(...parts.map((p) => p.covered));
          shard.loadColumnar(parts, !same, msg.prices, msg.clean);
          work.load_ms += performance.now() - t0;
          break;
        }
        case 'replayTail': {
          const request = msg.request;
          tail = new TailReplay(shard, logAt(msg.path), msg.from ?? storedCovered, (report) => send({ t: 'tail', request, report }));
          runTail();
          break;
        }
        case 'tailResume':
          runTail();
          break;
        case 'loaded':
          tail = null;
          t0 = performance.now();
          shard.finishRecovery();
          work.finish_ms += performance.now() - t0;
          work.trades_in_columns = shard.tradesReplayedInColumns;
          send({ t: 'loaded', request: msg.request, portfolios: shard.portfolios, positions: shard.kernel.positions, work: { ...work } });
          materializeInTurns(shard);
          break;
        case 'drop':
          send({ t: 'dropped', request: msg.request, portfolios: shard.drop(msg.ids) });
          break;
        case 'adopt': {
          const r = shard.adopt(msg.segments);
          send({ t: 'adopted', request: msg.request, ...r });
          if (r.portfolios > 0) materializeInTurns(shard);
          break;
        }
        case 'crash':
          crash(msg.how);
          break;
        case 'stop':
          port.close();
          resolve({ stopped: true });
          break;
      }
    });
    work.ready_at_ms = performance.now();
    send({ t: 'ready', shard: init.shard, kernel: shard.kernel.kind });
  });
}

/** Books whose state one turn builds after recovery (a few ms of a turn: ticks and commands go between). */
const booksMaterializedPerTurnMax = 500;

/** Builds the lazily restored books' states a slice per event-loop turn, between messages. */
function materializeInTurns(shard: Shard): void {
  const step = (): void => {
    if (shard.materializeSome(booksMaterializedPerTurnMax)) setImmediate(step);
  };
  setImmediate(step);
}

/** Deliberate faults for supervision tests; reachable only when the engine allows fault injection. */
function crash(how: 'throw' | 'exit' | 'heap'): void {
  if (how === 'exit') process.exit(70);
  if (how === 'throw') {
    setImmediate(() => {
      throw new Error('deliberate shard crash (fault injection)');
    });
    return;
  }
  const hog: number[][] = [];
  for (;;) hog.push(new Array(1 << 20).fill(1));
}
