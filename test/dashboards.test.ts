// Proves that the observability-as-code files can be trusted:
// (a) the committed dashboards, rules, rule tests and metrics reference are exactly what the TypeScript
//     generates (someone who edits the code without `npm run dashboards` fails here);
// (b) every panel has a unit and a description, every query a refId and the ${datasource} variable,
//     and every range in a dashboard query is [$__rate_interval];
// (c) every metric a panel, rule or document names exists (mtm_* in the catalog, nodejs_*/process_* in
//     prom-client's default metrics, mtm:* recorded by a recording rule);
// (d) promtool accepts the rules and the example scrape config, and the alert unit tests pass (every
//     alert fires on one input and stays silent on a near miss);
// (e) the catalog, registered with prom-client and filled with values, passes `promtool check metrics`
//     with no finding, and merges across threads with the aggregator each metric declares.
// Also: the catalog's naming and label-cardinality conventions, thresholds on bucket boundaries, runbook
// anchors for every alert.
// promtool tests skip, loudly, only when the promtool binary is not installed.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { collectProcessMetrics, createMetrics, isCatalogMetric, metricCatalog, metricSpec } from '../src/metrics/catalog.js';
import {
  alertNames,
  alertRules,
  alertTests,
  dashboardSpecs,
  engineJob,
  generateFiles,
  grafanaSubstitution,
  histogramThresholds,
  listPanelQueries,
  listRuleExpressions,
  recordingRules,
} from '../dashboards/src/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const promDir = join(root, 'dashboards', 'prometheus');

const hasPromtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
if (!hasPromtool) {
  console.warn(
    '\n' +
      '************************************************************************\n' +
      '* SKIPPED: promtool not installed; CI installs it via apt-get install prometheus\n' +
      '* (promtool check rules / test rules / check config / check metrics)\n' +
      '************************************************************************\n',
  );
}

function promtool(args: string[], options: { cwd?: string; input?: string } = {}) {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd: options.cwd ?? promDir, input: options.input });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const generated = generateFiles();
const dashboardsJson = generated
  .filter((f) => f.path.startsWith('dashboards/grafana/'))
  .map((f) => ({ path: f.path, dashboard: JSON.parse(f.content) as GrafanaDashboard }));

