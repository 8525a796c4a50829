// What a shard worker reports to the main thread beside the catalog metrics: its cumulative event-loop
// busy and idle time. They are not catalog metrics: the main thread reads them from each worker's
// registry, turns them into mtm_worker_utilization_ratio over a window it chooses (so the ratio does not
// depend on how often anyone scrapes), and strips them before the merge; the 'omit' aggregator drops
// them even if a caller forgets to strip.

export const workerEluMetricName = 'mtm_internal_worker_event_loop_seconds';

/** The `state` label values of workerEluMetricName. */
export const workerEluStates = ['active', 'idle'] as const;
