// Proves that one definition per message drives both the validators and the published documents
// (issue 18, item 3), and that answers still name the field and the rule:
// - every OpenAPI request body is, byte for byte, the JSON Schema of the validator the server compiles
//   for it, and every AsyncAPI client op the schema the WebSocket parser compiles (limits included);
// - the error code a document annotates on a field (x-error-code) is the code a value failing that
//   field is answered with, field named, message "<field> <rule>";
// - a real server answers HTTP, /ws and /ws/feed refusals with those codes, fields and rules, and a
//   trade validated at the server is applied once (engine.tradeValidated, no second validation).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ErrorCode } from '../src/errors.js';
import { Validator, componentName, toJsonSchema } from '../src/schema.js';
import { cashValidator, createPortfolioValidator, fxConversionValidator, limitsValidator, tradeValidator, validateTrade } from '../src/domain/validate.js';
import { ContractAdjustmentInput, DividendInput, InstrumentInput, SplitInput, SymbolChangeInput } from '../src/domain/schemas.js';
import { openApiDocument } from '../src/server/openapi.js';
import { asyncApiDocument } from '../src/server/asyncapi.js';
import { defaultLimits } from '../src/server/options.js';
import { validators } from '../src/protocol/parse.js';
import { TickBatch } from '../src/protocol/rest.js';
import { ruleValidators } from '../src/market/alertRules.js';
import { TestSocket, http, isType, startHarness, type Harness } from './support/serverHarness.js';

const refOf = (name: string) => `#/components/schemas/${name}`;
const emitted = (schema: unknown) => toJsonSchema(schema, refOf, {});
const limits = { ...defaultLimits, subscriptionsPerConnectionMax: 17, throttleMinMs: 20, throttleMaxMs: 5000, ticksPerBatchMax: 321, feedSymbolsPerConnectionMax: 99, pageLimitMax: 50 };