interface GrafanaTarget {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface GrafanaPanel {
  id?: number;
  type: string;
  title?: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  fieldConfig?: { defaults?: { unit?: string } };
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: GrafanaTarget[];
}
interface GrafanaDashboard {
  uid: string;
  title: string;
  panels: GrafanaPanel[];
  templating: { list: { name: string; type: string; query?: unknown; datasource?: { uid?: string } }[] };
}

describe('(a) committed files are the generator output', () => {
  it.each(generated.map((f) => [f.path, f.content] as const))('%s is up to date', (path, content) => {
    const file = join(root, ...path.split('/'));
    expect(existsSync(file), `${path} is missing: run npm run dashboards`).toBe(true);
    expect(readFileSync(file, 'utf8'), `${path} differs from the generator output: run npm run dashboards`).toBe(content);
  });

  it('no dashboard JSON is left over from a removed dashboard', () => {
    const committed = readdirSync(join(root, 'dashboards', 'grafana')).filter((f) => f.endsWith('.json'));
    expect(committed.sort()).toEqual(dashboardsJson.map((d) => d.path.split('/').pop()).sort());
  });

  it('generation is deterministic and the JSON has sorted keys, 2-space indent and a trailing newline', () => {
    expect(generateFiles()).toEqual(generated);
    for (const f of generated.filter((g) => g.path.endsWith('.json'))) {
      expect(f.content.endsWith('}\n')).toBe(true);
      expect(f.content).toBe(JSON.stringify(JSON.parse(f.content), null, 2) + '\n');
      const keysSorted = (v: unknown): boolean =>
        Array.isArray(v)
          ? v.every(keysSorted)
          : v !== null && typeof v === 'object'
            ? Object.keys(v).join('\0') === Object.keys(v).sort().join('\0') && Object.values(v).every(keysSorted)
            : true;
      expect(keysSorted(JSON.parse(f.content)), f.path).toBe(true);
    }
  });
});

describe('(b) dashboard hygiene', () => {
  it('has the four dashboards with fixed uids', () => {
    expect(dashboardsJson.map((d) => d.dashboard.uid)).toEqual(['mtm-overview', 'mtm-latency', 'mtm-clients', 'mtm-engine-internals']);
  });

  for (const { path, dashboard } of dashboardsJson) {
    describe(path, () => {
      const panels = dashboard.panels.filter((p) => p.type !== 'row');

      it('declares the templated Prometheus datasource variable, used by every query variable', () => {
        const ds = dashboard.templating.list.find((v) => v.name === 'datasource');
        expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });
        for (const v of dashboard.templating.list.filter((v) => v.type === 'query')) expect(v.datasource?.uid, v.name).toBe('${datasource}');
      });

      it('gives every panel a unit, a description, the datasource variable and a unique id inside the grid', () => {
        expect(panels.length).toBeGreaterThan(0);
        const ids = dashboard.panels.map((p) => p.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const p of panels) {
          expect(p.description?.trim(), `${p.title}: description`).toBeTruthy();
          expect(p.fieldConfig?.defaults?.unit, `${p.title}: unit`).toBeTruthy();
          expect(p.datasource, `${p.title}: datasource`).toEqual({ type: 'prometheus', uid: '${datasource}' });
          expect(p.gridPos!.x + p.gridPos!.w, `${p.title}: grid`).toBeLessThanOrEqual(24);
        }
      });

      it('gives every query a unique refId and the datasource variable', () => {
        for (const p of panels) {
          const targets = p.targets ?? [];
          expect(targets.length, `${p.title}: queries`).toBeGreaterThan(0);
          const refIds = targets.map((t) => t.refId);
          expect(new Set(refIds).size, `${p.title}: refIds`).toBe(targets.length);
          for (const t of targets) {
            expect(t.refId, `${p.title}: refId`).toMatch(/^[A-Z]$/);
            expect(t.datasource, `${p.title} ${t.refId}: datasource`).toEqual({ type: 'prometheus', uid: '${datasource}' });
            expect(t.expr?.trim(), `${p.title} ${t.refId}: expr`).toBeTruthy();
          }
        }
      });

      it('uses $__rate_interval for every range and filters by $job and $instance', () => {
        for (const p of panels) {
          for (const t of p.targets ?? []) {
            const ranges = t.expr!.match(/\[[^\]]*\]/g) ?? [];
            for (const r of ranges) expect(r, `${p.title} ${t.refId}: ${t.expr}`).toBe('[$__rate_interval]');
            if (/\b(rate|irate|increase)\(/.test(t.expr!)) expect(t.expr, p.title).toContain('[$__rate_interval]');
            expect(t.expr, `${p.title} ${t.refId}`).toContain('job="$job"');
            expect(t.expr, `${p.title} ${t.refId}`).toContain('instance=~"$instance"');
          }
        }
      });
    });
  }

  it('lists every panel query for the end-to-end test, with the Grafana variables substituted', () => {
    const queries = listPanelQueries();
    const inJson = dashboardsJson.flatMap((d) => d.dashboard.panels.flatMap((p) => p.targets ?? []));
    expect(queries).toHaveLength(inJson.length);
    for (const q of queries) expect(q.expr).not.toMatch(/\$/);
    const custom = listPanelQueries(grafanaSubstitution({ rateInterval: '2m', instance: 'engine-1:8080' }));
    expect(custom.some((q) => q.expr.includes('[2m]') && q.expr.includes('instance=~"engine-1:8080"'))).toBe(true);
    expect(listRuleExpressions().map((r) => r.name)).toEqual([...recordingRules.map((r) => r.record), ...alertNames]);
  });
});

