// Real nats-server processes for the cluster tests, benches and the simulator: one `nats-server -js` on
// free loopback ports with its own store directory, or a three-server cluster on loopback (routes,
// server names, JetStream with replicas 3 available). Each server can be stopped (SIGTERM, graceful),
// killed (SIGKILL), restarted on the same ports and store directory, paused (SIGSTOP) and resumed
// (SIGCONT). Ready means the server's /healthz answers 200: for JetStream that is "meta leader known and
// every stream and consumer it holds is current", so a test never races a server that is still catching up.
//
// Nothing here imports vitest, so `bench/` and the simulator use it too. A test makes one NatsHarness,
// starts servers through it, and calls `cleanup()` in afterAll: every server it started is killed and its
// directory removed, whatever failed before. A process that dies without afterAll still kills its servers
// (the 'exit' handler below), so no nats-server outlives the run.
// When nats-server is not installed, `natsServerInstalled` is false and `warnNatsMissing(file)` prints a
// loud banner; CI installs it (.ci/run: apt-get install nats-server).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from './ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const natsServerBin = process.env.NATS_SERVER_BIN ?? 'nats-server';
export const natsServerInstalled = spawnSync(natsServerBin, ['--version'], { encoding: 'utf8' }).status === 0;

/** Prints, once per file, that the file's NATS tests are skipped and how CI gets nats-server. */
export function warnNatsMissing(file: string): void {
  if (natsServerInstalled) return;
  console.warn(
    '\n************************************************************************\n' +
      `* SKIPPED: nats-server not installed (${natsServerBin}); CI installs it via apt-get install nats-server\n` +
      `* (${file}: needs real nats-server processes)\n` +
      '************************************************************************\n',
  );
}

/** How long a start or restart may take before /healthz answers 200 (JetStream catch-up included). */
export const natsReadyTimeoutMs = 20_000;
/** How long a graceful stop may take before the process is killed. */
export const natsStopTimeoutMs = 10_000;
/** Last bytes of each server's log kept for failure messages (bounded, oldest dropped). */
export const natsLogBytesMax = 64 * 1024;
const readyPollMs = 50;
/** JetStream limits of each test server: small, so a runaway test fills a bounded store, not the disk. */
const jsMemoryBytesMax = 256 * 1024 * 1024;
const jsFileBytesMax = 2 * 1024 * 1024 * 1024;

