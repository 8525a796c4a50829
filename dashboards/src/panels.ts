// Dashboards are written as plain data (DashboardSpec) and turned into Grafana classic dashboard JSON
// with the Grafana Foundation SDK builders here. The data form lets the end-to-end test list every
// query; this file is the one place that applies the house rules the SDK does not apply by default:
// an explicit refId on every query, the ${datasource} variable on every panel and query, a unit and a
// description on every panel, sequential panel ids.

import {
  DashboardBuilder,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
  type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import {
  BigValueColorMode,
  BigValueGraphMode,
  BigValueTextMode,
  GraphThresholdsStyleConfigBuilder,
  GraphThresholdsStyleMode,
  LegendDisplayMode,
  LegendPlacement,
  ReduceDataOptionsBuilder,
  ScaleDistribution,
  ScaleDistributionConfigBuilder,
  SortOrder,
  StackingConfigBuilder,
  StackingMode,
  TooltipDisplayMode,
  VizLegendOptionsBuilder,
  VizTooltipOptionsBuilder,
} from '@grafana/grafana-foundation-sdk/common';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import * as heatmap from '@grafana/grafana-foundation-sdk/heatmap';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { dashboardTag, datasourceRef, datasourceVariable, engineJob } from './config.js';

/** Grafana unit ids used here: ops = per second, opm = per minute (the expression multiplies by 60). */
export type Unit = 'ops' | 'opm' | 's' | 'percentunit' | 'short' | 'bytes' | 'Bps' | 'none';

export interface QuerySpec {
  expr: string;
  legend?: string;
  /** heatmap: one series per `le` bucket, as Grafana's heatmap expects. */
  format?: 'time_series' | 'heatmap';
  /** Instant query (stat panels showing the current value). */
  instant?: boolean;
}

interface PanelBase {
  title: string;
  description: string;
  unit: Unit;
  queries: QuerySpec[];
  /** Shown instead of "No data" when a query filters out every series (e.g. `> 0`). */
  noValue?: string;
  /** Grid width (of 24). */
  width?: number;
  height?: number;
}
export interface TimeseriesSpec extends PanelBase {
  kind: 'timeseries';
  min?: number;
  max?: number;
  /** Draws the alert threshold as a dashed red line. */
  threshold?: number;
  stack?: boolean;
  logScale?: boolean;
}
export interface StatSpec extends PanelBase {
  kind: 'stat';
  /** Value at which the stat turns red (green below). */
  threshold?: number;
  /** name: show the legend (e.g. the build labels) instead of the value. */
  show?: 'value' | 'name';
}
export interface HeatmapSpec extends PanelBase {
  kind: 'heatmap';
}
export type PanelSpec = TimeseriesSpec | StatSpec | HeatmapSpec;

export interface RowSpec {
  title: string;
  panels: PanelSpec[];
}
export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  rows: RowSpec[];
}

const refIds = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function queryBuilder(q: QuerySpec, index: number): DataqueryBuilder {
  if (index >= refIds.length) throw new Error(`a panel has more than ${refIds.length} queries: split it`);
  const b = new DataqueryBuilder()
    .refId(refIds[index])
    .datasource({ ...datasourceRef })
    .expr(q.expr)
    .legendFormat(q.legend ?? '__auto');
  if (q.format === 'heatmap') b.format(PromQueryFormat.Heatmap);
  if (q.instant) b.instant();
  else b.range();
  return b;
}

function thresholdSteps(threshold: number | undefined): ThresholdsConfigBuilder {
  const steps: { value: number | null; color: string }[] = [{ value: null, color: 'green' }];
  if (threshold !== undefined) steps.push({ value: threshold, color: 'red' });
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(steps);
}

