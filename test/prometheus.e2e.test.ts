// Proves, against a real Prometheus scraping a real engine under the demo load (the wiring of
// `mtm serve --demo`, with small sizes), that what ops will look at works:
// - Prometheus scrapes the engine as job="mtm-engine" (target up) and loads dashboards/prometheus/
//   recording.yaml and alerts.yaml with every rule healthy;
// - every dashboard panel query (Grafana variables substituted) is valid PromQL and returns at least one
//   series, so no panel is empty on a running engine;
// - every recording and alerting rule expression is valid PromQL;
// - `promtool check metrics` on a live scrape reports nothing.
// Besides the demo, a little side traffic runs all along, so that the panels filtered with `> 0`
// (tick rejections, failed commands) have something to show: bad ticks over HTTP and the feed, refused
// cash withdrawals, a subscribed client.
// Skipped, loudly, only when prometheus or promtool is not installed (CI installs both with apt-get).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { loadUws } from '../src/server/uws.js';
import { startObservability, type Observability } from '../src/server/observability.js';
import { initialPrices, runDemo, seedDemoBook, type DemoOptions, type RunningDemo } from '../src/demo/demo.js';
import { seeded } from '../src/sim/random.js';
import { projectRoot } from '../src/projectRoot.js';
import { engineJob, grafanaSubstitution, listPanelQueries, listRuleExpressions } from '../dashboards/src/index.js';
import { TestSocket, http, isType, sleep } from './support/serverHarness.js';
import { freePort } from './support/ports.js';

const installed = (bin: string): boolean => spawnSync(bin, ['--version'], { encoding: 'utf8' }).status === 0;
const hasPrometheus = installed('prometheus') && installed('promtool');
if (!hasPrometheus) {
  console.warn(
    '\n************************************************************************\n' +
      '* SKIPPED: prometheus not installed; CI installs it via apt-get install prometheus\n' +
      '* (test/prometheus.e2e.test.ts: dashboard queries and rules against a real Prometheus)\n' +
      '************************************************************************\n',
  );
}

const demoOptions: DemoOptions = { portfolios: 60, positionsPerPortfolio: 5, symbols: 40, ticksPerSecond: 400, tradesPerSecond: 5, seed: 7 };
/** Prometheus scrapes and evaluates rules this often (a 1 s interval keeps the test short). */
const scrapeIntervalSeconds = 1;
/** Scrapes to wait for before querying: enough for every rate() over [1m] and every recording rule. */
const scrapesBeforeQueryMin = 6;
const prometheusReadyTimeoutMs = 30_000;
const scrapesTimeoutMs = 60_000;
const prometheusStopTimeoutMs = 10_000;
const sideTrafficIntervalMs = 250;

let engine: MtmEngine;
let obs: Observability;
let server: RunningServer;
let demo: RunningDemo | null = null;
let side: NodeJS.Timeout | null = null;
let client: TestSocket | null = null;
let feed: TestSocket | null = null;
let prometheus: ChildProcess | null = null;
let prometheusUrl = '';
let prometheusLog = '';
let dir = '';