/** Every nats-server child alive in this process, killed on exit if nobody stopped it. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export { freePort };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns true (exceptions count as false); throws with `what` after `timeoutMs`. */
export async function waitUntil(what: string, probe: () => boolean | Promise<boolean>, timeoutMs: number, pollMs = readyPollMs): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      if (await probe()) return;
    } catch (e) {
      lastError = ` (last error: ${(e as Error).message})`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}${lastError}`);
    await sleep(pollMs);
  }
}

export interface NatsServerPorts {
  readonly client: number;
  readonly monitor: number;
  /** The route port, for a cluster member. */
  readonly cluster?: number;
}

export interface NatsClusterConfig {
  readonly name: string;
  /** Route ports of every member (this one's included: nats-server ignores a route to itself). */
  readonly routePorts: readonly number[];
}

export type NatsServerState = 'new' | 'running' | 'paused' | 'stopped';

/** One nats-server process with fixed ports and store directory, across restarts. */
export class NatsServer {
  readonly url: string;
  readonly storeDir: string;
  private readonly configFile: string;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private logTail = '';
  private paused = false;
  /** Exit status of the last process, for failure messages. */
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly ports: NatsServerPorts,
    readonly clusterConfig: NatsClusterConfig | null = null,
  ) {
    this.url = `nats://127.0.0.1:${ports.client}`;
    this.storeDir = join(dir, 'jetstream');
    this.configFile = join(dir, 'nats.conf');
    mkdirSync(this.storeDir, { recursive: true });
    writeFileSync(this.configFile, this.config());
  }

  get state(): NatsServerState {
    if (this.child === null) return this.lastExit === null ? 'new' : 'stopped';
    return this.paused ? 'paused' : 'running';
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The last bytes the server logged (all its runs), for assertion messages. */
  get log(): string {
    return this.logTail;
  }

  /** Starts the process (again, after stop or kill: same ports, same store) and waits until it is ready. */
  async start(readyTimeoutMs = natsReadyTimeoutMs): Promise<void> {
    if (this.child !== null) throw new Error(`nats-server ${this.name} is already running (pid ${this.child.pid})`);
    this.spawnProcess();
    await this.waitReady(readyTimeoutMs);
  }

  /** Starts the process without waiting for /healthz (a cluster member cannot be ready alone). */
  spawnProcess(): void {
    const child = spawn(natsServerBin, ['-c', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.paused = false;
    live.add(child);
    const keep = (chunk: Buffer): void => {
      this.logTail += chunk.toString('utf8');
      if (this.logTail.length > natsLogBytesMax) this.logTail = this.logTail.slice(this.logTail.length - natsLogBytesMax);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        this.lastExit = { code, signal };
        if (this.child === child) {
          this.child = null;
          this.paused = false;
        }
        resolve();
      });
    });
    child.once('error', (e) => {
      this.logTail += `\nspawn error: ${e.message}\n`;
    });
  }

  /** Waits until /healthz answers 200 (JetStream current), or throws with the log tail. */
  async waitReady(timeoutMs = natsReadyTimeoutMs): Promise<void> {
    const child = this.child;
    if (child === null) throw new Error(`nats-server ${this.name} is not running`);
    try {
      await waitUntil(`nats-server ${this.name} is healthy`, async () => {
        if (this.child !== child) throw new Error(`exited ${JSON.stringify(this.lastExit)}`);
        const res = await fetch(`http://127.0.0.1:${this.ports.monitor}/healthz`);
        await res.arrayBuffer();
        return res.status === 200;
      }, timeoutMs);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- nats-server ${this.name} log tail ---\n${this.logTail.slice(-4000)}`);
    }
  }

  /** Graceful stop (SIGTERM: JetStream flushes), SIGKILL past `timeoutMs`. Resumes a paused server first. */
  async stop(timeoutMs = natsStopTimeoutMs): Promise<void> {
    const child = this.child;
    if (child === null) return;
    if (this.paused) this.resume();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** kill -9: no flush, no goodbye to the cluster. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** Stop (graceful unless `hard`) and start again on the same ports and store directory. */
  async restart(hard = false, readyTimeoutMs = natsReadyTimeoutMs): Promise<void> {
    if (hard) await this.kill();
    else await this.stop();
    await this.start(readyTimeoutMs);
  }

  /** SIGSTOP: the process stays, its sockets stay open, it answers nothing (a stalled or partitioned host). */
  pause(): void {
    if (this.child === null) throw new Error(`nats-server ${this.name} is not running`);
    this.child.kill('SIGSTOP');
    this.paused = true;
  }

  /** SIGCONT after pause(). */
  resume(): void {
    if (this.child === null) throw new Error(`nats-server ${this.name} is not running`);
    this.child.kill('SIGCONT');
    this.paused = false;
  }

  /** The monitoring endpoint's JSON (`varz`, `jsz?streams=true`, `routez`, ...). */
  async monitor(path: string): Promise<any> {
    const res = await fetch(`http://127.0.0.1:${this.ports.monitor}/${path}`);
    return res.json();
  }

  private config(): string {
    const lines = [
      `server_name: ${this.name}`,
      `listen: 127.0.0.1:${this.ports.client}`,
      `http: 127.0.0.1:${this.ports.monitor}`,
      `jetstream {`,
      `  store_dir: ${JSON.stringify(this.storeDir)}`,
      `  max_memory_store: ${jsMemoryBytesMax}`,
      `  max_file_store: ${jsFileBytesMax}`,
      `}`,
    ];
    const c = this.clusterConfig;
    if (c !== null && this.ports.cluster !== undefined) {
      lines.push(
        `cluster {`,
        `  name: ${c.name}`,
        `  listen: 127.0.0.1:${this.ports.cluster}`,
        `  routes: [${c.routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}]`,
        `}`,
      );
    }
    return lines.join('\n') + '\n';
  }
}

