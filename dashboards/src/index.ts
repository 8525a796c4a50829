// Public surface of the observability-as-code package, for the tests (and the end-to-end test that
// runs every query against a real Prometheus scraping a real engine).

import { engineJob } from './config.js';
import { dashboardSpecs } from './dashboards/index.js';
import { specQueries } from './panels.js';
import { alertRules, recordingRules, ruleGroups } from './rules.js';

export { generateFiles, type GeneratedFile, type GenerateOptions } from './files.js';
export { dashboardSpecs } from './dashboards/index.js';
export { buildDashboard, type DashboardSpec, type PanelSpec } from './panels.js';
export { alertNames, alertRules, recordingRules, recorded, ruleGroups, type AlertName, type AlertRule } from './rules.js';
export { alertTests } from './alertTests.js';
export { engineJob, datasourceVariable, thresholds, histogramThresholds } from './config.js';

export interface GrafanaVariableValues {
  /** Value for $__rate_interval (and $__interval), e.g. '1m'. */
  rateInterval: string;
  job: string;
  /** Regex for $instance, e.g. '.*' (what "All" means here). */
  instance: string;
}

/** Replaces the Grafana variables the dashboards use; defaults: 1m, the engine job, every instance. */
export function grafanaSubstitution(values: Partial<GrafanaVariableValues> = {}): (expr: string) => string {
  const v: GrafanaVariableValues = { rateInterval: '1m', job: engineJob, instance: '.*', ...values };
  return (expr) =>
    expr
      .replaceAll('$__rate_interval', v.rateInterval)
      .replaceAll('$__interval', v.rateInterval)
      .replaceAll('$job', v.job)
      .replaceAll('$instance', v.instance);
}

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
  format: 'time_series' | 'heatmap';
}

/** Every panel query of every dashboard, its Grafana variables replaced by `substitute` (default: grafanaSubstitution()). */
export function listPanelQueries(substitute: (expr: string) => string = grafanaSubstitution()): PanelQuery[] {
  return dashboardSpecs.flatMap(specQueries).map((q) => ({ ...q, expr: substitute(q.expr) }));
}

export interface RuleExpression {
  group: string;
  kind: 'record' | 'alert';
  name: string;
  expr: string;
}

/** Every recording and alerting rule expression (they contain no Grafana variables). */
export function listRuleExpressions(): RuleExpression[] {
  return [
    ...recordingRules.map((r) => ({ group: ruleGroups.recording, kind: 'record' as const, name: r.record, expr: r.expr })),
    ...alertRules().map((r) => ({ group: ruleGroups.alerts, kind: 'alert' as const, name: r.alert, expr: r.expr })),
  ];
}
