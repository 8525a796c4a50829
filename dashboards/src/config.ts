// Conventions shared by the dashboards, the rules and the provisioning files. The thresholds and SLOs
// live in src/metrics/objectives.ts (shared with the performance API); the ones on a histogram are
// checked against the catalog's buckets here when the files are generated.

import { metricSpec, type HistogramName } from '../../src/metrics/catalog.js';
import { thresholds } from '../../src/metrics/objectives.js';

/**
 * The Prometheus job label of every engine target. Rules select `{job="mtm-engine"}`; the example
 * scrape config (dashboards/prometheus/prometheus.yml) uses it as job_name. A deployment that scrapes
 * the engine under another job name must change it here and regenerate.
 */
export const engineJob = 'mtm-engine';

/** Name of the dashboards' templated Prometheus datasource variable: every panel and query uses `${datasource}`. */
export const datasourceVariable = 'datasource';
export const datasourceRef = { type: 'prometheus', uid: `\${${datasourceVariable}}` } as const;

/** Where the alerts' runbook_url points: GitHub renders `#<alertname lowercased>` anchors for `## <AlertName>` headings. */
export const runbookPath = 'dashboards/runbook.md';

/** Tag shared by every dashboard: the dashboards link to each other through it. */
export const dashboardTag = 'mtm';

/**
 * Window of the recording rules' rate(): 4 samples at the 15 s scrape interval of the example config,
 * the minimum for a rate that survives one missed scrape.
 */
export const recordingWindow = '1m';

// Thresholds and objectives live in src/metrics/objectives.ts, below both the performance API and
// these rules; re-exported here for the dashboards and rules.
export { burnRateWindows, capacity, objectives, thresholds, type LatencyObjective } from '../../src/metrics/objectives.js';

/** Each histogram threshold with its histogram: generation fails if one is not a bucket boundary. */
export const histogramThresholds: readonly { metric: HistogramName; threshold: number }[] = [
  { metric: 'mtm_tick_to_publish_seconds', threshold: thresholds.tickToPublishP99Seconds },
  { metric: 'mtm_trade_ack_seconds', threshold: thresholds.tradeAckP99Seconds },
  { metric: 'mtm_store_commit_seconds', threshold: thresholds.storeCommitP99Seconds },
];

export function assertThresholdsOnBuckets(): void {
  for (const { metric, threshold } of histogramThresholds) {
    const spec = metricSpec(metric);
    if (spec.type !== 'histogram' || !spec.buckets.includes(threshold)) {
      throw new Error(`alert threshold ${threshold} on ${metric} is not one of its bucket boundaries: p99 > threshold would be an interpolation artefact`);
    }
  }
}