describe('(c) every referenced metric exists', () => {
  const expressions = [
    ...listPanelQueries((e) => e).map((q) => q.expr),
    ...listRuleExpressions().map((r) => r.expr),
    ...dashboardsJson.flatMap((d) => d.dashboard.templating.list.map((v) => (typeof v.query === 'string' ? v.query : ''))),
  ];
  const documents = ['dashboards/runbook.md', 'dashboards/README.md', 'dashboards/metrics.md'].map((p) => readFileSync(join(root, p), 'utf8'));

  function catalogName(raw: string): string {
    if (isCatalogMetric(raw)) return raw;
    const base = raw.replace(/_(bucket|sum|count)$/, '');
    return isCatalogMetric(base) && metricSpec(base).type === 'histogram' ? base : raw;
  }

  it('mtm_* names in panels, rules and docs are in the catalog', () => {
    const referenced = new Set([...expressions, ...documents].flatMap((text) => text.match(/mtm_[a-z0-9_]+/g) ?? []));
    expect(referenced.size).toBeGreaterThan(20);
    const unknown = [...referenced].filter((n) => !isCatalogMetric(catalogName(n)));
    expect(unknown).toEqual([]);
  });

  it('every catalog metric is shown on some dashboard or used by some rule', () => {
    const used = new Set(expressions.flatMap((e) => (e.match(/mtm_[a-z0-9_]+/g) ?? []).map(catalogName)));
    expect(metricCatalog.map((m) => m.name).filter((n) => !used.has(n))).toEqual([]);
  });

  it('nodejs_* and process_* names are prom-client default metrics', async () => {
    const registry = new Registry();
    collectProcessMetrics(registry);
    const defaults = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    const referenced = new Set([...expressions, ...documents].flatMap((text) => text.match(/\b(nodejs|process)_[a-z0-9_]+/g) ?? []));
    expect(referenced.size).toBeGreaterThan(3);
    expect([...referenced].filter((n) => !defaults.has(n.replace(/_(bucket|sum|count)$/, '')))).toEqual([]);
  });

  it('mtm:* names used by dashboards and alerts are recorded by a recording rule', () => {
    const records = new Set(recordingRules.map((r) => r.record));
    const used = new Set([...expressions, ...documents].flatMap((text) => text.match(/mtm:[a-z0-9_:]+/g) ?? []));
    expect(used.size).toBeGreaterThan(0);
    expect([...used].filter((n) => !records.has(n))).toEqual([]);
  });
});

