// Conventions shared by the dashboards, the rules and the provisioning files, and every alert threshold.
// Thresholds live here, next to nothing else, so a reviewer sees all of them at once; the ones on a
// histogram are checked against the catalog's buckets when the files are generated.

import { metricSpec, type HistogramName } from '../../src/metrics/catalog.js';

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

export const thresholds = {
  /** No tick accepted for this long (seconds) while the engine is up: prices are stale. */
  feedStaleSeconds: 30,
  /** p99 tick-to-publish above this (seconds). Marks older than this are not "real time" for the desk. */
  tickToPublishP99Seconds: 0.05,
  /** p99 trade acknowledgement above this (seconds); includes the durable commit. */
  tradeAckP99Seconds: 0.25,
  /** p99 LMDB commit above this (seconds): the disk is the bottleneck of trade acks. */
  storeCommitP99Seconds: 0.1,
  /**
   * p99 main-thread event-loop delay above this (seconds). The gauge reads about 0.01 on an idle loop
   * (it includes prom-client's 10 ms sampling resolution), so the threshold sits well above that.
   */
  eventLoopLagP99Seconds: 0.1,
  /** More slow-consumer disconnects than this within slowConsumerWindow. */
  slowConsumerDisconnects: 5,
  slowConsumerWindow: '10m',
  /** Shard restarts within shardRestartWindow above this (0: any restart is a crash worth a look). */
  shardRestarts: 0,
  shardRestartWindow: '15m',
  /** More new breaches of one risk limit than this within riskBreachWindow: a market move or a bad tick. */
  riskBreaches: 20,
  riskBreachWindow: '5m',
} as const;

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
