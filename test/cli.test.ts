// Proves the command line: `mtm --help` documents every option, bad options are refused with a clear
// message, and `mtm serve` shuts down cleanly on SIGINT and SIGTERM (exit 0, workers ended, no hang);
// and that an in-process engine closes cleanly: workers gone, later calls answered engine_closed.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine.js';
import { envName, optionTable } from '../src/cli/options.js';
import { ensureBuilt, tempDir } from './support/engine.js';

const cli = join(import.meta.dirname, '..', 'dist/src/cli/main.js');

beforeAll(() => ensureBuilt());

function run(args: string[], env: NodeJS.ProcessEnv = {}): { done: Promise<{ code: number | null; out: string }>; child: ReturnType<typeof spawn> } {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const done = new Promise<{ code: number | null; out: string }>((resolve) => child.on('exit', (code) => resolve({ code, out })));
  return { done, child };
}

async function waitFor(get: () => string, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const started = Date.now();
  for (;;) {
    const m = get().match(pattern);
    if (m !== null) return m;
    if (Date.now() - started > timeoutMs) throw new Error(`no ${pattern} within ${timeoutMs} ms in: ${get()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('mtm command line', () => {
  it('--help documents every option and its environment variable', async () => {
    const { done } = run(['--help']);
    const { code, out } = await done;
    expect(code).toBe(0);
    for (const spec of optionTable) expect(out).toContain(`--${spec.name}`), expect(out).toContain(envName(spec.name));
  });

  it('refuses unknown options and bad values with a clear message', async () => {
    const a = await run(['serve', '--bogus']).done;
    expect(a.code).toBe(2);
    expect(a.out).toContain("unknown option '--bogus'");
    const b = await run(['serve', '--kernel', 'gpu']).done;
    expect(b.code).toBe(2);
    expect(b.out).toContain('--kernel must be wasm or js');
    const c = await run(['serve'], { MTM_PORT: 'eighty' }).done;
    expect(c.code).toBe(2);
    expect(c.out).toContain('MTM_PORT');
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`serve exits 0 on ${signal} after flushing and closing workers`, async () => {
      const dir = tempDir();
      try {
        let out = '';
        const r = run(['serve', '--port', '0', '--data', dir.path, '--workers', '2']);
        r.child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
        const [, url] = await waitFor(() => out, /listening on (http:\/\/[0-9.:]+)/);
        const health = await fetch(`${url}/health`);
        expect(health.status).toBe(200);
        r.child.kill(signal);
        const { code } = await r.done;
        expect(code).toBe(0);
        expect(out).toContain('stopped cleanly');
      } finally {
        dir.remove();
      }
    });
  }
});

describe('in-process engine shutdown', () => {
  it('ends its workers and answers engine_closed afterwards', async () => {
    const dir = tempDir();
    const engine = await createEngine({ dataDir: dir.path, workers: 2 });
    expect(engine.threads).toBe(2);
    await engine.createPortfolio({ id: 'z', cash: 1 });
    await engine.close();
    expect(engine.threads).toBe(0);
    const r = await engine.trade('z', { trade_id: 'a', symbol: 'A', side: 'buy', quantity: 1, price: 1 });
    expect(!r.ok && r.error.code).toBe('engine_closed');
    expect(engine.ingestTick('A', 1, 1)).toBe('engine_closed');
    await engine.close();
    dir.remove();
  });
});
