// The one table of operating errors. Programmer errors are assertions (see assert.ts);
// everything a client, a feed or the disk can cause is one of these codes, returned, never thrown.
// Each message names the field and the rule it broke.

export const ErrorCode = {
  // input validation
  invalid_field: 'invalid_field',
  invalid_json: 'invalid_json',
  invalid_symbol: 'invalid_symbol',
  invalid_price: 'invalid_price',
  invalid_quantity: 'invalid_quantity',
  invalid_side: 'invalid_side',
  invalid_fee: 'invalid_fee',
  invalid_amount: 'invalid_amount',
  invalid_timestamp: 'invalid_timestamp',
  invalid_limits: 'invalid_limits',
  invalid_id: 'invalid_id',
  invalid_currency: 'invalid_currency',
  invalid_fx_rate: 'invalid_fx_rate',
  invalid_lots: 'invalid_lots',
  unknown_op: 'unknown_op',
  payload_too_large: 'payload_too_large',
  /** A request body in a content type the route does not read (trade import takes NDJSON). */
  unsupported_media_type: 'unsupported_media_type',
  // state
  portfolio_not_found: 'portfolio_not_found',
  portfolio_exists: 'portfolio_exists',
  portfolio_closed: 'portfolio_closed',
  portfolio_paused: 'portfolio_paused',
  portfolio_not_paused: 'portfolio_not_paused',
  trade_id_conflict: 'trade_id_conflict',
  insufficient_cash: 'insufficient_cash',
  fx_rate_unknown: 'fx_rate_unknown',
  symbol_not_found: 'symbol_not_found',
  /** A multiplier or currency change of an instrument someone holds (only a contract adjustment may). */
  instrument_held: 'instrument_held',
  suspect_tick_not_found: 'suspect_tick_not_found',
  /** A tick whose source ts is before the latest split's effective time of its symbol: a pre-split print. */
  pre_split_tick: 'pre_split_tick',
  // limits
  limit_exceeded: 'limit_exceeded',
  rate_limited: 'rate_limited',
  // availability
  shard_restarting: 'shard_restarting',
  engine_closed: 'engine_closed',
  store_failed: 'store_failed',
  /** A cluster node refused to start or join: another partition count, a node id in use (docs/CLUSTER.md). */
  cluster_refused: 'cluster_refused',
  /** No owner of the command's partition answered within commandReplyTimeoutMs (failover or handover in progress). */
  partition_unavailable: 'partition_unavailable',
  /** An operation a cluster node does not run yet (corporate actions, instrument definitions: docs/CLUSTER.md). */
  cluster_unsupported: 'cluster_unsupported',
  // access
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  not_found: 'not_found',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface EngineError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly field?: string;
  /** true when the same request may succeed later (shard restarting, rate limited). */
  readonly retryable?: boolean;
  /**
   * Cluster: the id a command that timed out (partition_unavailable) was published with; resending it
   * with this command_id applies it at most once (docs/CLUSTER.md).
   */
  readonly command_id?: string;
}

export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: EngineError };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail(code: ErrorCode, message: string, field?: string, retryable?: boolean): { ok: false; error: EngineError } {
  const error: EngineError = field === undefined ? { code, message } : { code, message, field };
  return { ok: false, error: retryable ? { ...error, retryable: true } : error };
}

/** HTTP status for each code: the server maps errors through this table and nowhere else. */
export const httpStatusOf: Record<ErrorCode, number> = {
  invalid_field: 400,
  invalid_json: 400,
  invalid_symbol: 400,
  invalid_price: 400,
  invalid_quantity: 400,
  invalid_side: 400,
  invalid_fee: 400,
  invalid_amount: 400,
  invalid_timestamp: 400,
  invalid_limits: 400,
  invalid_id: 400,
  invalid_currency: 400,
  invalid_fx_rate: 400,
  invalid_lots: 400,
  unknown_op: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  portfolio_not_found: 404,
  portfolio_exists: 409,
  portfolio_closed: 409,
  portfolio_paused: 409,
  portfolio_not_paused: 409,
  trade_id_conflict: 409,
  insufficient_cash: 409,
  fx_rate_unknown: 409,
  symbol_not_found: 404,
  instrument_held: 409,
  suspect_tick_not_found: 404,
  pre_split_tick: 409,
  limit_exceeded: 409,
  rate_limited: 429,
  shard_restarting: 503,
  engine_closed: 503,
  store_failed: 503,
  cluster_refused: 503,
  partition_unavailable: 503,
  cluster_unsupported: 501,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
};

/** The HTTP status of an error code: the one mapping every answer goes through (500 for a code the table lacks). */
export function httpStatusFor(code: string): number {
  return httpStatusOf[code as ErrorCode] ?? 500;
}

/** The one engine_closed answer (retryable where the caller may retry against a restarted engine). */
export function engineClosed(retryable = false): { ok: false; error: EngineError } {
  return fail(ErrorCode.engine_closed, 'engine is closed', undefined, retryable);
}

/** The one answer to a command while the store is behind (pendingWritesMax reached; retryable). */
export function storeBehind(): { ok: false; error: EngineError } {
  return fail(ErrorCode.limit_exceeded, 'store writes pending must stay <= pendingWritesMax; retry shortly', undefined, true);
}

/** The one shard_restarting answer: a command reached a shard that is being restarted (retryable). */
export function shardRestartingError(shard: number): EngineError {
  return { code: ErrorCode.shard_restarting, message: `shard ${shard} is restarting; retry shortly`, retryable: true };
}
