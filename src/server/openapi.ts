// OpenAPI 3.1 description of the HTTP API, served at GET /openapi.json. Every body and answer schema is
// the one definition the server validates with (src/domain/schemas.ts, src/protocol/): the document
// embeds those objects and emitDocument turns each named one into a $ref under components.schemas.
// test/server.api.test.ts checks that every route of http.ts is here and validates real responses;
// test/schema.test.ts that each request body is the schema its validator compiled.

import { domainEventTypes } from '../domain/types.js';
import {
  CashInput,
  CorporateActionInput,
  CreatePortfolio,
  FxConversionInput,
  Instrument,
  InstrumentInput,
  InstrumentList,
  PortfolioSnapshot,
  PositionLots,
  RiskLimits,
  TradeInput,
  TradeResult,
} from '../domain/schemas.js';
import { fillModes } from '../market/fill.js';
import { timeframes } from '../market/timeframe.js';
import { SymbolField } from '../domain/schemas.js';
import {
  AlertRules,
  BarPage,
  CorporateAction,
  CorporateActionList,
  ErrorBody,
  EventList,
  Health,
  PerformanceQueries,
  PerformanceSummary,
  PortfolioList,
  Ready,
  TickBatch,
  TickIngestResult,
} from '../protocol/rest.js';
import { toJsonSchema } from '../schema.js';
import { marksOpenApiPaths } from './marksHttp.js';
import { defaultLimits, type ServerLimits } from './options.js';

type Json = Record<string, unknown>;

const jsonContent = (schema: Json): Json => ({ 'application/json': { schema } });
/** The schemas the document names, by name: emitDocument replaces each by its $ref. */
const bodies = {
  Error: ErrorBody,
  Snapshot: PortfolioSnapshot,
  PositionLots,
  TradeResult,
  TradeInput,
  CashInput,
  FxConversionInput,
  Instrument,
  InstrumentInput,
  InstrumentList,
  RiskLimits,
  CreatePortfolio,
  CorporateActionInput,
  CorporateAction,
  CorporateActionList,
  PortfolioList,
  EventList,
  Health,
  Ready,
  TickIngestResult,
  PerformanceSummary,
  PerformanceQueries,
  BarPage,
  AlertRules,
};
const ref = (name: keyof typeof bodies): Json => bodies[name] as unknown as Json;
const schemaRef = (name: string): string => `#/components/schemas/${name}`;
const response = (description: string, schema: Json, headers?: Json): Json =>
  headers === undefined ? { description, content: jsonContent(schema) } : { description, content: jsonContent(schema), headers };
const err = (description: string): Json => response(description, ref('Error'));
const retryAfter: Json = { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } };

const common: Json = {
  '401': { $ref: '#/components/responses/Unauthorized' },
  '429': { $ref: '#/components/responses/RateLimited' },
};
const idParam: Json = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,64}$' } };
/** A non-trade command's idempotency id: used in cluster mode (docs/CLUSTER.md), ignored by a single node. */
const commandIdParam: Json = {
  name: 'command_id',
  in: 'query',
  required: false,
  description: 'Cluster mode: the command is applied at most once per portfolio with this id; a 503 partition_unavailable answer names the id to resend with. A single node ignores it.',
  schema: { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,128}$' },
};
const secured = [{ bearer: [] }];

function op(summary: string, responses: Json, extra: Json = {}): Json {
  return { summary, security: secured, responses: { ...responses, ...common }, ...extra };
}

