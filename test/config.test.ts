// Proves the operator's configuration (issue 18 item 5), through the real CLI (dist/src/cli/main.js):
// - `mtm --help` and `mtm serve --help` list every option of the table with its environment variable,
//   default and unit;
// - `mtm config` prints every option once with its effective value and where it came from, and the
//   precedence is flag > environment > config file > default (relative paths in the file are resolved
//   against the file's directory); MTM_* variables that name no option are ignored, with a warning when
//   one is a typo away from an option;
// - an unknown flag or config file key, and a bad value from a flag, the environment or the file, are
//   refused at start (exit 2) naming the option, where it came from and the rule; cross-field rules of
//   the server are refused the same way;
// - `mtm serve --config FILE` really applies the file: engine, server and market limits and the keys
//   file take effect on a running server;
// and, in process, that every option of the table reaches a field its component reads, and that every
// limit the engine, store, server and market service define has an option.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { componentOptions, resolveConfig, type Config } from '../src/cli/config.js';
import { clusterDefaults } from '../src/cluster/node.js';
import { defaultShown, envName, optionTable, type OptionEntry } from '../src/cli/options.js';
import { defaultLimits as engineLimitsDefault, resolveOptions as resolveEngineOptions } from '../src/engine/options.js';
import { marketServiceLimitsDefault } from '../src/market/service.js';
import { defaultLimits as serverLimitsDefault, resolveOptions as resolveServerOptions } from '../src/server/options.js';
import { storeDefaults } from '../src/store/store.js';
import { ensureBuilt, tempDir } from './support/engine.js';
import { TestSocket, http, isType } from './support/serverHarness.js';

const cli = join(import.meta.dirname, '..', 'dist/src/cli/main.js');

/** Environment without any MTM_* variable of the developer's shell. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MTM_')) env[k] = v;
  return { ...env, ...extra };
}

function run(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const child = spawn(process.execPath, [cli, ...args], { env: cleanEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const done = new Promise<{ code: number | null; out: string }>((resolve) => child.on('exit', (code) => resolve({ code, out })));
  return { child, done, output: () => out };
}

/** `mtm config` lines as name -> [value, source]. */
function parseConfig(out: string): Map<string, { value: string; source: string }> {
  const rows = new Map<string, { value: string; source: string }>();
  for (const line of out.split('\n').filter((l) => l.length > 0 && !l.startsWith('#'))) {
    const [name, value, source] = line.split(/ {2,}/);
    expect(rows.has(name), `${name} printed twice`).toBe(false);
    rows.set(name, { value, source });
  }
  return rows;
}

let dir: { path: string; remove(): void };
beforeAll(() => {
  ensureBuilt();
  dir = tempDir('mtm-config-');
});
afterAll(() => dir.remove());

describe('mtm --help', () => {
  for (const args of [['--help'], ['serve', '--help'], ['config', '--help']]) {
    it(`${args.join(' ')} lists every option with its environment variable, default and unit`, async () => {
      const { code, out } = await run(args).done;
      expect(code).toBe(0);
      const lines = out.split('\n');
      for (const o of optionTable) {
        const at = lines.findIndex((l) => new RegExp(`^\\s+--${o.name}(\\s|$)`).test(l));
        expect(at, `--${o.name} listed`).toBeGreaterThanOrEqual(0);
        expect(lines[at], `--${o.name} env`).toContain(envName(o.name));
        expect(lines[at + 1], `--${o.name} default and unit`).toContain(`(default: ${defaultShown(o)})`);
        if (o.unit !== '' && o.default !== null) expect(defaultShown(o)).toContain(o.unit);
      }
      expect(out).toContain('--config');
      expect(out).toContain('Precedence: flag > environment > config file > default');
    });
  }
});