describe('catalog conventions', () => {
  const unboundedLabels = /^(portfolio|portfolio_id|symbol|client|client_id|key|api_key|trade_id|id|user|path|url|ip|remote)$/;

  it.each(metricCatalog.map((m) => [m.name, m] as const))('%s follows the naming, unit and label rules', (_, m) => {
    expect(m.name).toMatch(/^mtm_[a-z][a-z0-9_]*[a-z0-9]$/);
    expect(m.name.endsWith('_total')).toBe(m.type === 'counter');
    expect(m.name).not.toMatch(/_(ms|milliseconds|microseconds|us|kb|mb|kilobytes|megabytes|percent|pct)(_|$)/);
    expect(m.help.length).toBeGreaterThan(10);
    expect(m.aggregatorWhy.length).toBeGreaterThan(5);
    if (m.type === 'counter' || m.type === 'histogram') expect(m.aggregator).toBe('sum');
    for (const l of m.labels) {
      expect(l.name).not.toMatch(unboundedLabels);
      expect('values' in l ? l.values.length > 0 && l.values.length <= 64 : l.bound.length > 10, `${m.name}{${l.name}} bounded`).toBe(true);
    }
    if (m.type === 'histogram') {
      expect([...m.buckets].sort((a, b) => a - b)).toEqual([...m.buckets]);
      expect(new Set(m.buckets).size).toBe(m.buckets.length);
    }
  });

  it('has the metrics the engine and the dashboards rely on', () => {
    for (const name of [
      'mtm_build_info',
      'mtm_ticks_received_total',
      'mtm_ticks_rejected_total',
      'mtm_coalesced_batches_total',
      'mtm_coalesced_batch_ticks',
      'mtm_positions_revalued_total',
      'mtm_portfolios_revalued_total',
      'mtm_incremental_ratio',
      'mtm_tick_to_publish_seconds',
      'mtm_updates_sent_total',
      'mtm_bytes_sent_total',
      'mtm_updates_conflated_total',
      'mtm_slow_consumer_disconnects_total',
      'mtm_connections',
      'mtm_subscriptions',
      'mtm_commands_total',
      'mtm_trades_total',
      'mtm_trade_ack_seconds',
      'mtm_store_commit_seconds',
      'mtm_store_size_bytes',
      'mtm_shard_restarts_total',
      'mtm_shard_queue_depth',
      'mtm_worker_utilization_ratio',
      'mtm_risk_breaches_total',
      'mtm_last_tick_timestamp_seconds',
      'mtm_market_alerts_total',
      'mtm_http_requests_total',
      'mtm_http_request_seconds',
    ]) {
      expect(isCatalogMetric(name), name).toBe(true);
    }
  });

  it('puts every histogram alert threshold on a bucket boundary', () => {
    expect(histogramThresholds.length).toBe(3);
    for (const { metric, threshold } of histogramThresholds) {
      const spec = metricSpec(metric);
      expect(spec.type === 'histogram' && spec.buckets.includes(threshold), `${metric} ${threshold}`).toBe(true);
    }
    // The brief's tick-to-publish boundaries are all present.
    const tick = metricSpec('mtm_tick_to_publish_seconds');
    for (const b of [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]) expect(tick.type === 'histogram' && tick.buckets.includes(b)).toBe(true);
  });

  it('pre-creates closed label sets at 0 so the first increment is visible to rate()', async () => {
    const registry = new Registry();
    createMetrics(registry, { shards: 2 });
    const text = await registry.metrics();
    expect(text).toContain('mtm_risk_breaches_total{limit="max_drawdown_pct"} 0');
    expect(text).toContain('mtm_commands_total{command="limits",result="error"} 0');
    expect(text).toContain('mtm_connections{protocol="feed"} 0');
    expect(text).toContain('mtm_shard_queue_depth{shard="1"} 0');
    // Open labels are never guessed.
    expect(text).not.toMatch(/mtm_http_requests_total\{/);
    expect(text).not.toMatch(/mtm_build_info\{/);
  });

  it('refuses to register the catalog twice in one registry', () => {
    const registry = new Registry();
    createMetrics(registry);
    expect(() => createMetrics(registry)).toThrow(/already been registered/);
  });
});

/** A registry with every catalog metric holding a value, as a busy engine would expose it. */
function busyRegistry(): Registry {
  const registry = new Registry();
  const m = createMetrics(registry, { shards: 2 });
  m.buildInfo.set({ version: '0.1.0', kernel: 'wasm', uws: '20.30.0' }, 1);
  m.ticksReceived.inc({ transport: 'ws', encoding: 'binary' }, 1000);
  m.ticksRejected.inc({ reason: 'invalid_price' }, 3);
  m.lastTickTimestamp.set(1_700_000_000.5);
  m.coalescedBatches.inc(40);
  m.coalescedBatchTicks.observe(25);
  m.positionsRevalued.inc(5000);
  m.portfoliosRevalued.inc(300);
  m.incrementalRatio.set(0.12);
  m.tickToPublish.observe(0.0031);
  m.updatesSent.inc(300);
  m.bytesSent.inc(120_000);
  m.updatesConflated.inc(12);
  m.slowConsumerDisconnects.inc();
  m.connections.set({ protocol: 'ws' }, 7);
  m.subscriptions.set(42);
  m.commands.inc({ command: 'trade', result: 'ok' });
  m.trades.inc({ result: 'ok' });
  m.tradeAck.observe(0.004);
  m.storeCommit.observe(0.0007);
  m.storeSize.set(1 << 20);
  m.shardRestarts.inc();
  m.shardQueueDepth.set({ shard: '0' }, 3);
  m.workerUtilization.set({ shard: '1' }, 0.4);
  m.riskBreaches.inc({ limit: 'max_loss' });
  m.marketAlerts.inc({ rule: 'price_cross' });
  m.httpRequests.inc({ route: '/api/v1/portfolios/:id', status_class: '2xx' });
  m.httpRequestDuration.observe({ route: '/api/v1/portfolios/:id' }, 0.002);
  return registry;
}

describe('(e) the exposition of the catalog', () => {
  it.skipIf(!hasPromtool)('passes promtool check metrics with no finding', async () => {
    const text = await busyRegistry().metrics();
    for (const m of metricCatalog) expect(text).toContain(`# TYPE ${m.name} ${m.type}`);
    const r = promtool(['check', 'metrics'], { input: text });
    expect(r.output.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it.skipIf(!hasPromtool)("reports only prom-client's documented gauge-named-_total findings for the process metrics", async () => {
    const registry = new Registry();
    collectProcessMetrics(registry);
    const r = promtool(['check', 'metrics'], { input: await registry.metrics() });
    const findings = r.output.trim().split('\n').filter(Boolean);
    for (const f of findings) expect(f).toMatch(/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/);
  });

  it('merges the main thread and the shard workers with the aggregator each metric declares', async () => {
    // Thread A: the main thread, with the build info and most traffic; thread B: a worker.
    const a = new Registry();
    const ma = createMetrics(a);
    ma.buildInfo.set({ version: '0.1.0', kernel: 'wasm', uws: '20.30.0' }, 1);
    ma.ticksReceived.inc({ transport: 'ws', encoding: 'json' }, 5);
    ma.lastTickTimestamp.set(100);
    ma.storeSize.set(4096);
    ma.connections.set({ protocol: 'ws' }, 2);
    const b = new Registry();
    const mb = createMetrics(b);
    mb.buildInfo.set({ version: '0.1.0', kernel: 'wasm', uws: '20.30.0' }, 1);
    mb.ticksReceived.inc({ transport: 'ws', encoding: 'json' }, 7);
    mb.lastTickTimestamp.set(90);
    mb.storeSize.set(4096);
    mb.incrementalRatio.set(0.3);
    mb.connections.set({ protocol: 'ws' }, 1);
    const merged = AggregatorRegistry.aggregate([await a.getMetricsAsJSON(), await b.getMetricsAsJSON()]);
    const value = async (name: string, labels: Record<string, string> = {}) => {
      const metric = merged.getSingleMetric(name);
      const values = (await metric!.get()).values as { value: number; labels: Record<string, string> }[];
      return values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))?.value;
    };
    expect(await value('mtm_ticks_received_total', { transport: 'ws', encoding: 'json' })).toBe(12);
    expect(await value('mtm_build_info', { kernel: 'wasm' })).toBe(1);
    expect(await value('mtm_last_tick_timestamp_seconds')).toBe(100);
    expect(await value('mtm_store_size_bytes')).toBe(4096);
    expect(await value('mtm_incremental_ratio')).toBe(0.3);
    expect(await value('mtm_connections', { protocol: 'ws' })).toBe(3);
  });
});

describe('(d) promtool accepts the rules and their unit tests pass', () => {
  it('every alert has a firing case and a silent near miss', () => {
    const tests = alertTests();
    expect(Object.keys(tests).sort()).toEqual([...alertNames].sort());
    for (const name of alertNames) {
      const { fires, silent } = tests[name];
      expect(fires.alert_rule_test.some((c) => c.alertname === name && c.exp_alerts.length > 0), `${name} fires`).toBe(true);
      expect(silent.length, `${name} near miss`).toBeGreaterThan(0);
      for (const g of silent) expect(g.alert_rule_test.every((c) => c.alertname === name && c.exp_alerts.length === 0), `${name}: ${g.name}`).toBe(true);
    }
  });

  it('every alert has severity, summary, description and a runbook_url whose anchor exists', () => {
    const runbook = readFileSync(join(root, 'dashboards', 'runbook.md'), 'utf8');
    const headings = new Set([...runbook.matchAll(/^## (\S+)\s*$/gm)].map((m) => m[1].toLowerCase()));
    for (const r of alertRules()) {
      expect(['critical', 'warning']).toContain(r.labels.severity);
      expect(r.annotations.summary.length).toBeGreaterThan(10);
      expect(r.annotations.description.length).toBeGreaterThan(20);
      expect(r.annotations.runbook_url).toBe(`dashboards/runbook.md#${r.alert.toLowerCase()}`);
      expect(headings.has(r.alert.toLowerCase()), `runbook.md has "## ${r.alert}"`).toBe(true);
    }
    expect(alertRules('https://example.com/runbook.md')[0].annotations.runbook_url).toBe('https://example.com/runbook.md#enginedown');
  });

  it('the example scrape config scrapes the engine under the job the rules select, and loads both rule files', () => {
    const config = readFileSync(join(promDir, 'prometheus.yml'), 'utf8');
    expect(config).toMatch(new RegExp(`job_name: ${engineJob}\\s*$`, 'm'));
    expect(config).toContain('recording.yaml');
    expect(config).toContain('alerts.yaml');
  });

  it.skipIf(!hasPromtool)('promtool check rules', () => {
    const r = promtool(['check', 'rules', 'recording.yaml', 'alerts.yaml']);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${recordingRules.length} rules found`);
    expect(r.output).toContain(`SUCCESS: ${alertNames.length} rules found`);
  });

  it.skipIf(!hasPromtool)('promtool test rules', () => {
    const r = promtool(['test', 'rules', 'alerts.test.yaml']);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS');
  });

  it.skipIf(!hasPromtool)('promtool check config on the example prometheus.yml', () => {
    const r = promtool(['check', 'config', 'prometheus.yml']);
    expect(r.status, r.output).toBe(0);
  });
});

it('the dashboard specs are the dashboards generated', () => {
  expect(dashboardSpecs.map((d) => d.uid)).toEqual(dashboardsJson.map((d) => d.dashboard.uid));
});