/** The document for a server with these limits (page and batch sizes are the server's own). */
export function openApiDocument(limits: Pick<ServerLimits, 'ticksPerBatchMax' | 'pageLimitMax'> = defaultLimits): Json {
  return emitDocument({
    openapi: '3.1.0',
    info: {
      title: 'mtm-engine',
      version: '1',
      description:
        'Real-time mark-to-market engine. Errors are {"error":{"code","message"}}. A portfolio outside the key\'s scopes is answered exactly like a missing one (404 portfolio_not_found). See docs/PROTOCOL.md.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API key from the keys file (--keys). Not needed when the server runs without keys.' } },
      responses: {
        Unauthorized: err('Missing or unknown API key'),
        RateLimited: response('Too many requests for this key (or address without keys)', ref('Error'), retryAfter),
        NotFound: err('No such portfolio, or outside the key\'s scopes (the same answer)'),
        Forbidden: err('The key sees the portfolio but lacks the scope for this action'),
        BadRequest: err('Invalid input: the error names the field and the rule'),
        Conflict: err('Refused in the portfolio\'s current state (closed, paused, insufficient cash, limits, duplicate id)'),
        TooLarge: err('Body larger than maxBodyBytes (the connection is closed)'),
        UnsupportedMediaType: err('The body is not in a content type this route reads'),
        Unavailable: response('Shard restarting or engine closing; retry', ref('Error'), retryAfter),
      },
    },
    paths: {
      '/health': {
        get: {
          summary: 'Liveness: uWS binary (native|fallback) and kernel (wasm|js)',
          security: [],
          responses: { '200': response('Alive', ref('Health')) },
        },
      },
      '/ready': {
        get: {
          summary: 'Readiness: 200 once recovery finished and while not shutting down, else 503',
          security: [],
          responses: { '200': response('Ready', ref('Ready')), '503': response('Not ready', ref('Ready'), retryAfter) },
        },
      },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1', content: jsonContent({ type: 'object' }) } } } },
      '/asyncapi.json': { get: { summary: 'The WebSocket protocols (AsyncAPI 3)', security: [], responses: { '200': { description: 'AsyncAPI 3.0', content: jsonContent({ type: 'object' }) } } } },
      '/api/v1/portfolios': {
        get: op(
          'Portfolios visible to the key, by id, paged',
          { '200': response('A page', ref('PortfolioList')), '400': { $ref: '#/components/responses/BadRequest' } },
          {
            parameters: [
              { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: limits.pageLimitMax, default: 100 } },
              { name: 'after', in: 'query', description: 'Id of the last portfolio of the previous page (its `next`)', schema: { type: 'string' } },
            ],
          },
        ),
        post: op(
          'Create a portfolio (scope admin)',
          {
            '201': response('Created', ref('Snapshot'), { Location: { schema: { type: 'string' } } }),
            '400': { $ref: '#/components/responses/BadRequest' },
            '403': { $ref: '#/components/responses/Forbidden' },
            '409': { $ref: '#/components/responses/Conflict' },
            '413': { $ref: '#/components/responses/TooLarge' },
          },
          { requestBody: { required: false, content: jsonContent(ref('CreatePortfolio')) } },
        ),
      },
      '/api/v1/portfolios/{id}': {
        parameters: [idParam],
        get: op(
          'Snapshot now, or at a past instant with as_of (needs a data dir)',
          {
            '200': response('Snapshot', ref('Snapshot')),
            '400': { $ref: '#/components/responses/BadRequest' },
            '403': { $ref: '#/components/responses/Forbidden' },
            '404': { $ref: '#/components/responses/NotFound' },
            '503': { $ref: '#/components/responses/Unavailable' },
          },
          {
            parameters: [
              { name: 'as_of', in: 'query', description: 'ISO-8601 instant or epoch ms', schema: { type: 'string' } },
              { name: 'lots', in: 'query', description: 'true: include the open lots of every position (fifo and lifo portfolios)', schema: { type: 'string', enum: ['true', 'false', '1', '0'] } },
            ],
          },
        ),
        delete: op('Close the portfolio (scope admin)', {
          '200': response('Closed', ref('Snapshot')),
          '403': { $ref: '#/components/responses/Forbidden' },
          '404': { $ref: '#/components/responses/NotFound' },
          '409': { $ref: '#/components/responses/Conflict' },
        }, { parameters: [commandIdParam] }),
      },
      '/api/v1/portfolios/{id}/positions/{symbol}/lots': {
        parameters: [idParam, { name: 'symbol', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,32}$' } }],
        get: op('Open lots of one position, oldest first (empty for average-cost portfolios, which keep none)', {
          '200': response('Lots', ref('PositionLots')),
          '400': { $ref: '#/components/responses/BadRequest' },
          '403': { $ref: '#/components/responses/Forbidden' },
          '404': { $ref: '#/components/responses/NotFound' },
          '503': { $ref: '#/components/responses/Unavailable' },
        }),
      },
      '/api/v1/portfolios/{id}/trades': {
        parameters: [idParam],
        post: op(
          'Apply a trade (scope trade); answered after the durable commit. The same trade_id again answers 200 with the first result. With dry_run true: a what-if, answered 200 with the figures the trade would produce and every limit it would breach; nothing is booked or logged and the (unused) trade_id stays free.',
          {
            '201': response('Applied', ref('TradeResult')),
            '200': response('Already applied earlier: the first result; or a what-if (dry_run)', ref('TradeResult')),
            '400': { $ref: '#/components/responses/BadRequest' },
            '403': { $ref: '#/components/responses/Forbidden' },
            '404': { $ref: '#/components/responses/NotFound' },
            '409': { $ref: '#/components/responses/Conflict' },
            '413': { $ref: '#/components/responses/TooLarge' },
            '503': { $ref: '#/components/responses/Unavailable' },
          },
          { requestBody: { required: true, content: jsonContent(ref('TradeInput')) } },
        ),
      },
      '/api/v1/portfolios/{id}/cash': {
        parameters: [idParam, commandIdParam],
        post: op(
          'Deposit or withdraw cash (scope trade), in the base currency or any other (currency); a foreign move changes capital by its value at the latest rate (none seen: 409 fx_rate_unknown)',
          {
            '200': response('Snapshot after', ref('Snapshot')),
            '400': { $ref: '#/components/responses/BadRequest' },
            '403': { $ref: '#/components/responses/Forbidden' },
            '404': { $ref: '#/components/responses/NotFound' },
            '409': { $ref: '#/components/responses/Conflict' },
          },
          { requestBody: { required: true, content: jsonContent(ref('CashInput')) } },
        ),
      },
      '/api/v1/portfolios/{id}/fx-conversions': {
        parameters: [idParam, commandIdParam],
        post: op(
          'Move cash between two balances at the given rate (scope trade): amount of from_currency out, amount x rate of to_currency in; capital unchanged',
          {
            '200': response('Snapshot after', ref('Snapshot')),
            '400': { $ref: '#/components/responses/BadRequest' },
            '403': { $ref: '#/components/responses/Forbidden' },
            '404': { $ref: '#/components/responses/NotFound' },
            '409': { $ref: '#/components/responses/Conflict' },
          },
          { requestBody: { required: true, content: jsonContent(ref('FxConversionInput')) } },
        ),
      },
      '/api/v1/instruments': {
        get: op('Every instrument defined (reference data), by symbol (any valid key)', { '200': response('Instruments', ref('InstrumentList')) }),
      },
      '/api/v1/instruments/{symbol}': {
        parameters: [{ name: 'symbol', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,32}$' } }],
        get: op('One instrument (any valid key); 404 not_found when never defined (it then trades at multiplier 1, in the trade\'s currency)', {
          '200': response('Instrument', ref('Instrument')),
          '400': { $ref: '#/components/responses/BadRequest' },
          '404': err('No instrument of that symbol'),
        }),
        put: op(
          'Define or redefine an instrument (scope admin): asset_class, currency, multiplier, tick_size?, description?. Durable (an InstrumentDefined event under `_instruments`) before the answer. A change of multiplier or currency of an instrument someone holds is 409 instrument_held (a contract_adjustment corporate action changes a held multiplier).',
          {
            '200': response('The definition in force', ref('Instrument')),
            '400': { $ref: '#/components/responses/BadRequest' },
            '403': { $ref: '#/components/responses/Forbidden' },
            '409': { $ref: '#/components/responses/Conflict' },
            '413': { $ref: '#/components/responses/TooLarge' },
            '503': { $ref: '#/components/responses/Unavailable' },
          },
          { requestBody: { required: true, content: jsonContent(ref('InstrumentInput')) } },
        ),
      },
      '/api/v1/portfolios/{id}/pause': {
        parameters: [idParam, commandIdParam],
        post: op('Pause trading (scope trade)', {
          '200': response('Snapshot after', ref('Snapshot')),
          '403': { $ref: '#/components/responses/Forbidden' },
          '404': { $ref: '#/components/responses/NotFound' },
          '409': { $ref: '#/components/responses/Conflict' },
        }),
      },
      '/api/v1/portfolios/{id}/resume': {
        parameters: [idParam, commandIdParam],
        post: op('Resume trading (scope trade)', {
          '200': response('Snapshot after', ref('Snapshot')),
          '403': { $ref: '#/components/responses/Forbidden' },
          '404': { $ref: '#/components/responses/NotFound' },
          '409': { $ref: '#/components/responses/Conflict' },
        }),
      },
      '/api/v1/portfolios/{id}/limits': {
        parameters: [idParam, commandIdParam],
        put: op(
          'Set risk limits (scope trade); null clears a limit',
          {
            '200': response('Snapshot after', ref('Snapshot')),
            '400': { $ref: '#/components/responses/BadRequest' },
            '403': { $ref: '#/components/responses/Forbidden' },
            '404': { $ref: '#/components/responses/NotFound' },
            '409': { $ref: '#/components/responses/Conflict' },
          },
          { requestBody: { required: true, content: jsonContent(ref('RiskLimits')) } },
        ),
      },
      '/api/v1/portfolios/{id}/events': {
        parameters: [idParam],
        get: op(
          'Audit trail of the portfolio, ascending by seq; page with after_seq = next_after_seq. Id `_market`: the market events (MarketAlert, FeedGap), scope read:market',
          {
            '200': response('Events', ref('EventList')),
            '400': { $ref: '#/components/responses/BadRequest' },
            '403': { $ref: '#/components/responses/Forbidden' },
            '404': { $ref: '#/components/responses/NotFound' },
          },
          {
            parameters: [
              { name: 'type', in: 'query', schema: { type: 'string', enum: [...domainEventTypes] } },
              { name: 'from', in: 'query', description: 'ISO-8601 or epoch ms, inclusive', schema: { type: 'string' } },
              { name: 'to', in: 'query', description: 'ISO-8601 or epoch ms, inclusive', schema: { type: 'string' } },
              { name: 'after_seq', in: 'query', schema: { type: 'integer', minimum: 0 } },
              { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: limits.pageLimitMax, default: 100 } },
            ],
          },
        ),
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics (when the server was started with a metrics source); any valid key when keys are configured',
          security: secured,
          responses: {
            '200': { description: 'Prometheus text exposition', content: { 'text/plain': { schema: { type: 'string' } } } },
            '404': err('Metrics are not enabled on this server'),
            ...common,
          },
        },
      },
      '/api/v1/performance/summary': {
        get: op(
          'Last minute at a glance: p50/p95/p99 latencies, rates, incremental and conflation ratios, shards (busiest first named) and plain-language hints on bottlenecks; any valid key when keys are configured',
          { '200': response('Summary', ref('PerformanceSummary')), '404': err('Performance summaries are not enabled on this server') },
        ),
      },
      '/api/v1/performance/queries': {
        get: op(
          'Per-route HTTP figures over the last minute (count, error ratios, p50/p95/p99), slowest first; any valid key when keys are configured',
          { '200': response('Routes', ref('PerformanceQueries')), '404': err('Performance summaries are not enabled on this server') },
        ),
      },
      ...marketPaths(),
      ...marksOpenApiPaths(op, response),
      '/api/v1/corporate-actions': {
        post: op(
          'Enter a corporate action (scope admin): split, dividend, symbol_change or contract_adjustment (a defined instrument\'s new multiplier; holdings rescaled so quantity x multiplier is kept), applied to every holding portfolio at once when its time comes (at once when due now; answered after the durable commit). The same action_id again answers 200 with the action as it stands; another body under it is 400. See docs/PROTOCOL.md.',
          {
            '201': response('Entered (and applied when due now)', ref('CorporateAction')),
            '200': response('Entered earlier under this action_id', ref('CorporateAction')),
            '400': { $ref: '#/components/responses/BadRequest' },
            '403': { $ref: '#/components/responses/Forbidden' },
            '409': { $ref: '#/components/responses/Conflict' },
            '413': { $ref: '#/components/responses/TooLarge' },
            '503': { $ref: '#/components/responses/Unavailable' },
          },
          { requestBody: { required: true, content: jsonContent(ref('CorporateActionInput')) } },
        ),
        get: op(
          'Corporate actions in the order they were entered, with their status (pending, applied, failed) and steps done; page with after_seq = next_after_seq (any valid key)',
          { '200': response('A page', ref('CorporateActionList')), '400': { $ref: '#/components/responses/BadRequest' } },
          {
            parameters: [
              { name: 'after_seq', in: 'query', schema: { type: 'integer', minimum: 0 } },
              { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: limits.pageLimitMax, default: 100 } },
            ],
          },
        ),
      },
      '/api/v1/trades/import': {
        post: op(
          'Bulk import (scope trade: on every portfolio a line names): NDJSON in, one trade a line with its portfolio_id; NDJSON out, streamed, one answer a line in input order ({line, portfolio_id, trade_id, result: applied|duplicate|error, error?}), a {line, result: stopped, error} line when a line is not JSON or longer than importLineBytesMax, then {summary}. Idempotent per trade id; see docs/PROTOCOL.md',
          {
            '200': { description: 'NDJSON answers, in input order, then the summary line', content: { 'application/x-ndjson': { schema: { type: 'string' } } } },
            '415': { $ref: '#/components/responses/UnsupportedMediaType' },
          },
          { requestBody: { required: true, content: { 'application/x-ndjson': { schema: { type: 'string', description: 'one JSON trade a line, each with portfolio_id' } } } } },
        ),
      },
      '/api/v1/ticks': {
        post: op(
          'Ingest price ticks (scope feed); bad ticks are rejected by index, the rest applied, except suspect ones (moving a price more than suspectMovePct), which are held and counted in `held`',
          {
            '202': response('Accepted', ref('TickIngestResult')),
            '400': { $ref: '#/components/responses/BadRequest' },
            '403': { $ref: '#/components/responses/Forbidden' },
            '413': { $ref: '#/components/responses/TooLarge' },
          },
          { requestBody: { required: true, content: jsonContent(TickBatch(limits.ticksPerBatchMax) as unknown as Json) } },
        ),
      },
    },
  });
}

/** Named schemas become $refs; each is listed once under components.schemas. */
function emitDocument(doc: Json): Json {
  const schemas: Record<string, unknown> = {};
  const out = toJsonSchema(doc, schemaRef, schemas) as Json;
  (out.components as Json).schemas = schemas;
  return out;
}

function marketPaths(): Json {
  const r = (name: string): Json => ({ $ref: `#/components/responses/${name}` });
  const disabled = response('Market data is not enabled on this server', ref('Error'));
  const str: Json = { type: 'string' };
  const tf: Json = { type: 'string', enum: [...timeframes] };
  const fill: Json = { type: 'string', enum: [...fillModes] };
  return {
    '/api/v1/bars/{symbol}': {
      parameters: [{ name: 'symbol', in: 'path', required: true, description: 'URL-encoded (BTC%2FUSD)', schema: SymbolField() }],
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
