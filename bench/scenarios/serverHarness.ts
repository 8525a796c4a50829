// The part every bench server process shares (mtm, peer, limit): report readiness (IPC message and a
// JSON line on stdout, so a server can also be started by hand), answer stats requests with this
// process's CPU time (all threads: the mtm shard workers included) and RSS plus its own counters,
// stop cleanly on request or signal, and exit when the orchestrator goes away.
import { performance } from 'node:perf_hooks';
import { cpuSeconds, errorText, send } from '../loadgen/common.js';
import type { ServerIn, ServerReady } from '../loadgen/messages.js';

export interface BenchServer {
  port: number;
  loadMs: number;
  recoverMs: number;
  info: Record<string, string | number | boolean>;
  /** Steps of the start, in ms since this process started (restartRatio.js prints them from the fork). */
  steps?: { step: string; at_ms: number }[];
  counters(): Record<string, number>;
  stop(): Promise<void>;
}

/** Backstop only: the orchestrator bounds every stop itself (SIGKILL after its own grace). */
const stopGraceMs = 15 * 60_000;

export function runBenchServer(start: () => Promise<BenchServer>): void {
  let server: BenchServer | null = null;
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    // A second request (the 'stop' message, then SIGTERM, then the IPC channel closing) must not
    // cut short the clean stop already under way.
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(code === 0 ? 3 : code), stopGraceMs).unref();
    let failed = false;
    try {
      await server?.stop();
    } catch (e) {
      failed = true;
      console.error(errorText(e));
    }
    send({ type: 'stopped' });
    process.exit(failed ? 1 : code);
  };
  process.on('disconnect', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => void stop(0));
  process.on('message', (m: ServerIn) => {
    if (m.type === 'stop') void stop(0);
    else if (m.type === 'stats' && server !== null) {
      send({ type: 'stats', cpuSeconds: cpuSeconds(), rssBytes: process.memoryUsage.rss(), counters: server.counters() });
    }
  });
  start().then(
    (s) => {
      server = s;
      const ready: ServerReady = { type: 'ready', port: s.port, pid: process.pid, readyMs: performance.now(), loadMs: s.loadMs, recoverMs: s.recoverMs, info: s.info, timeOriginMs: performance.timeOrigin, ...(s.steps === undefined ? {} : { steps: s.steps }) };
      console.log(JSON.stringify(ready));
      send(ready);
    },
    (e: unknown) => {
      const message = errorText(e);
      console.error(message);
      send({ type: 'error', message });
      process.exit(1);
    },
  );
}

/** `--config '<json>'`-free: the config is argv[2], like the load generator children. */
export function serverConfig<T>(defaults: T): T {
  const raw = process.argv[2];
  return raw === undefined ? defaults : { ...defaults, ...(JSON.parse(raw) as Partial<T>) };
}
