// The option table: every limit and option of `mtm serve`, one entry each. Flags, MTM_* environment
// variables, the --config JSON file, `mtm --help`, `mtm config` and the options handed to the engine,
// store, server and market service are all derived from it (src/cli/config.ts).
//
// Adding an option is one entry here:
//   1. name: the long flag, kebab-case, unit last (`backpressure-bytes-max`, `coalesce-window-ms`); the
//      environment variable is derived (MTM_BACKPRESSURE_BYTES_MAX) and the config file key is the name.
//   2. component + key: which options object it lands in and the path inside it (`limits.connectionsMax`
//      in ServerOptions). The component must already accept that field; test/config.test.ts checks that
//      every key reaches its component's resolved options.
//   3. kind: int/number (with min and max: the rule an operator is told when a value is refused), bool,
//      enum, string or path (file-relative paths are resolved against the config file's directory).
//      `rule` adds a check the bounds cannot say (e.g. a power of two).
//   4. default: import it from the component (never repeat a number here), or null when the component
//      computes it (say how in defaultText). unit: what a value counts ('ms', 'bytes', 'connections').
//   5. help: one line, what it bounds and what happens past it.
// Cross-field rules (soft below hard bound, min <= max) stay in the component's own resolver; the CLI
// runs the server's at start so they too are refused before anything opens.

import { defaultWorkers, resolveOptions as resolveEngineOptions } from '../engine/options.js';
import { marketServiceLimitsDefault as market } from '../market/service.js';
import { defaultLimits as server } from '../server/options.js';
import { storeDefaults as store } from '../store/store.js';
import { clusterDefaults as cluster } from '../cluster/node.js';
import { partitionsMax } from '../cluster/partition.js';

export type Component = 'engine' | 'store' | 'server' | 'market' | 'cluster' | 'cli';
export type OptionValue = string | number | boolean;

export type OptionKind =
  | { type: 'int'; min: number; max: number; rule?: { test: (n: number) => boolean; text: string } }
  | { type: 'number'; min: number; max: number }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'string'; lengthMax: number }
  | { type: 'path' };

export interface OptionEntry {
  /** Long flag name and config file key; unit last. */
  name: string;
  kind: OptionKind;
  /** null: none, or computed by the component (defaultText says how). */
  default: OptionValue | null;
  defaultText?: string;
  /** What one unit of the value is ('' for strings, paths, switches and enums). */
  unit: string;
  component: Component;
  /** Path of the field in the component's options object, e.g. `limits.connectionsMax`. */
  key: string;
  help: string;
}

/** setTimeout/setInterval take at most 2^31 - 1 ms; a larger delay silently becomes 1 ms. */
const timerMsMax = 2_147_483_647;
const safeMax = Number.MAX_SAFE_INTEGER;
/** The market's bar book refuses a lateness over a day and a feed gap over a week (src/market/barBook.ts). */
const dayMs = 86_400_000;

const int = (min: number, max = safeMax): OptionKind => ({ type: 'int', min, max });
const timerMs = (min = 1): OptionKind => int(min, timerMsMax);
const bool: OptionKind = { type: 'bool' };
const path: OptionKind = { type: 'path' };
const powerOfTwo = { test: (n: number) => (n & (n - 1)) === 0, text: 'a power of two' };

const engine = resolveEngineOptions({});
/** Currencies a cross rate may go through: the ones FX markets quote most pairs against. */
const fxPivots = ['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD', 'NZD', 'SEK', 'NOK', 'HKD', 'SGD', 'CNH'] as const;

function e(component: Component, name: string, key: string, kind: OptionKind, def: OptionValue | null, unit: string, help: string, defaultText?: string): OptionEntry {
  return { name, kind, default: def, unit, component, key, help, ...(defaultText === undefined ? {} : { defaultText }) };
}

