// Small PromQL builders. Metric names are typed from the catalog, so a misspelt name does not compile;
// the selectors encode the two scopes: dashboards filter by the $job/$instance template variables,
// rules by the fixed job label.

import type { CounterName, HistogramName, MetricName } from '../../src/metrics/catalog.js';
import { engineJob } from './config.js';

/** Grafana's rate window: at least 4 scrape intervals, widened with the panel's step. */
export const rateInterval = '$__rate_interval';

export type Scope = 'dashboard' | 'rule';

/** `{job=..., instance=~...}` plus extra matchers, e.g. sel('dashboard', 'result!="ok"'). */
export function sel(scope: Scope, ...extra: string[]): string {
  const base = scope === 'dashboard' ? ['job="$job"', 'instance=~"$instance"'] : [`job="${engineJob}"`];
  return `{${[...base, ...extra].join(', ')}}`;
}

export function series(name: MetricName | 'up', selector: string): string {
  return `${name}${selector}`;
}

export function rate(name: CounterName, selector: string, window: string): string {
  return `rate(${name}${selector}[${window}])`;
}

export function increase(name: CounterName, selector: string, window: string): string {
  return `increase(${name}${selector}[${window}])`;
}

export function bucketRate(name: HistogramName, selector: string, window: string): string {
  return `rate(${name}_bucket${selector}[${window}])`;
}

/** Mean observation from a histogram's _sum and _count. */
export function histogramMean(name: HistogramName, selector: string, window: string, by: readonly string[] = []): string {
  const g = by.length > 0 ? ` by (${by.join(', ')})` : '';
  return `sum${g} (rate(${name}_sum${selector}[${window}])) / sum${g} (rate(${name}_count${selector}[${window}]))`;
}

/** histogram_quantile over buckets summed by `by` (le is added). */
export function quantile(q: number, name: HistogramName, selector: string, window: string, by: readonly string[] = []): string {
  return `histogram_quantile(${q}, sum by (${[...by, 'le'].join(', ')}) (${bucketRate(name, selector, window)}))`;
}

/** Share of observations above a bucket boundary (exact: no interpolation involved). */
export function shareAbove(name: HistogramName, le: number, selector: string, window: string): string {
  // le is rendered as JavaScript prints it; prom-client prints bucket bounds the same way, and for
  // non-integer bounds so does Prometheus 3 after it normalises `le`.
  if (Number.isInteger(le)) throw new Error(`le=${le}: Prometheus 3 renders integer bounds as "${le}.0"; use a non-integer boundary`);
  const leSel = selector.replace(/}$/, `, le="${le}"}`);
  return `1 - (sum (rate(${name}_bucket${leSel}[${window}])) / sum (rate(${name}_count${selector}[${window}])))`;
}

/**
 * Share of observations above a bucket boundary, per `by` group: the error ratio of a latency SLO.
 * (count - within) / count, so a window without observations gives no number rather than 1.
 */
export function errorRatio(name: HistogramName, le: number, selector: string, window: string, by: readonly string[]): string {
  if (Number.isInteger(le)) throw new Error(`le=${le}: Prometheus 3 renders integer bounds as "${le}.0"; use a non-integer boundary`);
  const leSel = selector.replace(/}$/, `, le="${le}"}`);
  const g = `sum by (${by.join(', ')})`;
  const count = `${g} (rate(${name}_count${selector}[${window}]))`;
  return `(${count} - ${g} (rate(${name}_bucket${leSel}[${window}]))) / ${count}`;
}