function panelBuilder(p: PanelSpec, id: number) {
  const targets = p.queries.map(queryBuilder);
  switch (p.kind) {
    case 'timeseries': {
      const b = new timeseries.PanelBuilder()
        .id(id)
        .title(p.title)
        .description(p.description)
        .datasource({ ...datasourceRef })
        .unit(p.unit)
        .targets(targets)
        .span(p.width ?? 12)
        .height(p.height ?? 8)
        .lineWidth(1)
        .fillOpacity(p.stack ? 30 : 10)
        .legend(new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom).calcs([]))
        .tooltip(new VizTooltipOptionsBuilder().mode(TooltipDisplayMode.Multi).sort(SortOrder.Descending))
        .thresholds(thresholdSteps(p.threshold))
        .thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(p.threshold === undefined ? GraphThresholdsStyleMode.Off : GraphThresholdsStyleMode.Dashed));
      if (p.noValue !== undefined) b.noValue(p.noValue);
      if (p.min !== undefined) b.min(p.min);
      if (p.max !== undefined) b.max(p.max);
      if (p.stack) b.stacking(new StackingConfigBuilder().mode(StackingMode.Normal).group('A'));
      if (p.logScale) b.scaleDistribution(new ScaleDistributionConfigBuilder().type(ScaleDistribution.Log).log(10));
      return b;
    }
    case 'stat': {
      const b = new stat.PanelBuilder()
        .id(id)
        .title(p.title)
        .description(p.description)
        .datasource({ ...datasourceRef })
        .unit(p.unit)
        .targets(targets)
        .span(p.width ?? 6)
        .height(p.height ?? 4)
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
        .graphMode(BigValueGraphMode.None)
        .colorMode(BigValueColorMode.Value)
        .textMode(p.show === 'name' ? BigValueTextMode.Name : BigValueTextMode.Auto)
        .thresholds(thresholdSteps(p.threshold));
      if (p.noValue !== undefined) b.noValue(p.noValue);
      return b;
    }
    case 'heatmap':
      // Prometheus buckets are already a histogram: calculate(false) makes Grafana draw them as they
      // are instead of re-bucketing the per-bucket rates.
      return new heatmap.PanelBuilder()
        .id(id)
        .title(p.title)
        .description(p.description)
        .datasource({ ...datasourceRef })
        .unit(p.unit)
        .targets(targets)
        .span(p.width ?? 12)
        .height(p.height ?? 8)
        .calculate(false)
        .yAxis(new heatmap.YAxisConfigBuilder().unit(p.unit))
        .cellValues(new heatmap.CellValuesBuilder().unit('ops'))
        .color(new heatmap.HeatmapColorOptionsBuilder().mode(heatmap.HeatmapColorMode.Scheme).scheme('Spectral').exponent(0.5).steps(64).fill('dark-orange').reverse(false))
        .tooltip(new heatmap.HeatmapTooltipBuilder().mode(TooltipDisplayMode.Single).yHistogram(true))
        .showLegend();
  }
}

function variables() {
  return [
    new DatasourceVariableBuilder(datasourceVariable).label('Data source').type('prometheus'),
    // The job label of the engine targets; defaults to the convention (config.ts) when it exists.
    new QueryVariableBuilder('job')
      .label('Job')
      .datasource({ ...datasourceRef })
      .query('label_values(mtm_build_info, job)')
      .definition('label_values(mtm_build_info, job)')
      .current({ text: engineJob, value: engineJob, selected: true })
      .refresh(VariableRefresh.OnDashboardLoad)
      .sort(VariableSort.AlphabeticalAsc),
    new QueryVariableBuilder('instance')
      .label('Instance')
      .datasource({ ...datasourceRef })
      .query('label_values(mtm_build_info{job="$job"}, instance)')
      .definition('label_values(mtm_build_info{job="$job"}, instance)')
      .multi(true)
      .includeAll(true)
      .allValue('.*')
      .current({ text: 'All', value: '$__all', selected: true })
      .refresh(VariableRefresh.OnTimeRangeChanged)
      .sort(VariableSort.AlphabeticalAsc),
  ];
}

export function buildDashboard(spec: DashboardSpec): Dashboard {
  const b = new DashboardBuilder(spec.title)
    .uid(spec.uid)
    .description(spec.description)
    .tags([dashboardTag])
    // Provisioned from code: edits in the UI would be lost at the next provisioning run.
    .readonly()
    .timezone('browser')
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .tooltip(DashboardCursorSync.Crosshair)
    .link(new DashboardLinkBuilder('MTM dashboards').type(DashboardLinkType.Dashboards).tags([dashboardTag]).asDropdown(true).includeVars(true).keepTime(true))
    .variables(variables());
  let id = 1;
  for (const row of spec.rows) {
    b.withRow(new RowBuilder(row.title).id(id++));
    for (const p of row.panels) b.withPanel(panelBuilder(p, id++));
  }
  return b.build();
}

/** Every query of a dashboard spec with where it is, in panel order. */
export function specQueries(spec: DashboardSpec): { dashboard: string; panel: string; refId: string; expr: string; format: 'time_series' | 'heatmap' }[] {
  return spec.rows.flatMap((row) =>
    row.panels.flatMap((p) =>
      p.queries.map((q, i) => ({ dashboard: spec.uid, panel: p.title, refId: refIds[i], expr: q.expr, format: q.format ?? 'time_series' })),
    ),
  );
}
