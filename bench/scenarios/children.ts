// Child processes of a run: forked with an IPC channel, registered so that every one of them is
// killed when the orchestrator stops for any reason (end, SIGINT/SIGTERM, uncaught exception), and
// read through bounded waits only (every wait has a timeout).
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorText } from '../loadgen/common.js';

const live = new Set<Child>();

/** Absolute path of a compiled bench script, e.g. 'loadgen/clients.js' -> dist/bench/loadgen/clients.js. */
export function benchScript(rel: string): string {
  return fileURLToPath(new URL('../' + rel, import.meta.url));
}

export type Message = { type: string } & Record<string, unknown>;

export class Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly listeners = new Set<(m: Message) => void>();
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private stderrTail = '';
  private stdoutTail = '';
  readonly startedAt = performance.now();

  constructor(
    readonly name: string,
    script: string,
    args: string[],
    nodeArgs: string[] = [],
    /** How much of the end of stdout is kept (kernel benches print their JSON line last). */
    private readonly stdoutKeep = 4_000,
  ) {
    this.proc = fork(script, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: nodeArgs, serialization: 'json' });
    live.add(this);
    // Both pipes are always drained: a child blocked on a full stdout pipe would stall the run.
    this.proc.stdout?.on('data', (d: Buffer) => (this.stdoutTail = (this.stdoutTail + d.toString()).slice(-this.stdoutKeep)));
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderrTail = (this.stderrTail + d.toString()).slice(-4000)));
    this.proc.on('message', (m: Message) => {
      for (const l of [...this.listeners]) l(m);
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        for (const l of [...this.listeners]) l({ type: '__exit' });
        resolve({ code, signal });
      });
      this.proc.on('error', (e) => {
        this.stderrTail += `\n${errorText(e)}`;
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  stdout(): string {
    return this.stdoutTail;
  }

  /**
   * What the child printed last on stderr, from its last error line on when there is one (a stack's
   * message comes before its frames, and the frames alone say little).
   */
  tail(): string {
    const lines = (this.stderrTail.trim() || this.stdoutTail.trim()).split('\n');
    let at = -1;
    for (let i = lines.length - 1; i >= 0 && at < 0; i--) if (/(^|\s)(\w*Error|error)[:\s]/.test(lines[i]) && !/^\s+at /.test(lines[i])) at = i;
    return (at >= 0 ? lines.slice(at, at + 6) : lines.slice(-8)).join('\n');
  }

  on(listener: (m: Message) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  send(m: object): void {
    if (this.alive && this.proc.connected) this.proc.send(m);
  }

  /** The next message of `type`; rejects on the child's error message, its exit, or the timeout. */
  next<T>(type: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.alive) {
        reject(new Error(`${this.name} exited (${JSON.stringify(this.exitInfo)}) before '${type}': ${this.tail()}`));
        return;
      }
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms${this.tail() ? `: ${this.tail()}` : ''}`));
      }, timeoutMs);
      const off = this.on((m) => {
        if (m.type === type) {
          clearTimeout(timer);
          off();
          resolve(m as T);
        } else if (m.type === 'error' || m.type === '__exit') {
          clearTimeout(timer);
          off();
          const why = m.type === 'error' ? String(m.message) : `exited ${JSON.stringify(this.exitInfo)}`;
          reject(new Error(`${this.name}: ${why}${m.type === '__exit' && this.tail() ? `: ${this.tail()}` : ''}`));
        }
      });
    });
  }

  /** Asks the child to stop (message, then SIGTERM), SIGKILL after graceMs. Resolves with how it ended. */
  async stop(graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.alive) return this.exited;
    this.send({ type: 'stop' });
    const t = setTimeout(() => this.proc.kill('SIGTERM'), Math.min(graceMs / 2, 3_000));
    const k = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    const how = await this.exited;
    clearTimeout(t);
    clearTimeout(k);
    return how;
  }

  kill(): void {
    if (this.alive) this.proc.kill('SIGKILL');
  }
}

/** Kills every child still running (synchronous: usable from 'exit' handlers). */
export function killAll(): void {
  for (const c of live) c.kill();
}

const tempDirs = new Set<string>();

/** A temporary directory (data dirs, journals) removed by removeTempDir or, at the latest, on exit. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  tempDirs.delete(dir);
}

function removeAllTempDirs(): void {
  for (const d of [...tempDirs]) {
    try {
      removeTempDir(d);
    } catch {
      /* best effort on the way out */
    }
  }
}

export function liveChildren(): number {
  return live.size;
}

let installed = false;

/** Kill the children on every way out of the orchestrator. */
export function installCleanup(onSignal: (signal: string) => void): void {
  if (installed) return;
  installed = true;
  // Children first (they hold the data dirs open), then the directories.
  process.on('exit', () => {
    killAll();
    removeAllTempDirs();
  });
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(s, () => {
      killAll();
      onSignal(s);
      process.exit(130);
    });
  }
  process.on('uncaughtException', (e) => {
    killAll();
    console.error(errorText(e));
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    killAll();
    console.error(errorText(e));
    process.exit(1);
  });
}

/** CPU seconds (all threads) and RSS of a process, read from /proc: works even when its event loop is busy. */
export interface ProcSample {
  t: number;
  cpuSeconds: number;
  rssBytes: number;
}

let clockTicks = 100;

export function setClockTicks(hz: number): void {
  if (hz > 0) clockTicks = hz;
}

export async function procSample(pid: number): Promise<ProcSample | null> {
  const { readFile } = await import('node:fs/promises');
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15, rss 24.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(f[11]);
    const stime = Number(f[12]);
    const rssPages = Number(f[21]);
    return { t: performance.now(), cpuSeconds: (utime + stime) / clockTicks, rssBytes: rssPages * 4096 };
  } catch {
    return null;
  }
}