describe('mtm config', () => {
  it('prints every option once with its value and where it came from: flag > env > file > default', async () => {
    const sub = join(dir.path, 'etc');
    mkdirSync(sub, { recursive: true });
    const file = join(sub, 'mtm.json');
    writeFileSync(file, JSON.stringify({ port: 9001, data: 'state', 'connections-max': 5, 'stale-after-ms': 1000, sync: true, kernel: 'js', 'market-ring-ticks-max': 1024 }));
    const { code, out } = await run(['config', '--config', file, '--port', '9003', '--sync=false', '--commands-per-second=50'], {
      MTM_PORT: '9002',
      MTM_CONNECTIONS_MAX: '7',
      MTM_SUSPECT_MOVE_PCT: '12.5',
    }).done;
    expect(code, out).toBe(0);
    expect(out.split('\n')[0]).toContain(`config file ${file}`);
    const rows = parseConfig(out);
    expect([...rows.keys()]).toEqual(optionTable.map((o) => o.name));
    expect(rows.get('port')).toEqual({ value: '9003', source: 'flag --port' });
    expect(rows.get('connections-max')).toEqual({ value: '7 connections', source: 'env MTM_CONNECTIONS_MAX' });
    expect(rows.get('suspect-move-pct')).toEqual({ value: '12.5 %', source: 'env MTM_SUSPECT_MOVE_PCT' });
    expect(rows.get('stale-after-ms')).toEqual({ value: '1000 ms', source: `file ${file}` });
    expect(rows.get('data')).toEqual({ value: join(sub, 'state'), source: `file ${file}` });
    expect(rows.get('sync')).toEqual({ value: 'false', source: 'flag --sync' });
    expect(rows.get('kernel')).toEqual({ value: 'js', source: `file ${file}` });
    expect(rows.get('commands-per-second')).toEqual({ value: '50 commands/s', source: 'flag --commands-per-second' });
    expect(rows.get('market-ring-ticks-max')).toEqual({ value: '1024 ticks', source: `file ${file}` });
    expect(rows.get('host')).toEqual({ value: '127.0.0.1', source: 'default' });
    expect(rows.get('keys')).toEqual({ value: 'none', source: 'default' });
  });

  it('takes the file from MTM_CONFIG, and a relative --config from the working directory', async () => {
    writeFileSync(join(dir.path, 'by-env.json'), JSON.stringify({ 'snapshot-interval-ms': 5000 }));
    const a = await run(['config'], { MTM_CONFIG: join(dir.path, 'by-env.json') }).done;
    expect(parseConfig(a.out).get('snapshot-interval-ms')).toEqual({ value: '5000 ms', source: `file ${join(dir.path, 'by-env.json')}` });
    const b = await run(['config', '--config', 'by-env.json', '--snapshot-interval-ms', '7000'], {}, dir.path).done;
    expect(parseConfig(b.out).get('snapshot-interval-ms')).toEqual({ value: '7000 ms', source: 'flag --snapshot-interval-ms' });
  });

  it('ignores MTM_* variables that name no option, and warns about the ones a typo away from one', async () => {
    const { code, out } = await run(['config'], { MTM_PROT: '80', MTM_SIM_SEEDS: '1,2' }).done;
    expect(code).toBe(0);
    expect(out).toContain('# warning: MTM_PROT is not an mtm option and is ignored (did you mean MTM_PORT?)');
    expect(out).not.toContain('MTM_SIM_SEEDS');
    expect(parseConfig(out).get('port')).toEqual({ value: '8080', source: 'default' });
  });

  it('with nothing set, every value is the default', async () => {
    const { code, out } = await run(['config']).done;
    expect(code).toBe(0);
    expect(out.split('\n')[0]).toContain('(no config file)');
    for (const [name, row] of parseConfig(out)) expect(row.source, name).toBe('default');
  });
});

describe('refused at start, naming the option and the rule', () => {
  const cases: { what: string; args: (file: string) => string[]; env?: Record<string, string>; file?: unknown; says: string[] }[] = [
    { what: 'an unknown flag', args: () => ['serve', '--prot', '80'], says: ["unknown option '--prot'", 'did you mean --port?'] },
    { what: 'an unknown config file key', args: (f) => ['serve', '--config', f], file: { prot: 80 }, says: ['unknown key "prot"', 'did you mean port?'] },
    { what: 'a config file that is not an object', args: (f) => ['config', '--config', f], file: [1, 2], says: ['must be a JSON object'] },
    { what: 'a missing config file', args: () => ['serve', '--config', '/nonexistent/mtm.json'], says: ['config file /nonexistent/mtm.json: cannot be read'] },
    { what: 'text for a number in the file', args: (f) => ['serve', '--config', f], file: { port: 'eighty' }, says: ['"port"', '--port must be a whole number from 0 to 65535', "got 'eighty'"] },
    { what: 'text for a switch in the file', args: (f) => ['config', '--config', f], file: { sync: 'yes' }, says: ['"sync"', '--sync must be true or false'] },
    { what: 'a fraction for a whole number', args: () => ['config', '--connections-max', '2.5'], says: ['--connections-max must be a whole number of connections >= 1', "got '2.5'"] },
    { what: 'zero for a limit, from the environment', args: () => ['serve'], env: { MTM_COMMANDS_PER_SECOND: '0' }, says: ['MTM_COMMANDS_PER_SECOND', '--commands-per-second must be a whole number of commands/s >= 1', "got '0'"] },
    { what: 'a bad switch value from the environment', args: () => ['config'], env: { MTM_DEMO: 'yes' }, says: ['MTM_DEMO', '--demo must be true or false'] },
    { what: 'an unknown kernel', args: () => ['serve', '--kernel', 'gpu'], says: ['--kernel must be wasm or js'] },
    { what: 'a ring that is not a power of two', args: () => ['config', '--market-ring-ticks-max', '1000'], says: ['--market-ring-ticks-max must be a whole number of ticks from 2 to 268435456, a power of two', "got '1000'"] },
    { what: 'a timer longer than setTimeout takes', args: () => ['config', '--snapshot-interval-ms', '3000000000'], says: ['--snapshot-interval-ms must be a whole number of ms from 1 to 2147483647'] },
    {
      what: 'a soft backpressure bound above the hard one',
      args: (f) => ['serve', '--config', f],
      file: { 'backpressure-soft-bytes': 8_000_000 },
      says: ['--backpressure-soft-bytes must be below --backpressure-bytes-max', '--backpressure-soft-bytes from file'],
    },
    { what: 'a flag without its value', args: () => ['config', '--port'], says: ['--port needs a value'] },
  ];
  for (const c of cases) {
    it(c.what, async () => {
      const file = join(dir.path, `bad-${c.what.replace(/\W+/g, '-')}.json`);
      if (c.file !== undefined) writeFileSync(file, JSON.stringify(c.file));
      const { code, out } = await run([...c.args(file), '--data', join(dir.path, 'never')], c.env).done;
      expect(code, out).toBe(2);
      for (const s of c.says) expect(out).toContain(s);
      expect(out).not.toContain('listening');
    });
  }
});