describe('documents and validators share one definition', () => {
  const openapi = openApiDocument(limits) as any;
  const asyncapi = asyncApiDocument(limits) as any;
  const resolve = (doc: any, s: any) => (s.$ref ? s.$ref.split('/').slice(1).reduce((o: any, k: string) => o[k], doc) : s);

  it('every OpenAPI request body is the schema its validator compiled', () => {
    const corporate = [SplitInput, DividendInput, SymbolChangeInput, ContractAdjustmentInput];
    // The validators the server builds for each body (http.ts, commands via validate.ts, the corporate desk).
    const byRoute: Record<string, unknown> = {
      'POST /api/v1/portfolios': createPortfolioValidator.schema,
      'POST /api/v1/portfolios/{id}/trades': tradeValidator.schema,
      'POST /api/v1/portfolios/{id}/cash': cashValidator.schema,
      'PUT /api/v1/portfolios/{id}/limits': limitsValidator.schema,
      'POST /api/v1/portfolios/{id}/fx-conversions': fxConversionValidator.schema,
      'PUT /api/v1/instruments/{symbol}': InstrumentInput,
      'POST /api/v1/ticks': TickBatch(limits.ticksPerBatchMax),
      'POST /api/v1/corporate-actions': null, // a union of the four below, one validator per kind
      'PUT /api/v1/market/alerts': null, // {rules: [...]}, each rule by the validator of its kind
    };
    const seen: string[] = [];
    for (const [path, ops] of Object.entries(openapi.paths) as [string, any][]) {
      for (const [method, op] of Object.entries(ops) as [string, any][]) {
        if (method === 'parameters' || op.requestBody === undefined) continue;
        const route = `${method.toUpperCase()} ${path}`;
        // NDJSON, a trade a line: each line is checked by engine.trade, the in-process boundary.
        if (op.requestBody.content['application/json'] === undefined) {
          expect(route).toBe('POST /api/v1/trades/import');
          continue;
        }
        seen.push(route);
        expect(Object.keys(byRoute), route).toContain(route);
        const doc = resolve(openapi, op.requestBody.content['application/json'].schema);
        if (route === 'PUT /api/v1/market/alerts') {
          const rule = resolve(openapi, doc.properties.rules.items);
          expect(rule.anyOf.map((b: any) => resolve(openapi, b))).toEqual(Object.values(ruleValidators).map((v) => emitted(v.schema)));
          continue;
        }
        if (route === 'POST /api/v1/corporate-actions') {
          expect(doc.anyOf.map((b: any) => resolve(openapi, b))).toEqual(corporate.map((c) => emitted(c)));
          continue;
        }
        expect(doc, route).toEqual(emitted(byRoute[route]));
      }
    }
    expect(seen.sort()).toEqual(Object.keys(byRoute).sort());
    // The limits are the server's own.
    expect(resolve(openapi, openapi.paths['/api/v1/ticks'].post.requestBody.content['application/json'].schema).maxItems).toBe(321);
  });

  it('every AsyncAPI client op is the schema the WebSocket parser compiled, with the server limits', () => {
    const v = validators(limits);
    const ops: Record<string, Validator<any>> = {
      Subscribe: v.main.SubscribeOp,
      Unsubscribe: v.main.UnsubscribeOp,
      Resync: v.main.ResyncOp,
      SubscribeEvents: v.main.SubscribeEventsOp,
      UnsubscribeEvents: v.main.UnsubscribeEventsOp,
      Trade: v.main.TradeOp,
      Ping: v.main.PingOp,
      History: v.main.HistoryOp,
      Cancel: v.main.CancelOp,
      SubscribeBars: v.main.SubscribeBarsOp,
      UnsubscribeBars: v.main.UnsubscribeBarsOp,
      FeedRegister: v.feed.FeedRegisterOp,
      FeedTicks: v.feed.FeedTicksOp,
    };
    const received = [...asyncapi.operations.mainReceive.messages, ...asyncapi.operations.feedReceive.messages]
      .map((m: any) => m.$ref.split('/').pop())
      .filter((n: string) => !n.endsWith('Binary'));
    expect(received.sort()).toEqual(Object.keys(ops).sort());
    for (const [name, validator] of Object.entries(ops)) {
      const payload = resolve(asyncapi, asyncapi.components.messages[name].payload);
      expect(payload, name).toEqual(emitted(validator.schema));
      expect(asyncapi.components.messages[name].payload.$ref).toBe(refOf(componentName(validator.schema) as string));
    }
    const subscribe = asyncapi.components.schemas.SubscribeOp;
    expect(subscribe.properties.portfolios.maxItems).toBe(17);
    expect(JSON.stringify(subscribe.properties.throttle_ms)).toContain('"minimum":20,"maximum":5000');
    expect(asyncapi.components.schemas.FeedTicksOp.properties.ticks.maxItems).toBe(321);
  });

  it('the code a document annotates on a field is the code a bad value of that field answers with', () => {
    const bodies: [Validator<any>, Record<string, unknown>, string | null][] = [
      [tradeValidator, { trade_id: 't', symbol: 'A', side: 'buy', quantity: 1, price: 1 }, null],
      [createPortfolioValidator, {}, null],
      [cashValidator, { type: 'deposit', amount: 1 }, null],
      [limitsValidator, {}, 'limits'],
      [new Validator('action', SplitInput), { action_id: 'a', type: 'split', symbol: 'A', from: 1, to: 2 }, null],
      [new Validator('action', DividendInput), { action_id: 'a', type: 'dividend', symbol: 'A', amount_per_share: 1, ex_ts: 1, pay_ts: 2 }, null],
      [fxConversionValidator, { from_currency: 'EUR', to_currency: 'USD', amount: 1, rate: 1.1 }, null],
      [new Validator('instrument', InstrumentInput), { asset_class: 'future', currency: 'USD', multiplier: 50 }, null],
    ];
    let checked = 0;
    for (const [validator, valid, prefix] of bodies) {
      expect(validator.validate(valid).ok, validator.name).toBe(true);
      const components: Record<string, any> = {};
      const doc = toJsonSchema(validator.schema, refOf, components) as any;
      const deref = (x: any) => (x?.$ref ? components[x.$ref.split('/').pop()] : x);
      for (const [key, property] of Object.entries(doc.properties) as [string, any][]) {
        if (property.const !== undefined || property.anyOf?.some((b: any) => b.const !== undefined)) continue; // a kind tag
        const field = prefix === null ? key : `${prefix}.${key}`;
        const code = property['x-error-code'] ?? property.anyOf?.map(deref).find((b: any) => b['x-error-code'])?.['x-error-code'] ?? doc['x-error-code'] ?? ErrorCode.invalid_field;
        // A value of the wrong type: true, or a string for the boolean fields (dry_run).
        const bad = JSON.stringify(property).includes('"boolean"') ? 'yes' : true;
        const r = validator.validate({ ...valid, [key]: bad });
        expect(r.ok, field).toBe(false);
        if (r.ok) continue;
        expect(r.error, field).toMatchObject({ code, field });
        expect(r.error.message.startsWith(`${field} must`) || r.error.message.startsWith(`${field} is`), r.error.message).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('every refusal of arbitrary input has a known code, names a field and starts its message with it', () => {
    const codes = new Set<string>(Object.values(ErrorCode));
    const anyTrade = fc.record(
      { trade_id: fc.oneof(fc.string(), fc.integer()), symbol: fc.string(), side: fc.string(), quantity: fc.double(), price: fc.double(), fee: fc.anything(), lot_ids: fc.anything() },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(anyTrade, fc.anything()), (input) => {
        const r = validateTrade(input, 0);
        if (r.ok) return;
        expect(codes.has(r.error.code)).toBe(true);
        expect(typeof r.error.field).toBe('string');
        expect(r.error.message.startsWith(`${r.error.field} `)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('a real server answers with the schema codes, fields and rules', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ limits: { commandsPerSecond: 100_000 } });
    await http(h.url, 'POST', '/api/v1/portfolios', { id: 'sc', cash: 1000 });
  });
  afterAll(async () => {
    await h?.close();
  });
  const trade = { trade_id: 'sc-1', symbol: 'SC', side: 'buy', quantity: 1, price: 10 };

  it('HTTP: each bad field of a trade is named with its rule, nothing applied', async () => {
    const cases: [Record<string, unknown>, string, string, string][] = [
      [{ ...trade, price: -1 }, 'invalid_price', 'price', 'price must be a finite number > 0 and <= 1000000000000'],
      [{ ...trade, quantity: 1e-9 }, 'invalid_quantity', 'quantity', 'quantity must have at most 8 decimal places'],
      [{ ...trade, quantity: 100_000_000 }, 'invalid_quantity', 'quantity', 'quantity must be <= 90000000'],
      [{ ...trade, side: 'hold' }, 'invalid_side', 'side', "side must be 'buy' or 'sell'"],
      [{ ...trade, lot_ids: ['a', 'a'] }, 'invalid_lots', 'lot_ids', 'lot_ids must not repeat a lot'],
      [{ ...trade, trade_id: undefined }, 'invalid_id', 'trade_id', 'trade_id must match [A-Za-z0-9._:/-]{1,128}'],
    ];
    for (const [body, code, field, message] of cases) {
      const r = await http(h.url, 'POST', '/api/v1/portfolios/sc/trades', body);
      expect(r.status).toBe(400);
      expect(r.body.error).toEqual({ code, message, field });
    }
    const limits = await http(h.url, 'PUT', '/api/v1/portfolios/sc/limits', { max_loss: 1, nope: 2 });
    expect(limits.body.error).toEqual({ code: 'invalid_limits', message: 'limits.nope is not a known limit', field: 'limits.nope' });
    const ticks = await http(h.url, 'POST', '/api/v1/ticks', { symbol: 'SC' });
    expect(ticks.body.error).toMatchObject({ code: 'invalid_field', field: 'ticks' });
    const snap = await http(h.url, 'GET', '/api/v1/portfolios/sc');
    expect(snap.body.positions).toEqual([]);
    expect(snap.body.seq).toBe(0);
  });

  it('/ws and /ws/feed: the same codes and fields; a valid trade applies once', async () => {
    const s = await TestSocket.open(h.wsUrl + '/ws');
    s.send({ op: 'trade', id: 'a', portfolio: 'sc', trade: { ...trade, fx_rate: 0 } });
    expect(await s.next(isType('error'))).toMatchObject({ id: 'a', code: 'invalid_fx_rate', field: 'fx_rate', message: 'fx_rate must be a finite number > 0 and <= 1000000' });
    s.send({ op: 'subscribe', id: 'b', portfolios: ['sc'], throttle_ms: 5 });
    expect(await s.next(isType('error', (m) => m.id === 'b'))).toMatchObject({ code: 'invalid_field', field: 'throttle_ms', message: 'throttle_ms must be 0 or an integer from 10 to 60000' });
    s.send({ op: 'trade', id: 'c', portfolio: 'sc', trade });
    const ack = await s.next(isType('ack'));
    expect(ack).toMatchObject({ id: 'c', trade_id: 'sc-1', applied: true, position: { symbol: 'SC', quantity: 1 } });
    s.send({ op: 'trade', id: 'd', portfolio: 'sc', trade });
    expect(await s.next(isType('ack', (m) => m.id === 'd'))).toMatchObject({ applied: false });
    await s.close();
    const f = await TestSocket.open(h.wsUrl + '/ws/feed');
    f.send({ op: 'ticks', ticks: [{ symbol: 'SC', price: 11, ts: 1 }, { symbol: 'SC', price: 11 }, { symbol: 'S C', price: 1, ts: 1 }, 7] });
    const feedAck = await f.next(isType('feed_ack'));
    expect(feedAck).toMatchObject({
      accepted: 1,
      rejected: 3,
      errors: [
        { index: 1, code: 'invalid_timestamp' },
        { index: 2, code: 'invalid_symbol' },
        { index: 3, code: 'invalid_field' },
      ],
    });
    await f.close();
  });
});