/** Three (or more) nats-servers routed into one JetStream cluster on loopback. */
export class NatsCluster {
  constructor(readonly servers: readonly NatsServer[]) {}

  /** Every member's client URL: give all of them to a client so it fails over. */
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  server(name: string): NatsServer {
    const s = this.servers.find((x) => x.name === name);
    if (s === undefined) throw new Error(`no nats-server named ${name} (have ${this.servers.map((x) => x.name).join(', ')})`);
    return s;
  }

  /** Starts every member together (routes need their peers) and waits until each is healthy. */
  async start(readyTimeoutMs = natsReadyTimeoutMs): Promise<void> {
    for (const s of this.servers) s.spawnProcess();
    await Promise.all(this.servers.map((s) => s.waitReady(readyTimeoutMs)));
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }

  async kill(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.kill()));
  }

  /** The member that leads `stream` now (from the monitoring endpoint of a running member), if any. */
  async streamLeader(stream: string): Promise<string | undefined> {
    for (const s of this.servers) {
      if (s.state !== 'running') continue;
      try {
        const jsz = await s.monitor('jsz?streams=true');
        for (const account of jsz.account_details ?? []) {
          for (const detail of account.stream_detail ?? []) {
            if (detail.name === stream && detail.cluster?.leader) return detail.cluster.leader as string;
          }
        }
      } catch {
        // this member is not answering; ask the next
      }
    }
    return undefined;
  }

  /** The JetStream meta leader as a running member sees it. */
  async metaLeader(): Promise<string | undefined> {
    for (const s of this.servers) {
      if (s.state !== 'running') continue;
      try {
        const jsz = await s.monitor('jsz');
        if (jsz.meta_cluster?.leader) return jsz.meta_cluster.leader as string;
      } catch {
        // ask the next
      }
    }
    return undefined;
  }
}

/**
 * What one test file (or bench run) started: `startServer()` / `startCluster()` register everything,
 * `cleanup()` (call it in afterAll) kills every server and removes every directory, even after a failure
 * half way through a start.
 */
export class NatsHarness {
  private readonly root: string;
  private readonly servers: NatsServer[] = [];
  private count = 0;

  constructor(label = 'nats') {
    this.root = mkdtempSync(join(tmpdir(), `mtm-${label.replace(/[^A-Za-z0-9_-]/g, '_')}-`));
  }

  /** This harness's temporary directory (removed by cleanup): room for the files of what runs beside the servers. */
  get rootDir(): string {
    return this.root;
  }

  /** One `nats-server -js` on free loopback ports with its own store directory, ready. */
  async startServer(name = `n${++this.count}`): Promise<NatsServer> {
    const server = new NatsServer(name, this.dirFor(name), { client: await freePort(), monitor: await freePort() });
    this.servers.push(server);
    await server.start();
    return server;
  }

  /** `size` servers (3 by default) routed as one cluster, JetStream on each (replicas up to `size`), ready. */
  async startCluster(size = 3, clusterName = 'mtm'): Promise<NatsCluster> {
    const cluster = await this.defineCluster(size, clusterName);
    await cluster.start();
    return cluster;
  }

  /** The same cluster, none of its members started (a test starts them one by one: spawnProcess). */
  async defineCluster(size = 3, clusterName = 'mtm'): Promise<NatsCluster> {
    const ports: NatsServerPorts[] = [];
    for (let i = 0; i < size; i++) ports.push({ client: await freePort(), monitor: await freePort(), cluster: await freePort() });
    const routePorts = ports.map((p) => p.cluster as number);
    const members: NatsServer[] = [];
    for (let i = 0; i < size; i++) {
      const name = `${clusterName}-${++this.count}`;
      const server = new NatsServer(name, this.dirFor(name), ports[i], { name: clusterName, routePorts });
      this.servers.push(server);
      members.push(server);
    }
    return new NatsCluster(members);
  }

  /** Kills every server this harness started (no graceful wait: the test is over) and removes the files. */
  async cleanup(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.kill()));
    rmSync(this.root, { recursive: true, force: true });
  }

  private dirFor(name: string): string {
    const dir = join(this.root, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  }
}
