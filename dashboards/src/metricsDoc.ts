// dashboards/metrics.md: the metrics reference, rendered from the catalog so it cannot drift from it.

import { metricCatalog, type MetricSpec } from '../../src/metrics/catalog.js';
import { engineJob } from './config.js';

function labelCell(spec: MetricSpec): string {
  if (spec.labels.length === 0) return '';
  return spec.labels.map((l) => ('values' in l ? `\`${l.name}\`: ${l.values.join(' \\| ')}` : `\`${l.name}\`: ${l.bound}`)).join('<br>');
}

export function metricsMarkdown(): string {
  const lines = [
    '# Engine metrics',
    '',
    '<!-- Generated from src/metrics/catalog.ts by dashboards/src/generate.ts: do not edit, run `npm run dashboards`. -->',
    '',
    `Every metric the engine exports on \`/metrics\`, scraped as \`job="${engineJob}"\`. Conventions: prefix \`mtm_\`,`,
    'base units (`_seconds`, `_bytes`, ratios 0..1), counters end in `_total`, label values are bounded',
    '(never a portfolio, symbol, client, key or trade id). Labels with a closed set of values are created at 0',
    'at start-up, so the first increment is visible to `rate()` and `increase()`.',
    '',
    '**Aggregation** is how the values of the main thread and the shard workers are merged into one series',
    "(prom-client `AggregatorRegistry.aggregate`, by each metric's `aggregator`).",
    '',
    '| Metric | Type | Labels | Aggregation | Description |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const m of metricCatalog) {
    const buckets = m.type === 'histogram' ? `<br>Buckets: ${m.buckets.join(', ')}` : '';
    lines.push(`| \`${m.name}\` | ${m.type} | ${labelCell(m)} | ${m.aggregator}: ${m.aggregatorWhy} | ${m.help}${buckets} |`);
  }
  lines.push(
    '',
    '## Process metrics',
    '',
    "prom-client's default metrics are exported from the main thread under their standard names, without the",
    '`mtm_` prefix, so stock Node.js dashboards and alerts work unchanged: `nodejs_eventloop_lag_seconds`,',
    '`nodejs_eventloop_lag_p50_seconds` / `_p90_` / `_p99_` / `_max_seconds` (since the previous scrape; they',
    'include the 10 ms sampling resolution, so an idle loop reads about 0.01 s), `nodejs_heap_size_used_bytes`,',
    '`process_cpu_seconds_total`, `process_resident_memory_bytes`, `nodejs_gc_duration_seconds`, and the rest of',
    "prom-client's list. `promtool check metrics` flags prom-client's `nodejs_active_handles_total`,",
    '`nodejs_active_requests_total` and `nodejs_active_resources_total` (gauges ending in `_total`); they keep',
    "prom-client's names.",
    '',
  );
  return lines.join('\n');
}
