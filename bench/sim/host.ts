// The engine host of the simulator: a child process that runs createEngine on a data dir and executes
// the simulator's requests (test/sim/protocol.ts) over IPC, answering each. It exists so that the
// simulator can kill -9 a whole engine and restart it on the same data dir, as an operator's crash
// would, while the engine keeps its real shard workers, real LMDB and real kernel.
//
// Time is the simulator's: every request carries the simulated `now`, and the engine's injected clock
// returns it, so event timestamps are a function of the seed. Nothing here decides anything: it only
// relays calls, outcomes, and what subscribers receive.

import { createEngine, type MtmEngine } from '../../src/engine/engine.js';
import { seeded } from '../../src/sim/random.js';
import type {
  BurstReply,
  CallOutcome,
  CrashReply,
  EngineCall,
  HostMessage,
  HostRequestEnvelope,
  Observation,
  StartOptions,
  TicksReply,
} from '../../test/sim/protocol.js';
import type { StoredEvent } from '../../src/domain/types.js';

let now = 0;
const clock = { now: () => now };
let engine: MtmEngine | null = null;

interface HostSub {
  portfolio: string;
  unsubscribe: () => void;
  messages: number;
  resyncs: number;
}
const subs = new Map<number, HostSub>();

/** How long the host waits for a subscription's first snapshot before answering without it. */
const firstSnapshotWaitMs = 5_000;
/** Polling period while waiting for a shard to come back (bounded by the request's timeout). */
const pollMs = 5;

function send(m: HostMessage, then?: () => void): void {
  if (process.send === undefined || !process.connected) return;
  process.send(m, undefined, {}, () => then?.());
}

function running(): MtmEngine {
  if (engine === null) throw new Error('engine not started');
  return engine;
}

/** Calls one public engine method with raw arguments; a throw is reported, not propagated. */
function invoke(call: EngineCall): Promise<CallOutcome> {
  try {
    const e = running() as unknown as Record<string, (...args: unknown[]) => unknown>;
    const fn = e[call.method];
    if (typeof fn !== 'function') return Promise.resolve({ threw: `no engine method ${call.method}` });
    const r = fn.apply(e, call.args);
    return Promise.resolve(r).then(
      (returned) => ({ returned }),
      (err: unknown) => ({ threw: describe(err) }),
    );
  } catch (err) {
    return Promise.resolve({ threw: describe(err) });
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Busy-waits: a listener that is slow on the engine's own thread (the engine calls listeners synchronously). */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    /* spin */
  }
}

async function start(o: StartOptions): Promise<void> {
  engine = await createEngine({
    dataDir: o.dataDir,
    workers: o.workers,
    limits: o.limits,
    shardHeapMb: o.shardHeapMb,
    snapshotIntervalMs: o.snapshotIntervalMs,
    allowFaultInjection: true,
    // The model applies every in-order tick (10x moves included); the suspect filter is proven by
    // test/marks.test.ts, not modelled here.
    suspectMovePct: 0,
    clock,
    random: seeded(o.randomSeed),
  });
}

async function burst(calls: EngineCall[]): Promise<BurstReply> {
  const e = running();
  let queueDepthMax = 0;
  const sample = () => {
    for (const s of e.shardStats()) if (s.queueDepth > queueDepthMax) queueDepthMax = s.queueDepth;
  };
  let done = false;
  const all = Promise.all(calls.map(invoke)).finally(() => (done = true));
  // Commands reach the shard queues a few microtasks after the calls; sample there and on every turn.
  for (let i = 0; i < 4; i++) {
    await Promise.resolve();
    sample();
  }
  const sampler = (async () => {
    for (let turns = 0; !done && turns < 100_000; turns++) {
      sample();
      await new Promise((r) => setImmediate(r));
    }
  })();
  const outcomes = await all;
  await sampler;
  return { outcomes, queueDepthMax };
}

async function ticks(calls: EngineCall[]): Promise<TicksReply> {
  const e = running();
  const symbolsBefore = e.stats().symbols;
  // Synchronously, so that the whole step forms one coalesced batch: batch composition decides
  // which intermediate prices the kernel ever sees, hence breaches; it must be a function of the seed.
  const outcomes: CallOutcome[] = [];
  for (const c of calls) {
    try {
      const fn = (e as unknown as Record<string, (...args: unknown[]) => unknown>)[c.method];
      outcomes.push({ returned: fn.apply(e, c.args) });
    } catch (err) {
      outcomes.push({ threw: describe(err) });
    }
  }
  const symbolsAfter = e.stats().symbols;
  await e.drain();
  return { outcomes, symbolsBefore, symbolsAfter };
}

async function observe(ids: string[]): Promise<Observation> {
  const e = running();
  const results = await Promise.all(ids.map((id) => e.snapshot(id)));
  const snapshots: Record<string, unknown> = {};
  ids.forEach((id, i) => (snapshots[id] = results[i]));
  const st = e.storeStats();
  return {
    snapshots,
    list: e.listPortfolios(),
    symbols: e.stats().symbols,
    shardRestarts: e.stats().shardRestarts,
    shards: e.shardStats(),
    store: { pendingWrites: st.pendingWrites, pendingWritesMax: st.pendingWritesMax, lastSeq: st.lastSeq, failed: st.failed },
  };
}

