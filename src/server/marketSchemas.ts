// JSON Schemas and API-description pieces of market data: openapi.ts and asyncapi.ts merge them in;
// test/market.api.test.ts validates real answers and frames against them.

import { timeframes } from '../market/timeframe.js';
import { fillModes } from '../market/fill.js';

type Schema = Record<string, unknown>;

const num: Schema = { type: 'number' };
const int: Schema = { type: 'integer' };
const str: Schema = { type: 'string' };
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema => ({ type: 'object', properties, required });
const requestId: Schema = { oneOf: [{ type: 'string', minLength: 1, maxLength: 128 }, { type: 'integer' }] };
const symbol: Schema = { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,32}$' };
const tf: Schema = { type: 'string', enum: [...timeframes] };
const fill: Schema = { type: 'string', enum: [...fillModes] };
const instant: Schema = { oneOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] };
const nullableNum: Schema = { type: ['number', 'null'] };

const ruleBase = { id: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,64}$' }, name: { type: 'string', maxLength: 128 }, cooldown_ms: { type: 'integer', minimum: 0 } };

export const marketSchemas: Record<string, Schema> = {
  Bar: obj({
    symbol,
    tf,
    start: { type: 'integer', description: 'Bucket start, epoch ms UTC (weeks start on Monday)' },
    open: num,
    high: num,
    low: num,
    close: num,
    volume: { type: 'number', minimum: 0, description: 'Sum of tick sizes (ticks without a size count in OHLC and trades only)' },
    pv: { type: 'number', minimum: 0, description: 'Sum of price x size' },
    vwap: nullableNum,
    trades: { type: 'integer', minimum: 1 },
    first_ts: int,
    last_ts: int,
  }),
  BarRow: obj({
    symbol,
    tf,
    start: int,
    open: nullableNum,
    high: nullableNum,
    low: nullableNum,
    close: nullableNum,
    volume: { type: 'number', minimum: 0 },
    pv: { type: 'number', minimum: 0 },
    vwap: nullableNum,
    trades: { type: 'integer', minimum: 0 },
    first_ts: { type: ['integer', 'null'] },
    last_ts: { type: ['integer', 'null'] },
    filled: { type: 'boolean', description: 'true: an interval without ticks, filled as the query asked (previous close, or nulls)' },
  }),
  BarPage: obj({
    symbol,
    tf,
    from: int,
    to: int,
    fill,
    bars: { type: 'array', items: ref('BarRow') },
    next_cursor: { type: ['string', 'null'], description: 'Pass as cursor (same query) for the next page; null on the last page' },
  }),
  AlertRule: {
    oneOf: [
      obj({ ...ruleBase, kind: { const: 'move' }, move_pct: { type: 'number', exclusiveMinimum: 0, maximum: 1000 }, window_ms: { type: 'integer', minimum: 1 } }, ['id', 'kind', 'move_pct', 'window_ms']),
      obj({ ...ruleBase, kind: { const: 'zscore' }, z: { type: 'number', exclusiveMinimum: 0, maximum: 100 }, returns: { type: 'integer', minimum: 2, maximum: 10000 } }, ['id', 'kind', 'z', 'returns']),
      obj({ ...ruleBase, kind: { const: 'silence' }, silent_ms: { type: 'integer', minimum: 1 } }, ['id', 'kind', 'silent_ms']),
    ],
  },
  AlertRules: obj({ rules: { type: 'array', items: ref('AlertRule') } }),

  // ---- WebSocket, server -> client ----
  HistoryChunkMessage: obj({ type: { const: 'history_chunk' }, id: requestId, bars: { type: 'array', items: ref('BarRow') } }),
  ProgressMessage: obj({
    type: { const: 'progress' },
    id: requestId,
    done: { type: 'integer', minimum: 0, description: 'Intervals of tf covered so far' },
    total: { type: 'integer', minimum: 0, description: 'Intervals of tf in from..to' },
  }),
  HistoryEndMessage: obj(
    { type: { const: 'history_end' }, id: requestId, bars: { type: 'integer', minimum: 0 }, cancelled: { type: 'boolean' } },
    ['type', 'id', 'cancelled'],
  ),
  BarsSubscribedMessage: obj({ type: { const: 'bars_subscribed' }, id: requestId, symbols: { type: 'array', items: symbol }, tf }, ['type', 'symbols', 'tf']),
  BarsUnsubscribedMessage: obj({ type: { const: 'bars_unsubscribed' }, id: requestId, symbols: { type: 'array', items: symbol }, tf }, ['type', 'symbols', 'tf']),
  BarMessage: obj({
    type: { const: 'bar' },
    change: { type: 'string', enum: ['open', 'closed', 'revised'], description: 'open: the open bar changed; closed: its final state; revised: a closed bar changed by a late tick' },
    bar: ref('Bar'),
  }),

  // ---- WebSocket, client -> server ----
  HistoryOp: obj(
    { op: { const: 'history' }, id: requestId, symbol, tf, from: instant, to: instant, fill },
    ['op', 'id', 'symbol', 'tf', 'from'],
  ),
  CancelOp: obj({ op: { const: 'cancel' }, id: requestId }),
  SubscribeBarsOp: obj({ op: { const: 'subscribe_bars' }, id: requestId, symbols: { type: 'array', minItems: 1, maxItems: 256, items: symbol }, tf }, ['op', 'symbols', 'tf']),
  UnsubscribeBarsOp: obj({ op: { const: 'unsubscribe_bars' }, id: requestId, symbols: { type: 'array', minItems: 1, maxItems: 256, items: symbol }, tf }, ['op', 'symbols', 'tf']),
};

