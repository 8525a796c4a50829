// Proves the package installs and runs the way users install it (issue 18 item 5): `npm pack`, then
// `npm install --omit=dev <tarball>` in an empty directory (dependencies from the npm registry, or the
// local npm cache), then `npx mtm serve --port 0` answers GET /ready and shuts down cleanly on SIGTERM.
// Also that the tarball ships what the package needs (the compiled engine, shard worker, WASM kernel,
// positions page, dashboards and rules) and nothing it does not (compiled tests, benches, the dashboard
// generator, TypeScript sources), that the entry points README shows import, and that no dev dependency
// is installed or needed.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, tempDir } from './support/engine.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
/** npm fetches the dependencies; slow under load or on a cold cache, hence the generous bound. */
const installTimeoutMs = 150_000;
const listeningTimeoutMs = 60_000;

let dir: { path: string; remove(): void };
let tarball = '';
let packed: string[] = [];
let app = '';
let server: ChildProcess | null = null;
let serverClosed: Promise<void> | null = null;
let output = '';

beforeAll(async () => {
  ensureBuilt();
  dir = tempDir('mtm-package-');
  // --ignore-scripts: prepack would rebuild; the tree was just built (ensureBuilt).
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir.path], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  const info = (JSON.parse(stdout) as { filename: string; files: { path: string }[] }[])[0];
  tarball = join(dir.path, info.filename);
  packed = info.files.map((f) => f.path);
  app = join(dir.path, 'app');
  mkdirSync(app);
  await run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: app, timeout: installTimeoutMs, maxBuffer: 16 * 1024 * 1024 });
}, installTimeoutMs + 30_000);

/** Signals npx and the mtm process it started: npx does not forward signals, a terminal or systemd signals the group. */
function signalGroup(signal: NodeJS.Signals): void {
  try {
    process.kill(-(server?.pid as number), signal);
  } catch {
    /* the group is gone */
  }
}

afterAll(async () => {
  if (server !== null) {
    signalGroup('SIGKILL');
    await serverClosed;
  }
  dir?.remove();
});

describe('the npm package', () => {
  it('ships the runtime and the operator files, not tests, benches or sources', () => {
    for (const needed of [
      'package.json',
      'README.md',
      'dist/src/cli/main.js',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/client/index.js',
      'dist/src/shard/worker.js',
      'dist/src/engine/shards/shardWorker.js',
      'dist/src/engine/shards/shardThread.cjs',
      'dist/src/market/worker.js',
      'dist/assembly/kernel.wasm',
      'dist/web/index.html',
      'dashboards/prometheus/alerts.yaml',
      'dashboards/prometheus/recording.yaml',
      'dashboards/grafana/mtm-overview.json',
      'dashboards/runbook.md',
    ]) {
      expect(packed, needed).toContain(needed);
    }
    const unwanted = packed.filter((p) => /^(dist\/(test|bench|dashboards)\/|test\/|bench\/|src\/|dashboards\/src\/|assembly\/)/.test(p) || p.endsWith('.ts') && !p.endsWith('.d.ts'));
    expect(unwanted).toEqual([]);
  });

  it('installs with --omit=dev: its dependencies only', () => {
    const modules = readdirSync(join(app, 'node_modules'));
    for (const dep of ['mtm-engine', 'lmdb', 'piscina', 'prom-client', 'uWebSockets.js', 'ws', 'xstate']) expect(modules, dep).toContain(dep);
    for (const dev of ['vitest', 'typescript', 'assemblyscript', 'esbuild', 'fast-check', 'decimal.js', '@grafana']) expect(modules, dev).not.toContain(dev);
    expect(existsSync(join(app, 'node_modules', '.bin', 'mtm'))).toBe(true);
  });

  it("imports as the README shows: 'mtm-engine' and 'mtm-engine/client'", async () => {
    const program = "import { createEngine, startServer, ErrorCode } from 'mtm-engine'; import { MtmClient } from 'mtm-engine/client'; console.log(typeof createEngine, typeof startServer, typeof MtmClient, ErrorCode.invalid_price);";
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', program], { cwd: app });
    expect(stdout.trim()).toBe('function function function invalid_price');
  });

  it('npx mtm --help lists the options', async () => {
    const { stdout } = await run('npx', ['--no-install', 'mtm', '--help'], { cwd: app });
    expect(stdout).toContain('Usage: mtm serve');
    expect(stdout).toContain('--connections-max');
  });

  it(
    'npx mtm serve --port 0 answers /ready and stops cleanly on SIGTERM to its process group',
    async () => {
      server = spawn('npx', ['--no-install', 'mtm', 'serve', '--port', '0', '--data', join(dir.path, 'data'), '--workers', '1', '--stats-interval-ms', '0'], {
        cwd: app,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      server.stdout?.on('data', (c: Buffer) => (output += c.toString()));
      server.stderr?.on('data', (c: Buffer) => (output += c.toString()));
      // 'close': every process holding the pipes (npx and mtm) has ended.
      serverClosed = new Promise<void>((resolve) => server!.once('close', () => resolve()));
      const started = Date.now();
      let url: string | null = null;
      while (url === null) {
        url = output.match(/listening on (http:\/\/[0-9.:]+)/)?.[1] ?? null;
        if (server.exitCode !== null || server.signalCode !== null) throw new Error(`mtm exited early (${server.exitCode}):\n${output}`);
        if (Date.now() - started > listeningTimeoutMs) throw new Error(`not listening within ${listeningTimeoutMs} ms:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const ready = await fetch(`${url}/ready`);
      expect(ready.status).toBe(200);
      expect(output).toContain('uWS native');
      signalGroup('SIGTERM');
      await serverClosed;
      expect(output).toContain('SIGTERM: shutting down');
      expect(output).toContain('stopped cleanly');
    },
    listeningTimeoutMs + 30_000,
  );
});
