// The simulator's side of the engine host process (bench/sim/host.ts, run from dist/): spawns it,
// sends requests with the simulated time and a deadline, routes what subscribers receive, and kills it
// with SIGKILL on demand. Every wait here is bounded: an engine that stops answering is a failure
// ("liveness"), never a hung simulation.

import { spawn, type ChildProcess } from 'node:child_process';
import type { EngineMessage } from '../../src/engine/api.js';
import { distFile } from '../../src/projectRoot.js';
import type { CallOutcome, HostMessage, HostRequest, StartOptions } from './protocol.js';

/** Kept from the host's stderr for failure reports. */
const stderrTailMax = 8_000;

export class HostError extends Error {
  override name = 'HostError';
}

interface Pending {
  op: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class EngineHost {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private stderrTail = '';
  private killedByUs = false;
  fatal: string | null = null;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  onSub: (sub: number, message: EngineMessage) => void = () => undefined;
  onStreamed: (id: number, index: number, outcome: CallOutcome) => void = () => undefined;

  private constructor(private readonly child: ChildProcess) {
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-stderrTailMax);
    });
    child.on('message', (raw) => this.onMessage(raw as HostMessage));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const why = this.killedByUs ? 'killed by the simulator' : `exited unexpectedly (code ${code}, signal ${signal})`;
        for (const [, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new HostError(`engine host ${why} during '${p.op}'${this.fatal !== null ? `: ${this.fatal}` : ''}\n${this.stderr()}`));
        }
        this.pending.clear();
        resolve({ code, signal });
      });
    });
  }

  /** Spawns a host and starts an engine in it (recovering whatever the data dir holds). */
  static async start(options: StartOptions, now: number, timeoutMs: number): Promise<EngineHost> {
    const child = spawn(process.execPath, [distFile('bench/sim/host.js')], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const host = new EngineHost(child);
    try {
      await host.request({ op: 'start', options }, now, timeoutMs);
    } catch (err) {
      await host.kill9();
      throw err;
    }
    return host;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  stderr(): string {
    return this.stderrTail.length === 0 ? '' : `host stderr (tail):\n${this.stderrTail}`;
  }

  request<T>(req: HostRequest, now: number, timeoutMs: number): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null || !this.child.connected) {
        reject(new HostError(`engine host is gone; cannot send '${req.op}'\n${this.stderr()}`));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HostError(`engine did not answer '${req.op}' within ${timeoutMs} ms (liveness)\n${this.stderr()}`));
      }, timeoutMs);
      this.pending.set(id, { op: req.op, resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ ...req, id, now });
    });
  }

  /** The id the next request will get (a 'stream' request reports its outcomes under it). */
  peekNextId(): number {
    return this.nextId;
  }

  /** SIGKILL, as an operator's kill -9: no cleanup of any kind runs in the engine. */
  async kill9(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.killedByUs = true;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  private onMessage(m: HostMessage): void {
    switch (m.kind) {
      case 'reply':
      case 'failed': {
        const p = this.pending.get(m.id);
        if (p === undefined) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.kind === 'reply') p.resolve(m.value);
        else p.reject(new HostError(`host failed '${p.op}': ${m.message}`));
        return;
      }
      case 'sub':
        this.onSub(m.sub, m.message);
        return;
      case 'streamed':
        this.onStreamed(m.id, m.index, m.outcome);
        return;
      case 'fatal':
        this.fatal = m.message;
        return;
    }
  }
}