describe('mtm serve --config FILE', () => {
  it('applies engine, server and market limits and the keys file from the file, env and flags', async () => {
    const keys = join(dir.path, 'keys.json');
    writeFileSync(keys, JSON.stringify([{ key: 'k-admin-0123456789', name: 'ops', scopes: ['admin', 'read:*', 'trade:*'] }]));
    const file = join(dir.path, 'serve.json');
    writeFileSync(
      file,
      JSON.stringify({ port: 0, data: 'serve-data', workers: 1, keys: 'keys.json', 'portfolios-max': 2, 'subscriptions-per-connection-max': 2, 'stats-interval-ms': 0 }),
    );
    const r = run(['serve', '--config', file, '--body-bytes-max', '2048'], { MTM_MARKET_BARS_PER_QUERY_MAX: '10' });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not listening within 30 s:\n${r.output()}`)), 30_000);
        r.child.stdout?.on('data', () => {
          const m = r.output().match(/listening on (http:\/\/[0-9.:]+)/);
          if (m !== null) resolve(m[1]), clearTimeout(timer);
        });
        void r.done.then(({ out }) => reject(new Error(`exited early:\n${out}`)));
      });
      expect(r.output()).toContain(`data ${join(dir.path, 'serve-data')}`);
      const key = 'k-admin-0123456789';
      // keys (file, relative to it): no key, no answer.
      expect((await http(url, 'GET', '/api/v1/portfolios')).status).toBe(401);
      // portfolios-max (file): the third create is refused.
      for (const id of ['a', 'b']) expect((await http(url, 'POST', '/api/v1/portfolios', { id, cash: 1000 }, key)).status).toBe(201);
      const third = await http(url, 'POST', '/api/v1/portfolios', { id: 'c', cash: 1000 }, key);
      expect(third.body?.error?.code).toBe('limit_exceeded');
      // body-bytes-max (flag): a 3 KB body is too large.
      expect((await http(url, 'POST', '/api/v1/portfolios', { id: 'd', name: 'x'.repeat(3000), cash: 1 }, key)).status).toBe(413);
      // subscriptions-per-connection-max (file): three portfolios in one subscribe are refused.
      const ws = await TestSocket.open(url.replace('http', 'ws') + '/ws', { key });
      ws.send({ op: 'subscribe', portfolios: ['a', 'b', 'c'] });
      const refused = await ws.next(isType('error'));
      expect(refused.code).toBe('limit_exceeded');
      await ws.close();
      // market-bars-per-query-max (env): a span of more than 10 one-minute bars is refused.
      const bars = await http(url, 'GET', `/api/v1/bars/AAA?tf=1m&from=0&to=${60_000 * 20}`, undefined, key);
      expect(bars.status, bars.text).toBe(400);
      expect((await http(url, 'GET', `/api/v1/bars/AAA?tf=1m&from=0&to=${60_000 * 5}`, undefined, key)).status).toBe(200);
    } finally {
      r.child.kill('SIGTERM');
      const { code } = await r.done;
      expect(code).toBe(0);
    }
  }, 60_000);
});

describe('the option table', () => {
  /** A config with every option set away from its default (through resolveConfig, as the CLI does). */
  function everythingSet(): Config {
    const argv: string[] = [];
    for (const o of optionTable) {
      const k = o.kind;
      if (k.type === 'int') argv.push(`--${o.name}=${k.rule === undefined ? Math.min(k.max, Math.max(k.min, Number(o.default ?? 0)) + 3) : 1 << 10}`);
      else if (k.type === 'number') argv.push(`--${o.name}=${Number(o.default) + 0.5}`);
      else if (k.type === 'bool') argv.push(`--${o.name}=${String(o.default !== true)}`);
      else if (k.type === 'enum') argv.push(`--${o.name}=${k.values.find((v) => v !== o.default) ?? k.values[0]}`);
      else argv.push(`--${o.name}=/x/${o.name}`);
    }
    const r = resolveConfig({ argv, env: {} });
    if (!r.ok) throw new Error(r.message);
    return r.config;
  }

  function at(object: unknown, path: string): unknown {
    return path.split('.').reduce<unknown>((node, part) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), object);
  }

  const pick = (component: OptionEntry['component']) => optionTable.filter((o) => o.component === component);

  it('names options in kebab case with the unit last, and derives unique environment variables', () => {
    const names = optionTable.map((o) => o.name);
    expect(new Set(names).size).toBe(names.length);
    for (const o of optionTable) {
      expect(o.name).toMatch(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
      const suffix: Record<string, RegExp> = { ms: /-ms$/, bytes: /-bytes(-max)?$/, s: /-seconds$/, MB: /-mb$/, '%': /-pct$/ };
      if (suffix[o.unit] !== undefined) expect(o.name, `${o.name} ends with its unit`).toMatch(suffix[o.unit]);
      expect(o.help.length, o.name).toBeGreaterThan(10);
    }
  });

  it('every engine option reaches the engine: resolveOptions reads each at its key', () => {
    const config = everythingSet();
    const resolved = resolveEngineOptions(componentOptions(config, 'engine'));
    for (const o of pick('engine')) {
      const set = config.settings.find((s) => s.option === o)!.value;
      expect(at(resolved, o.key), o.name).toBe(set);
    }
  });

  it('every server option reaches the server: resolveOptions reads each at its key', () => {
    const config = everythingSet();
    const options = componentOptions(config, 'server');
    const r = resolveServerOptions({ ...options, port: 0, insecure: true } as Parameters<typeof resolveServerOptions>[0]);
    // everythingSet raises the soft bound by as much as the hard one, so the server's own cross-field rules hold.
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    for (const o of pick('server').filter((x) => !['port', 'insecure', 'keys'].includes(x.name))) {
      const set = config.settings.find((s) => s.option === o)!.value;
      expect(at(r.ok && r.value, o.key), o.name).toBe(set);
    }
    // keysFile is read by startServer, not resolveOptions: the serve test above proves it.
    expect(options.keysFile).toBe('/x/keys');
  });

  it('every store and market option names a field of its component', () => {
    for (const o of pick('store')) expect(Object.keys(storeDefaults), o.name).toContain(o.key);
    for (const o of pick('market').filter((x) => x.name !== 'alerts')) expect(Object.keys(marketServiceLimitsDefault), o.name).toContain(o.key.replace(/^limits\./, ''));
    // --nats and --node-id have no default (ClusterOptions.nats, .nodeId); every other cluster option is a default of ClusterNode.
    for (const o of pick('cluster').filter((x) => !['nats', 'node-id'].includes(x.name))) expect(Object.keys(clusterDefaults), o.name).toContain(o.key);
  });

  it('every limit the components define has an option', () => {
    const keys = new Set(optionTable.map((o) => `${o.component}:${o.key}`));
    for (const k of Object.keys(serverLimitsDefault)) expect(keys, `server ${k}`).toContain(`server:limits.${k}`);
    for (const k of Object.keys(engineLimitsDefault)) expect(keys, `engine ${k}`).toContain(`engine:limits.${k}`);
    for (const k of Object.keys(marketServiceLimitsDefault)) expect(keys, `market ${k}`).toContain(`market:limits.${k}`);
    for (const k of Object.keys(clusterDefaults)) expect(keys, `cluster ${k}`).toContain(`cluster:${k}`);
    // queryLimitDefault/Max bound the in-process queryEvents API; the server's --page-limit-max bounds it on the network.
    for (const k of Object.keys(storeDefaults).filter((x) => !x.startsWith('queryLimit'))) expect(keys, `store ${k}`).toContain(`store:${k}`);
    // allowFaultInjection enables the in-process crashShard() for tests; no operator switch turns it on.
    const engineOptions = Object.keys(resolveEngineOptions({})).filter((k) => !['limits', 'allowFaultInjection'].includes(k));
    for (const k of engineOptions) expect(keys, `engine ${k}`).toContain(`engine:${k}`);
  });
});
