// Service level objectives and every threshold shared by the performance API (src/server/performance.ts)
// and the alert rules, SLOs and dashboards (dashboards/src/). It sits below both and imports nothing,
// so a hint of the performance API and an alert can never disagree about a number.
// Latency thresholds are bucket boundaries of their histograms (dashboards/src/config.ts checks it when
// the files are generated), so "slower than the objective" is counted exactly, never interpolated.

/** A latency objective: `target` of the observations of `metric` within `thresholdSeconds`, over `window`. */
export interface LatencyObjective {
  /** Short name used in recording rule and alert names. */
  name: string;
  metric: 'mtm_tick_to_publish_seconds' | 'mtm_trade_ack_seconds';
  thresholdSeconds: number;
  /** Share of observations that must be within the threshold, e.g. 0.99. */
  target: number;
  /** The SLO window (Prometheus duration). */
  window: string;
  /** What the user experiences, for documents and alert texts. */
  what: string;
}

export const objectives = {
  /**
   * 99% of ticks reach client sockets within 50 ms. A late mark is superseded by the next tick of its
   * symbol, so one in a hundred late is tolerable; more, and the desk watches prices that lag the market.
   */
  tickToPublish: {
    name: 'tick_to_publish',
    metric: 'mtm_tick_to_publish_seconds',
    thresholdSeconds: 0.05,
    target: 0.99,
    window: '30d',
    what: 'ticks published to client sockets',
  },
  /**
   * 99.9% of trades acknowledged (durably committed) within 250 ms. A trader waits for each ack and
   * nothing supersedes a slow one, hence the stricter target.
   */
  tradeAck: {
    name: 'trade_ack',
    metric: 'mtm_trade_ack_seconds',
    thresholdSeconds: 0.25,
    target: 0.999,
    window: '30d',
    what: 'trades acknowledged',
  },
} as const satisfies Record<string, LatencyObjective>;

/**
 * Multi-window, multi-burn-rate alerting (Google SRE workbook, "Alerting on SLOs", table 5-8): an alert
 * fires when the budget burns faster than `burnRate` over both the long window and the short one (the
 * short window makes it stop soon after the burn stops). With a 30-day window, 14.4x over 1 h spends 2%
 * of the budget, 6x over 6 h 5% (both page), 3x over 1 d and 1x over 3 d 10% (a ticket).
 */
export const burnRateWindows = [
  { severity: 'critical', burnRate: 14.4, long: '1h', short: '5m' },
  { severity: 'critical', burnRate: 6, long: '6h', short: '30m' },
  { severity: 'warning', burnRate: 3, long: '1d', short: '2h' },
  { severity: 'warning', burnRate: 1, long: '3d', short: '6h' },
] as const;

/** Capacity forecasts: alert when a linear fit over `fitWindow` reaches the limit within `horizonSeconds`. */
export const capacity = {
  horizonSeconds: 4 * 3600,
  fitWindow: '1h',
  fitWindowSeconds: 3600,
} as const;

export const thresholds = {
  /** No tick accepted for this long (seconds) while the engine is up: prices are stale. */
  feedStaleSeconds: 30,
  /** The tick-to-publish objective's threshold; the performance API hints when p99 exceeds it. */
  tickToPublishP99Seconds: objectives.tickToPublish.thresholdSeconds,
  /** The trade ack objective's threshold (includes the durable commit). */
  tradeAckP99Seconds: objectives.tradeAck.thresholdSeconds,
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
  /**
   * A partition without owner for this long (cluster): failover takes at most the owner timeout plus a
   * claim round (about 10 s), so one minute of no owner is no failover in progress but a cluster that
   * cannot serve it (too few nodes, NATS JetStream unavailable, claims failing).
   */
  partitionUnownedFor: '1m',
  /**
   * Command-stream messages a node has not applied, above this for consumerLagFor: commands wait in the
   * stream, so acks (which follow the apply) are late by that backlog.
   */
  consumerLagMessages: 1000,
  consumerLagFor: '5m',
} as const;