export const optionTable: readonly OptionEntry[] = [
  // Network and security (server).
  e('server', 'host', 'host', { type: 'string', lengthMax: 255 }, '127.0.0.1', '', 'interface to bind; a non-loopback host needs --keys or --insecure'),
  e('server', 'port', 'port', int(0, 65535), 8080, '', 'HTTP and WebSocket port (0 = any free port)'),
  e('server', 'keys', 'keysFile', path, null, '', 'API keys file (JSON [{"key","name","scopes"}]); without it only loopback is served', 'none'),
  e('server', 'insecure', 'insecure', bool, false, '', 'allow a non-loopback host without a keys file'),
  e('server', 'transport', 'transport', { type: 'enum', values: ['auto', 'node'] }, 'auto', '', 'auto: native uWebSockets.js when its binary loads, else node:http + ws; node forces the latter'),
  // Engine.
  e('engine', 'data', 'dataDir', path, './data', '', 'LMDB data directory (event log, snapshots, last prices; market data in <data>/market)'),
  e('engine', 'workers', 'workers', int(1, 1024), null, 'threads', 'shard worker threads', `cores - 1, at least 1: ${defaultWorkers()} here`),
  e('engine', 'kernel', 'kernel', { type: 'enum', values: ['wasm', 'js'] }, engine.kernel, '', 'revaluation kernel: wasm or js (same results, bit for bit)'),
  e('engine', 'sync', 'sync', bool, engine.sync, '', 'flush to disk before acknowledging trades (survives power loss, slower)'),
  e('engine', 'stale-after-ms', 'staleAfterMs', int(0), engine.staleAfterMs, 'ms', 'a mark older than this (as_of - price_ts) is reported stale'),
  e('engine', 'suspect-move-pct', 'suspectMovePct', { type: 'number', min: 0, max: safeMax }, engine.suspectMovePct, '%', 'hold a tick moving its price more than this % from the last applied one until the next tick or an admin decides (0 = off)'),
  e('engine', 'coalesce-window-ms', 'coalesceWindowMs', timerMs(0), engine.coalesceWindowMs, 'ms', 'ticks of one symbol within this window collapse to the latest (0 = one event-loop turn)'),
  e('engine', 'snapshot-interval-ms', 'snapshotIntervalMs', timerMs(), engine.snapshotIntervalMs, 'ms', 'how often shards snapshot (also on clean shutdown); recovery replays the events after the last one'),
  e('engine', 'snapshot-tail-events-max', 'snapshotTailEventsMax', int(1), engine.snapshotTailEventsMax, 'events', 'start a snapshot round once this many events were logged after the last one, so a shard restart replays at most about this many'),
  e('engine', 'retain-events-ms', 'retainEventsMs', int(1), engine.retainEventsMs, 'ms', 'compact events older than this that every snapshot covers (default: keep every event, for audit)', 'none (keep all)'),
  e('engine', 'prices-flush-interval-ms', 'pricesFlushIntervalMs', timerMs(), engine.pricesFlushIntervalMs, 'ms', 'how often last prices are written to LMDB (a restart restores marks this fresh)'),
  e('engine', 'corporate-actions-check-ms', 'corporateActionsCheckMs', timerMs(), engine.corporateActionsCheckMs, 'ms', 'how often due corporate action steps are looked for'),
  e('engine', 'unwatched-revalue-interval-ms', 'unwatchedRevalueIntervalMs', int(0, timerMsMax), engine.unwatchedRevalueIntervalMs, 'ms', 'a tick batch revalues watched portfolios first; the others follow once the shard has no batch waiting, at most this much batch time later (their risk limits and high-water marks see the latest prices within it; 0 = with every batch)'),
  e('engine', 'unwatched-rows-per-slice-max', 'unwatchedRowsPerSliceMax', int(1, 0x7fffffff), engine.unwatchedRowsPerSliceMax, 'rows', 'the pass over the unwatched portfolios runs in slices of about this many position rows, one per turn of the shard, so a tick batch arriving during it waits one slice'),
  e('engine', 'shard-heap-mb', 'shardHeapMb', int(16, 1 << 20), engine.shardHeapMb, 'MB', 'heap limit of each shard worker; a shard past it is restarted from the store'),
  e('engine', 'portfolios-max', 'limits.portfoliosMax', int(1), engine.limits.portfoliosMax, 'portfolios', 'portfolios in the engine; past it create is refused (limit_exceeded)'),
  e('engine', 'positions-per-portfolio-max', 'limits.positionsPerPortfolioMax', int(1), engine.limits.positionsPerPortfolioMax, 'positions', 'open positions of one portfolio; a trade opening one more symbol is refused'),
  e('engine', 'symbols-max', 'limits.symbolsMax', int(1), engine.limits.symbolsMax, 'symbols', 'symbols known to the engine; ticks and trades for new symbols past it are refused'),
  e('engine', 'commands-queued-per-shard-max', 'limits.commandsQueuedPerShardMax', int(1), engine.limits.commandsQueuedPerShardMax, 'commands', 'commands waiting for one shard; past it new ones are refused (retryable)'),
  e('engine', 'commands-per-message-max', 'limits.commandsPerMessageMax', int(1), engine.limits.commandsPerMessageMax, 'commands', 'commands in one message to a shard: a turn\'s commands go as several, so the shard answers the first while it works on the next and their commit starts meanwhile'),
  e('engine', 'ticks-per-call-max', 'limits.ticksPerCallMax', int(1), engine.limits.ticksPerCallMax, 'ticks', 'ticks in one ingestTicks call; a larger call is refused'),
  e('engine', 'subscribers-per-portfolio-max', 'limits.subscribersPerPortfolioMax', int(1), engine.limits.subscribersPerPortfolioMax, 'subscribers', 'subscribers to one portfolio; past it subscribe is refused'),
  e('engine', 'trade-ids-remembered-max', 'limits.tradeIdsRememberedMax', int(1), engine.limits.tradeIdsRememberedMax, 'trade ids', 'trade ids kept in memory for idempotency; older ones are answered from LMDB'),
  e('engine', 'fx-pivot', 'fxPivot', { type: 'enum', values: fxPivots }, engine.fxPivot, '', 'currency cross rates go through when neither the direct nor the inverse pair has ticked (QUSD x USDB, each leg direct or inverse)'),
  e('engine', 'instruments-max', 'limits.instrumentsMax', int(1), engine.limits.instrumentsMax, 'instruments', 'instrument definitions (reference data); past it a new definition is refused'),
  e('engine', 'batches-in-flight-max', 'limits.batchesInFlightMax', int(1, 64), engine.limits.batchesInFlightMax, 'batches', 'tick batches the shards work on at once (2: a shard revalues the next batch while the main thread routes the last one\'s updates; 1: lockstep)'),
  e('engine', 'corporate-actions-pending-max', 'limits.corporateActionsPendingMax', int(1), engine.limits.corporateActionsPendingMax, 'actions', 'corporate actions announced and not fully applied; past it new ones are refused (retryable)'),
  // Store (LMDB).
  e('store', 'store-map-size-bytes', 'mapSizeBytes', int(1 << 20), store.mapSizeBytes, 'bytes', 'initial LMDB map size (address space, not disk; lmdb-js grows it when it fills)'),
  e('store', 'store-pending-writes-max', 'pendingWritesMax', int(1), store.pendingWritesMax, 'writes', 'events and trade results queued or in flight; past it new commands are refused (retryable) until commits catch up'),
  e('store', 'store-commits-in-flight-max', 'commitsInFlightMax', int(1), store.commitsInFlightMax, 'commits', 'group commits submitted to LMDB at once (pipelined, chained so none lands after a failed one); the next gathers while they flush'),
  e('store', 'store-index-events-per-flush-max', 'indexEventsPerFlushMax', int(1), store.indexEventsPerFlushMax, 'events', 'events whose index entries (by portfolio, type, time; and as many trade-id keys) one lagging index commit writes'),
  e('store', 'store-index-lag-max-ms', 'indexLagMaxMs', int(1, timerMsMax), store.indexLagMaxMs, 'ms', 'how long index entries wait at most for a full chunk before they are written (queries see unindexed committed events meanwhile)'),
  e('store', 'store-index-lagging-max', 'indexLaggingMax', int(1), store.indexLaggingMax, 'events', 'events (or trade results) whose index entries wait for the lagging index commit; past it new commands are refused (retryable) until it catches up'),
  e('store', 'store-snapshots-kept-per-portfolio-max', 'snapshotsKeptPerPortfolioMax', int(1), store.snapshotsKeptPerPortfolioMax, 'snapshots', 'snapshots kept per portfolio (older ones are deleted)'),
  e('store', 'store-prices-kept-per-symbol-max', 'pricesKeptPerSymbolMax', int(1), store.pricesKeptPerSymbolMax, 'prices', 'historical last prices kept per symbol'),
  e('store', 'store-compact-scanned-per-call-max', 'compactScannedPerCallMax', int(1), store.compactScannedPerCallMax, 'entries', 'time-index entries one compaction pass examines (bounds how long it blocks the main thread)'),
  e('store', 'store-snapshots-per-flush-max', 'snapshotsPerFlushMax', int(1), store.snapshotsPerFlushMax, 'snapshots', 'snapshot records written per commit (bounds one flush on the main thread)'),
  e('store', 'store-owner-dying-wait-ms', 'ownerDyingWaitMs', int(0, timerMsMax), store.ownerDyingWaitMs, 'ms', 'how long a start waits for a data directory whose owner holds its lock but does not answer (dying) before refusing; a live owner is refused at once'),
  e('store', 'store-prices-per-flush-max', 'pricesPerFlushMax', int(1), store.pricesPerFlushMax, 'prices', 'prices written per commit'),
  e('store', 'store-journal-segment-bytes-max', 'journalSegmentBytesMax', int(1 << 16), store.journalSegmentBytesMax, 'bytes', 'size past which the journal (the acknowledging write in front of LMDB) starts a new segment file; a segment is deleted once LMDB has flushed all of it'),
  e('store', 'store-journal-lag-bytes-max', 'journalLagBytesMax', int(1 << 16), store.journalLagBytesMax, 'bytes', 'journal bytes LMDB has not committed yet; past it new commands are refused (retryable) until LMDB catches up (bounds the redo after a crash)'),
  e('store', 'store-journal-unsynced-groups-max', 'journalUnsyncedGroupsMax', int(1), store.journalUnsyncedGroupsMax, 'groups', 'with --sync: journal groups written and waiting for their fdatasync; past it new commands are refused (retryable)'),
  e('store', 'store-journal-redo-transaction-bytes-max', 'journalRedoTransactionBytesMax', int(1 << 16), store.journalRedoTransactionBytesMax, 'bytes', 'journal bytes one LMDB transaction redoes at start (after a crash)'),
  // Server limits.
  e('server', 'import-line-bytes-max', 'limits.importLineBytesMax', int(1), server.importLineBytesMax, 'bytes', 'longest NDJSON line POST /api/v1/trades/import reads; a longer one stops the import at that line'),
  e('server', 'import-trades-in-flight-max', 'limits.importTradesInFlightMax', int(1), server.importTradesInFlightMax, 'trades', 'trades one import has submitted and not yet answered; past it the request body is paused'),
  e('server', 'import-chunk-trades-max', 'limits.importChunkTradesMax', int(1, 1_000_000), server.importChunkTradesMax, 'trades', 'lines of an import validated together and booked as one message per shard and one log append per shard'),
  e('server', 'import-chunks-in-flight-max', 'limits.importChunksInFlightMax', int(1, 1024), server.importChunksInFlightMax, 'chunks', 'chunks of one import booking at once while the next is cut; past it the request body is paused'),
  e('server', 'frame-bytes-max', 'limits.maxPayloadBytes', int(1), server.maxPayloadBytes, 'bytes', 'largest WebSocket frame accepted; a larger one closes the socket with 1009'),
  e('server', 'body-bytes-max', 'limits.maxBodyBytes', int(1), server.maxBodyBytes, 'bytes', 'largest HTTP request body; a larger one is answered 413'),
  e('server', 'idle-timeout-seconds', 'limits.idleTimeoutSeconds', int(1), server.idleTimeoutSeconds, 's', 'a WebSocket silent this long is closed (the server pings before)'),
  e('server', 'backpressure-soft-bytes', 'limits.backpressureSoftBytes', int(1), server.backpressureSoftBytes, 'bytes', 'above this many buffered bytes a socket gets conflated updates instead of deltas (below --backpressure-bytes-max)'),
  e('server', 'backpressure-bytes-max', 'limits.backpressureBytesMax', int(1), server.backpressureBytesMax, 'bytes', 'buffered bytes per socket; a socket past it is closed with 4008'),
  e('server', 'slow-consumer-grace-ms', 'limits.slowConsumerGraceMs', int(1), server.slowConsumerGraceMs, 'ms', 'a socket above the soft bound this long without draining is closed with 4008'),
  e('server', 'backpressure-check-interval-ms', 'limits.backpressureCheckIntervalMs', timerMs(), server.backpressureCheckIntervalMs, 'ms', 'how often buffered amounts are checked'),
  e('server', 'subscriptions-per-connection-max', 'limits.subscriptionsPerConnectionMax', int(1), server.subscriptionsPerConnectionMax, 'portfolios', 'portfolios one /ws connection may subscribe to (also caps one subscribe message)'),
  e('server', 'connections-max', 'limits.connectionsMax', int(1), server.connectionsMax, 'connections', 'open WebSocket connections, all paths together'),
  e('server', 'commands-per-second', 'limits.commandsPerSecond', int(1), server.commandsPerSecond, 'commands/s', 'commands (HTTP /api requests, WS ops) per second per key, per connection without keys; burst 2x; past it 429'),
  e('server', 'connects-per-second', 'limits.connectsPerSecond', int(1), server.connectsPerSecond, 'upgrades/s', 'WebSocket upgrades per second per key, per address without keys; burst 2x'),
  e('server', 'bad-frames-max', 'limits.badFramesMax', int(1), server.badFramesMax, 'frames', 'malformed frames tolerated within --bad-frames-window-ms before the socket is closed with 1008'),
  e('server', 'bad-frames-window-ms', 'limits.badFramesWindowMs', int(1), server.badFramesWindowMs, 'ms', 'window of --bad-frames-max'),
  e('server', 'throttle-min-ms', 'limits.throttleMinMs', int(1), server.throttleMinMs, 'ms', 'smallest throttle_ms a subscription may ask for'),
  e('server', 'throttle-max-ms', 'limits.throttleMaxMs', timerMs(), server.throttleMaxMs, 'ms', 'largest throttle_ms a subscription may ask for'),
  e('server', 'throttle-tick-ms', 'limits.throttleTickMs', timerMs(), server.throttleTickMs, 'ms', 'granularity of the throttle timer wheel'),
  e('server', 'feed-symbols-per-connection-max', 'limits.feedSymbolsPerConnectionMax', int(1), server.feedSymbolsPerConnectionMax, 'symbols', 'symbols one /ws/feed connection may register'),
  e('server', 'ticks-per-batch-max', 'limits.ticksPerBatchMax', int(1), server.ticksPerBatchMax, 'ticks', 'ticks in one POST /api/v1/ticks body or one feed frame'),
  e('server', 'pending-commands-per-connection-max', 'limits.pendingCommandsPerConnectionMax', int(1), server.pendingCommandsPerConnectionMax, 'commands', 'requests of one WebSocket client waiting for an answer; past it new ones are refused'),
  e('server', 'page-limit-max', 'limits.pageLimitMax', int(1), server.pageLimitMax, 'rows', 'largest page of the list and events endpoints'),
  e('server', 'rate-limit-buckets-max', 'limits.rateLimitBucketsMax', int(1), server.rateLimitBucketsMax, 'buckets', 'rate-limit buckets kept in memory (per key or address)'),
  e('server', 'shutdown-grace-ms', 'limits.shutdownGraceMs', timerMs(), server.shutdownGraceMs, 'ms', 'how long shutdown waits for sockets to close before dropping them'),
  // Market data (bars, gaps, market alerts).
  e('market', 'alerts', 'alertsFile', path, null, '', 'market alert rules file (JSON); replaces the rules set by PUT /api/v1/market/alerts', 'none'),
  e('market', 'market-symbols-max', 'limits.symbolsMax', int(1, 10_000_000), market.symbolsMax, 'symbols', 'symbols the bars and alerts track (ticks of further symbols are counted, not aggregated)'),
  e('market', 'market-lateness-ms', 'limits.latenessMs', int(0, dayMs), market.latenessMs, 'ms', "how far behind a symbol's newest tick a tick may be and still revise a closed bar"),
  e('market', 'market-feed-gap-ms', 'limits.feedGapMs', int(1, 7 * dayMs), market.feedGapMs, 'ms', 'silence of one symbol, while others tick, after which a FeedGap is recorded'),
  e('market', 'market-gaps-per-check-max', 'limits.gapsPerCheckMax', int(1, 1_000_000), market.gapsPerCheckMax, 'gaps', 'FeedGap events recorded per check (the next check goes on where it stopped)'),
  e('market', 'market-check-interval-ms', 'limits.checkIntervalMs', timerMs(), market.checkIntervalMs, 'ms', 'how often bars are closed and gaps and silences checked'),
  e('market', 'market-open-bars-checkpoint-interval-ms', 'limits.openBarsCheckpointIntervalMs', timerMs(), market.openBarsCheckpointIntervalMs, 'ms', 'how often open bars are checkpointed to LMDB'),
  e('market', 'market-engine-tape-ticks-max', 'limits.engineTapeTicksMax', int(1), market.engineTapeTicksMax, 'ticks', 'ticks per tape the engine hands off (per batch, or when full)'),
  e('market', 'market-ring-ticks-max', 'limits.ringTicksMax', { type: 'int', min: 2, max: 1 << 28, rule: powerOfTwo }, market.ringTicksMax, 'ticks', 'ticks the ring to the market worker holds; ticks that do not fit are dropped from the bars and counted'),
  e('market', 'market-ring-poll-ms', 'limits.ringPollMs', timerMs(), market.ringPollMs, 'ms', 'how often the market worker reads the ring while ticks come'),
  e('market', 'market-worker-request-timeout-ms', 'limits.workerRequestTimeoutMs', timerMs(), market.workerRequestTimeoutMs, 'ms', 'a market worker request not answered within this is given up'),
  e('market', 'market-bars-per-query-max', 'limits.barsPerQueryMax', int(1), market.barsPerQueryMax, 'bars', 'intervals one HTTP bars query may span (a larger span is answered 400)'),
  e('market', 'market-page-bars-max', 'limits.pageBarsMax', int(1), market.pageBarsMax, 'bars', 'rows of one HTTP bars page'),
  e('market', 'market-history-intervals-max', 'limits.historyIntervalsMax', int(1), market.historyIntervalsMax, 'bars', 'intervals one WebSocket history request may span'),
  e('market', 'market-history-chunk-bars-max', 'limits.historyChunkBarsMax', int(1), market.historyChunkBarsMax, 'bars', 'rows per WebSocket history chunk'),
  e('market', 'market-revisable-bars-max', 'limits.revisableBarsMax', int(1), market.revisableBarsMax, 'bars', 'closed bars kept for late ticks; past it the oldest go and late ticks needing them are dropped'),
  e('market', 'market-alerts-per-reply-max', 'limits.alertsPerReplyMax', int(1), market.alertsPerReplyMax, 'alerts', 'market alerts one tape or check hands back; more are counted as dropped'),
  e('market', 'market-alert-rules-max', 'limits.alertRulesMax', int(1), market.alertRulesMax, 'rules', 'market alert rules'),
  e('market', 'market-alert-counter-rules-max', 'limits.alertCounterRulesMax', int(1), market.alertCounterRulesMax, 'rules', 'distinct rule ids counted in alert statistics'),
  e('market', 'market-pending-writes-max', 'limits.pendingWritesMax', int(1), market.pendingWritesMax, 'writes', 'bar writes queued for the market LMDB; past it the service stops taking tapes (ticks dropped from the bars, counted)'),
  e('market', 'market-writes-per-flush-max', 'limits.writesPerFlushMax', int(1), market.writesPerFlushMax, 'writes', 'bar writes per market commit'),
  e('market', 'market-map-size-bytes', 'limits.mapSizeBytes', int(1 << 20), market.mapSizeBytes, 'bytes', 'initial LMDB map size of <data>/market'),
  // Cluster (NATS JetStream; docs/CLUSTER.md). Without --nats the engine runs as a single node.
  e('cluster', 'nats', 'nats', { type: 'string', lengthMax: 1024 }, null, '', 'NATS server URL(s), comma separated: join a cluster of engine nodes (needs --node-id)', 'none (single node)'),
  e('cluster', 'node-id', 'nodeId', { type: 'string', lengthMax: 64 }, null, '', "this node's id in the cluster ([A-Za-z0-9_-]{1,64}); a live node with the same id makes the start refuse", 'none'),
  e('cluster', 'partitions', 'partitions', int(1, partitionsMax), cluster.partitions, 'partitions', 'partitions portfolios hash into; fixed for the life of a cluster (a node started with another count is refused)'),
  e('cluster', 'cluster-heartbeat-ms', 'heartbeatMs', timerMs(10), cluster.heartbeatMs, 'ms', 'how often a node refreshes its presence and the partitions it owns in the KV bucket'),
  e('cluster', 'cluster-owner-timeout-ms', 'ownerTimeoutMs', timerMs(30), cluster.ownerTimeoutMs, 'ms', 'a partition not refreshed for this long is taken over by another node (>= 3 x --cluster-heartbeat-ms); its old owner stops serving it before'),
  e('cluster', 'cluster-command-reply-timeout-ms', 'commandReplyTimeoutMs', timerMs(), cluster.commandReplyTimeoutMs, 'ms', "how long a node waits for a partition owner's answer before answering partition_unavailable (retryable; the command is applied when an owner reaches it)"),
  e('cluster', 'cluster-commands-in-flight-max', 'commandsInFlightMax', int(1), cluster.commandsInFlightMax, 'commands', 'commands this node has published and waits answers for; past it new ones are refused (retryable)'),
  e('cluster', 'cluster-dedup-window-ms', 'dedupWindowMs', timerMs(1_000), cluster.dedupWindowMs, 'ms', 'JetStream dedup window of the command stream (set when the first node creates it); older duplicates are caught by the trade-id memory'),
  e('cluster', 'cluster-replicas', 'replicas', int(1, 5), cluster.replicas, 'replicas', '1, 3 or 5 JetStream replicas of the command stream and the KV buckets, set by the node that creates them (3 on a three-server NATS cluster)'),
  e('cluster', 'cluster-snapshot-ship-interval-ms', 'snapshotShipIntervalMs', timerMs(0), cluster.snapshotShipIntervalMs, 'ms', 'how often an owner ships a snapshot of each partition it owns whose stream cursor moved, to the mtm_snapshots object store (0 = only on a clean release)'),
  e('cluster', 'cluster-snapshot-read-timeout-ms', 'snapshotReadTimeoutMs', timerMs(10), cluster.snapshotReadTimeoutMs, 'ms', "how long one read of a shipped partition snapshot may take when a node takes the partition over (a read overlapping a put can wait without end); then it is read again"),
  e('cluster', 'cluster-snapshot-ids-max', 'snapshotIdsMax', int(0), cluster.snapshotIdsMax, 'ids', 'trade ids and command ids a shipped partition snapshot carries (every id the partition applied, so a new owner answers a resend older than the dedup window as a duplicate); past it the rest are not carried'),
  e('cluster', 'cluster-start-timeout-ms', 'startTimeoutMs', timerMs(1_000), cluster.startTimeoutMs, 'ms', 'how long a starting node waits for JetStream to answer its setup (the command stream, the buckets, its presence key), retrying each request meanwhile; then the start is refused naming the step'),
  e('cluster', 'cluster-snapshot-read-attempts-max', 'snapshotReadAttemptsMax', int(1, 100), cluster.snapshotReadAttemptsMax, 'reads', "reads of a shipped snapshot one take-over tries before it gives the partition back (keep attempts x read timeout below --cluster-owner-timeout-ms: the claim round waits for it)"),
  // The command line itself.
  e('cli', 'demo', 'demo', bool, false, '', 'seed demo portfolios and run a simulated feed'),
  e('cli', 'stats-interval-ms', 'statsIntervalMs', timerMs(0), 1000, 'ms', 'how often the one-line stats are printed (0 = never)'),
];

/** The environment variable of an option: MTM_ and the name in upper snake case. */
export function envName(name: string): string {
  return `MTM_${name.toUpperCase().replace(/-/g, '_')}`;
}

const byName = new Map(optionTable.map((o) => [o.name, o]));

export function optionEntry(name: string): OptionEntry | undefined {
  return byName.get(name);
}

/** The default as shown to an operator: defaultText, or the value with its unit. */
export function defaultShown(o: OptionEntry): string {
  if (o.defaultText !== undefined) return o.defaultText;
  if (o.default === null) return 'none';
  if (o.kind.type === 'bool') return o.default === true ? 'on' : 'off';
  return o.unit === '' ? String(o.default) : `${String(o.default)} ${o.unit}`;
}