async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (prometheus !== null && prometheus.exitCode !== null) throw new Error(`prometheus exited (${prometheus.exitCode}) while waiting for ${what}:\n${prometheusLog}`);
    try {
      if (await check()) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\nprometheus log:\n${prometheusLog.slice(-4000)}`);
    await sleep(250);
  }
}

interface QueryAnswer {
  status: string;
  error?: string;
  data?: { resultType: string; result: unknown[] | [number, string] };
}

async function query(expr: string): Promise<QueryAnswer> {
  const r = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  return (await r.json()) as QueryAnswer;
}

/** Series (vector/matrix) or 1 for a scalar/string answer. */
const seriesOf = (a: QueryAnswer): number =>
  a.data === undefined ? 0 : a.data.resultType === 'vector' || a.data.resultType === 'matrix' ? (a.data.result as unknown[]).length : 1;

beforeAll(async () => {
  if (!hasPrometheus) return;
  dir = mkdtempSync(join(tmpdir(), 'mtm-prometheus-e2e-'));
  engine = await createEngine({ workers: 2, dataDir: join(dir, 'engine') });
  obs = startObservability(engine, { uwsBinary: loadUws().binary, directTicks: 'demo' });
  server = await startServer(engine, { port: 0, log: null, limits: { commandsPerSecond: 100_000 }, ...obs.serverOptions });
  obs.attachServer(server);
  const random = seeded(demoOptions.seed);
  const prices = initialPrices(demoOptions.symbols, random);
  await seedDemoBook(engine, demoOptions, prices, random);
  demo = runDemo(engine, demoOptions, prices, () => Date.now());

  const wsUrl = server.url.replace('http', 'ws');
  client = await TestSocket.open(wsUrl + '/ws');
  client.send({ op: 'subscribe', portfolios: ['demo-00000', 'demo-00001', 'demo-00002'] });
  await client.next(isType('subscribed'));
  feed = await TestSocket.open(wsUrl + '/ws/feed');
  feed.send({ op: 'register', symbols: ['E2E'] });
  await feed.next(isType('registered'));
  let n = 0;
  side = setInterval(() => {
    n++;
    feed?.send({ op: 'ticks', ticks: [{ symbol: 'E2E', price: 100 + (n % 7), ts: Date.now() }, { symbol: 'E2E', price: -1, ts: Date.now() }] });
    void http(server.url, 'POST', '/api/v1/ticks', [{ symbol: 'E2E', price: 'x' }]).catch(() => undefined);
    void http(server.url, 'POST', '/api/v1/portfolios/demo-00003/cash', { type: 'withdraw', amount: 1e15 }).catch(() => undefined);
  }, sideTrafficIntervalMs);

  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  const promDir = join(projectRoot(), 'dashboards', 'prometheus');
  const target = new URL(server.url).host;
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      `  scrape_interval: ${scrapeIntervalSeconds}s`,
      `  scrape_timeout: ${scrapeIntervalSeconds}s`,
      `  evaluation_interval: ${scrapeIntervalSeconds}s`,
      'rule_files:',
      `  - ${JSON.stringify(join(promDir, 'recording.yaml'))}`,
      `  - ${JSON.stringify(join(promDir, 'alerts.yaml'))}`,
      'scrape_configs:',
      `  - job_name: ${engineJob}`,
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: [${JSON.stringify(target)}]`,
      '',
    ].join('\n'),
  );
  const check = spawnSync('promtool', ['check', 'config', config], { encoding: 'utf8' });
  expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  prometheus = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  prometheus.stdout?.on('data', (d: Buffer) => (prometheusLog += d.toString()));
  prometheus.stderr?.on('data', (d: Buffer) => (prometheusLog += d.toString()));
  await waitFor('prometheus /-/ready', prometheusReadyTimeoutMs, async () => (await fetch(`${prometheusUrl}/-/ready`)).status === 200);
  await waitFor(`${scrapesBeforeQueryMin} scrapes and a recorded series`, scrapesTimeoutMs, async () => {
    const scrapes = await query(`count_over_time(up{job="${engineJob}"}[5m])`);
    const recorded = await query(`count(mtm:trade_ack_seconds:p99_1m{job="${engineJob}"})`);
    const done = (scrapes.data?.result as { value: [number, string] }[] | undefined)?.[0]?.value[1];
    return Number(done ?? 0) >= scrapesBeforeQueryMin && seriesOf(recorded) > 0;
  });
}, 120_000);

afterAll(async () => {
  if (side !== null) clearInterval(side);
  demo?.stop();
  if (prometheus !== null && prometheus.exitCode === null) {
    const p = prometheus;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), prometheusStopTimeoutMs);
    await Promise.race([exited, sleep(2 * prometheusStopTimeoutMs)]);
    clearTimeout(timer);
  }
  await client?.close().catch(() => undefined);
  await feed?.close().catch(() => undefined);
  await server?.close();
  obs?.close();
  await engine?.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('a real Prometheus scraping the engine', () => {
  it.skipIf(!hasPrometheus)('scrapes the engine as job="mtm-engine" and loads every rule healthy', async () => {
    const targets = (await (await fetch(`${prometheusUrl}/api/v1/targets`)).json()) as { data: { activeTargets: { labels: { job: string }; health: string; lastError: string }[] } };
    const engineTargets = targets.data.activeTargets.filter((t) => t.labels.job === engineJob);
    expect(engineTargets).toHaveLength(1);
    expect(engineTargets[0].health, engineTargets[0].lastError).toBe('up');
    const rules = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as {
      data: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const loaded = rules.data.groups.flatMap((g) => g.rules.map((r) => ({ group: g.name, ...r })));
    expect(loaded.map((r) => r.name).sort()).toEqual(listRuleExpressions().map((r) => r.name).sort());
    const unhealthy = loaded.filter((r) => r.health !== 'ok').map((r) => `${r.group}/${r.name}: ${r.health} ${r.lastError ?? ''}`);
    expect(unhealthy).toEqual([]);
  });

  it.skipIf(!hasPrometheus)('answers every dashboard panel query with at least one series', async () => {
    const panels = listPanelQueries(grafanaSubstitution({ rateInterval: '1m' }));
    expect(panels.length).toBeGreaterThan(30);
    const problems: string[] = [];
    for (const p of panels) {
      const a = await query(p.expr);
      if (a.status !== 'success') problems.push(`${p.dashboard} / ${p.panel} (${p.refId}): invalid: ${a.error}\n  ${p.expr}`);
      else if (seriesOf(a) === 0) problems.push(`${p.dashboard} / ${p.panel} (${p.refId}): no series\n  ${p.expr}`);
    }
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it.skipIf(!hasPrometheus)('accepts every recording and alerting rule expression', async () => {
    const problems: string[] = [];
    for (const r of listRuleExpressions()) {
      const a = await query(r.expr);
      if (a.status !== 'success') problems.push(`${r.kind} ${r.name}: ${a.error}\n  ${r.expr}`);
    }
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it.skipIf(!hasPrometheus)('passes promtool check metrics on a live scrape', async () => {
    const text = await (await fetch(server.url + '/metrics')).text();
    expect(text).toContain('mtm_ticks_received_total{transport="demo",encoding="object"}');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });
});