async function subscribe(sub: number, portfolio: unknown, blockMs: number): Promise<unknown> {
  const e = running();
  let first: (() => void) | null = null;
  const gotFirst = new Promise<void>((r) => (first = r));
  const entry: HostSub = { portfolio: String(portfolio), unsubscribe: () => undefined, messages: 0, resyncs: 0 };
  const r = e.subscribe(portfolio as string, (message) => {
    if (blockMs > 0) block(blockMs);
    entry.messages++;
    if (message.kind === 'snapshot' && message.resync) entry.resyncs++;
    send({ kind: 'sub', sub, message });
    first?.();
    first = null;
  });
  if (!r.ok) return r;
  entry.unsubscribe = r.value;
  subs.set(sub, entry);
  let timer: NodeJS.Timeout | undefined;
  const arrived = await Promise.race([gotFirst.then(() => true), new Promise<boolean>((res) => (timer = setTimeout(() => res(false), firstSnapshotWaitMs)))]);
  clearTimeout(timer);
  return { ok: true, value: { snapshotArrived: arrived } };
}

async function crash(shard: number, how: 'throw' | 'exit' | 'heap', calls: EngineCall[], lateCalls: EngineCall[], timeoutMs: number): Promise<CrashReply> {
  const e = running();
  const started = performance.now();
  const mine = [...subs.values()].filter((s) => e.shardOf(s.portfolio) === shard);
  const resyncsBefore = mine.map((s) => s.resyncs);
  let restarted = false;
  const off = e.onEvent((ev) => {
    if (ev.type === 'ShardRestarted' && ev.shard === shard) restarted = true;
  });
  const crashed = await invoke({ method: 'crashShard', args: [shard, how] });
  // The calls race the crash and the restart: each either lands or fails with shard_restarting.
  const pending = calls.map(invoke);
  let recovered = false;
  const crashOk = 'returned' in crashed && (crashed.returned as { ok?: boolean }).ok === true;
  // Late calls wait for the supervisor to be starting the new worker (bounded): the window in which
  // the new worker exists but has not been sent the symbol table yet.
  let lateInWindow = false;
  if (crashOk && lateCalls.length > 0) {
    while (performance.now() - started < timeoutMs && !restarted) {
      if (e.shardStats()[shard].state === 'starting') {
        lateInWindow = true;
        break;
      }
      await new Promise((r) => setImmediate(r));
    }
  }
  const late = lateCalls.map(invoke);
  const outcomes = await Promise.all(pending);
  const lateOutcomes = await Promise.all(late);
  if (crashOk) {
    while (performance.now() - started < timeoutMs) {
      const ready = e.shardStats()[shard].state === 'ready';
      if (restarted && ready && mine.every((s, i) => s.resyncs > resyncsBefore[i])) {
        recovered = true;
        break;
      }
      await sleep(pollMs);
    }
    off();
    if (recovered) await e.drain();
  } else off();
  return { crash: crashed, outcomes, lateOutcomes, lateInWindow, recovered, waitedMs: performance.now() - started };
}

async function stream(id: number, calls: EngineCall[], window: number): Promise<number> {
  let next = 0;
  let inFlight = 0;
  await new Promise<void>((done) => {
    const pump = () => {
      while (inFlight < window && next < calls.length) {
        const index = next++;
        inFlight++;
        void invoke(calls[index]).then((outcome) => {
          inFlight--;
          send({ kind: 'streamed', id, index, outcome });
          if (next >= calls.length && inFlight === 0) done();
          else pump();
        });
      }
    };
    if (calls.length === 0) done();
    else pump();
  });
  return calls.length;
}

async function events(pageMax: number): Promise<{ events: StoredEvent[] }> {
  const e = running();
  const out: StoredEvent[] = [];
  let after = 0;
  for (let page = 0; page < pageMax; page++) {
    const r = await e.queryEvents({ after_seq: after, limit: 1000 });
    if (!r.ok) throw new Error(r.error.message);
    out.push(...r.value);
    if (r.value.length < 1000) return { events: out };
    after = r.value[r.value.length - 1].seq;
  }
  throw new Error(`more than ${pageMax} pages of events`);
}

async function handle(req: HostRequestEnvelope): Promise<unknown> {
  switch (req.op) {
    case 'start':
      await start(req.options);
      return true;
    case 'call':
      return invoke(req.call);
    case 'burst':
      return burst(req.calls);
    case 'ticks':
      return ticks(req.calls);
    case 'observe':
      return observe(req.ids);
    case 'subscribe':
      return subscribe(req.sub, req.portfolio, req.blockMs);
    case 'unsubscribe': {
      const s = subs.get(req.sub);
      subs.delete(req.sub);
      s?.unsubscribe();
      return s !== undefined;
    }
    case 'crash':
      return crash(req.shard, req.how, req.calls, req.lateCalls, req.recoveryTimeoutMs);
    case 'stream':
      return stream(req.id, req.calls, req.window);
    case 'snapshotAll':
      await running().snapshotAll();
      return true;
    case 'drain':
      await running().drain();
      return true;
    case 'events':
      return events(req.pageMax);
    case 'close':
      await running().close();
      engine = null;
      return true;
  }
}

process.on('message', (raw: unknown) => {
  const req = raw as HostRequestEnvelope;
  now = req.now;
  handle(req).then(
    (value) => send({ kind: 'reply', id: req.id, value }, req.op === 'close' ? () => process.exit(0) : undefined),
    (err: unknown) => send({ kind: 'failed', id: req.id, message: describe(err) }),
  );
});

// Anything thrown outside a call is an engine (or host) crash: report it, then die like one.
process.on('uncaughtException', (err) => send({ kind: 'fatal', message: describe(err) }, () => process.exit(1)));
process.on('unhandledRejection', (err) => send({ kind: 'fatal', message: describe(err) }, () => process.exit(1)));
// An orphaned host (the simulator died) must not linger with workers and an open LMDB environment.
process.on('disconnect', () => process.exit(0));
