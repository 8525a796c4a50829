// Starting and stopping the three systems compared in a run, each as its own process:
//   mtm   - bench/scenarios/mtmServer.ts: the real engine and server;
//   peer  - bench/peer/server.ts: the straightforward implementation;
//   limit - bench/limit/relay.ts: the transport alone (uWebSockets.js relay, no valuation).
import type { Workload } from '../workload.js';
import type { ServerReady, ServerStatsMsg } from '../loadgen/messages.js';
import { Child, benchScript, procSample, type ProcSample } from './children.js';

export const systemNames = ['mtm', 'peer', 'limit'] as const;
export type SystemName = (typeof systemNames)[number];

export interface SystemOptions {
  workload: Workload | null;
  /** mtm: data dir; peer: journal path (when trades or recovery need one). */
  dataDir?: string;
  journal?: string;
  sync?: boolean;
  /** The state is already on disk: time its recovery. */
  recover?: boolean;
  readyTimeoutMs: number;
  /** More node flags for the server process (restartRatio.js --cpu-prof DIR). */
  nodeArgs?: string[];
}

export class RunningSystem {
  private statsChain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: SystemName,
    readonly child: Child,
    readonly ready: ServerReady,
    /** Orchestrator-side time from fork() to the ready message. */
    readonly spawnToReadyMs: number,
    /** When fork() was called, epoch ms (performance.timeOrigin + now): the child's steps are read against it. */
    readonly forkedAtMs = 0,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.ready.port}`;
  }

  /** CPU and RSS from /proc (null off Linux). */
  sample(): Promise<ProcSample | null> {
    return procSample(this.child.pid);
  }

  /** The server's own counters over IPC; null when it does not answer within timeoutMs (a busy main thread). */
  counters(timeoutMs = 5_000): Promise<ServerStatsMsg | null> {
    const p = this.statsChain.then(async () => {
      const answer = this.child.next<ServerStatsMsg>('stats', timeoutMs);
      this.child.send({ type: 'stats' });
      try {
        return await answer;
      } catch {
        return null;
      }
    });
    this.statsChain = p;
    return p;
  }

  /**
   * Asks the server to stop cleanly (graceful close, the mtm engine flushes and snapshots), then
   * SIGKILL after graceMs. A server whose main thread is still busy with a backlog answers neither
   * the message nor SIGTERM (both are handled on its event loop): only the kill ends it.
   */
  stop(graceMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.child.stop(graceMs);
  }
}

export async function startSystem(name: SystemName, o: SystemOptions): Promise<RunningSystem> {
  let script: string;
  let config: object;
  // Large books (recovery: 100,000 portfolios, millions of events) need more than the default heap.
  const nodeArgs = ['--max-old-space-size=8192'];
  if (name === 'mtm') {
    script = benchScript('scenarios/mtmServer.js');
    config = { dataDir: o.dataDir, workload: o.workload, sync: o.sync ?? false, recover: o.recover ?? false };
  } else if (name === 'peer') {
    script = benchScript('peer/server.js');
    config = { workload: o.workload, journal: o.journal ?? null, sync: o.sync ?? false, replay: o.recover ?? false };
  } else {
    script = benchScript('limit/relay.js');
    config = { workload: o.workload };
  }
  const t0 = performance.now();
  const child = new Child(name, script, [JSON.stringify(config)], [...nodeArgs, ...(o.nodeArgs ?? [])]);
  try {
    const ready = await child.next<ServerReady>('ready', o.readyTimeoutMs);
    return new RunningSystem(name, child, ready, performance.now() - t0, performance.timeOrigin + t0);
  } catch (e) {
    child.kill();
    throw e;
  }
}