/** AsyncAPI message name -> payload schema name, and which way each goes on /ws. */
export const marketAsyncApiMessages: Record<string, string> = {
  History: 'HistoryOp',
  Cancel: 'CancelOp',
  SubscribeBars: 'SubscribeBarsOp',
  UnsubscribeBars: 'UnsubscribeBarsOp',
  HistoryChunk: 'HistoryChunkMessage',
  Progress: 'ProgressMessage',
  HistoryEnd: 'HistoryEndMessage',
  BarsSubscribed: 'BarsSubscribedMessage',
  BarsUnsubscribed: 'BarsUnsubscribedMessage',
  Bar: 'BarMessage',
};
export const marketMainIn = ['History', 'Cancel', 'SubscribeBars', 'UnsubscribeBars'];
export const marketMainOut = ['HistoryChunk', 'Progress', 'HistoryEnd', 'BarsSubscribed', 'BarsUnsubscribed', 'Bar'];

type Json = Record<string, unknown>;

/** OpenAPI paths of the market routes; `op` and `response` are openapi.ts's helpers. */
export function marketOpenApiPaths(op: (summary: string, responses: Json, extra?: Json) => Json, response: (description: string, schema: Json) => Json): Json {
  const r = (name: string): Json => ({ $ref: `#/components/responses/${name}` });
  const disabled = response('Market data is not enabled on this server', ref('Error'));
  return {
    '/api/v1/bars/{symbol}': {
      parameters: [{ name: 'symbol', in: 'path', required: true, description: 'URL-encoded (BTC%2FUSD)', schema: symbol }],
      get: op(
        'OHLCV and VWAP bars of one symbol (scope read:market), oldest first, the open bar included; paged with cursor = next_cursor',
        { '200': response('A page of bars', ref('BarPage')), '400': r('BadRequest'), '403': r('Forbidden'), '404': disabled },
        {
          parameters: [
            { name: 'tf', in: 'query', required: true, schema: tf },
            { name: 'from', in: 'query', required: true, description: 'ISO-8601 (with a zone) or epoch ms; the interval holding it is the first', schema: str },
            { name: 'to', in: 'query', description: 'ISO-8601 or epoch ms, exclusive; default now. At most barsPerQueryMax intervals from from.', schema: str },
            { name: 'fill', in: 'query', description: 'Intervals without ticks: omitted (none), carrying the previous close (previous), or with null prices (null)', schema: { ...fill, default: 'none' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, default: 1000 } },
            { name: 'cursor', in: 'query', description: 'next_cursor of the previous page', schema: str },
          ],
        },
      ),
    },
    '/api/v1/market/alerts': {
      get: op('The market alert rules (scope admin)', { '200': response('Rules', ref('AlertRules')), '403': r('Forbidden'), '404': disabled }),
      put: op(
        'Replace the market alert rules (scope admin); their windows and cooldowns start over; kept across restarts unless --alerts names a file',
        { '200': response('Rules now in force', ref('AlertRules')), '400': r('BadRequest'), '403': r('Forbidden'), '404': disabled, '413': r('TooLarge'), '503': r('Unavailable') },
        { requestBody: { required: true, content: { 'application/json': { schema: ref('AlertRules') } } } },
      ),
    },
  };
}
