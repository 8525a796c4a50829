// Proves the instrument, FX conversion and what-if APIs over the real transports (real uWS server, real
// WebSocket and HTTP clients, real engine and LMDB): the SDK's MtmRest defines and reads instruments and
// converts cash; a trade booked over WS carries the multiplier; the WS `trade` op with dry_run (on the
// op, and through MtmClient.whatIf) acks the would-be figures and breaches, and a later real trade may use
// the same trade_id; a non-admin key may read instruments but not define them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MtmClient, MtmError, MtmRest } from '../src/client/index.js';
import { TestSocket, http, isType, startHarness, type Harness } from './support/serverHarness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({}, { persistent: true, suspectMovePct: 0 });
});
afterAll(async () => {
  await h?.close();
});

describe('instruments, FX conversions and what-if trades over HTTP and WebSocket', () => {
  it('MtmRest defines and reads instruments; a WS trade books at the multiplier; a WS what-if books nothing', async () => {
    const rest = new MtmRest({ baseUrl: h.url });
    expect(await rest.defineInstrument('ES', { asset_class: 'future', currency: 'USD', multiplier: 50, tick_size: 0.25 })).toEqual({ symbol: 'ES', asset_class: 'future', currency: 'USD', multiplier: 50, tick_size: 0.25 });
    expect(await rest.instrument('ES')).toMatchObject({ multiplier: 50 });
    expect((await rest.instruments()).map((i) => i.symbol)).toEqual(['ES']);
    await expect(rest.defineInstrument('ES', { asset_class: 'future', currency: 'USD', multiplier: -1 })).rejects.toMatchObject({ code: 'invalid_field', message: expect.stringContaining('multiplier') });
    await expect(rest.instrument('NQ')).rejects.toBeInstanceOf(MtmError);
    await h.engine.createPortfolio({ id: 'wsf', cash: 1_000_000 });
    await h.engine.setLimits('wsf', { max_loss: 1_000 });
    expect(h.engine.ingestTick('ES', 4000, Date.now())).toBeNull();
    await h.engine.drain();

    const c = await MtmClient.connect({ url: h.wsUrl, reconnect: false });
    try {
      const booked = await c.trade('wsf', { trade_id: 'f1', symbol: 'ES', side: 'buy', quantity: 2, price: 4000 });
      expect(booked).toMatchObject({ applied: true, position: { quantity: 2, market_value: 400_000 } });
      expect(booked.totals.cash).toBe(1_000_000 - 400_000);
      // One more contract at 4100 against a 4000 mark: (4000 - 4033.33) x 3 x 50 = -5000, past max_loss 1000.
      const what = await c.whatIf('wsf', { trade_id: 'f2', symbol: 'ES', side: 'buy', quantity: 1, price: 4100 });
      expect(what).toMatchObject({ dry_run: true, applied: false, breaches: ['max_loss'], position: { quantity: 3, market_value: 600_000 } });
      expect(what.totals.unrealized_pnl).toBeCloseTo(-5_000, 6);
      expect((await h.engine.snapshot('wsf')).ok && ((await h.engine.snapshot('wsf')) as { value: { positions: unknown[] } }).value.positions.length).toBe(1);
      // The what-if id stays free.
      const real = await c.trade('wsf', { trade_id: 'f2', symbol: 'ES', side: 'sell', quantity: 1, price: 4010 });
      expect(real).toMatchObject({ applied: true, realized_pnl: 10 * 50 });
    } finally {
      c.close();
    }

    // dry_run on the op itself, over a raw socket: the ack says so, nothing is logged.
    const ws = await TestSocket.open(`${h.wsUrl}/ws`);
    try {
      const events = (await http(h.url, 'GET', '/api/v1/portfolios/wsf/events?limit=1000')).body.events.length;
      ws.send({ op: 'trade', id: 7, portfolio: 'wsf', dry_run: true, trade: { trade_id: 'f3', symbol: 'ES', side: 'buy', quantity: 1, price: 4020 } });
      const ack = await ws.next(isType('ack', (m) => m.id === 7));
      expect(ack).toMatchObject({ type: 'ack', id: 7, dry_run: true, applied: false, position: { quantity: 2 } });
      ws.send({ op: 'trade', id: 8, portfolio: 'wsf', dry_run: true, trade: { trade_id: 'f1', symbol: 'ES', side: 'buy', quantity: 1, price: 4020 } });
      expect(await ws.next(isType('error', (m) => m.id === 8))).toMatchObject({ code: 'trade_id_conflict', field: 'trade_id' });
      expect((await http(h.url, 'GET', '/api/v1/portfolios/wsf/events?limit=1000')).body.events.length).toBe(events);
    } finally {
      ws.close();
    }

    // Foreign cash over REST, then an FX conversion through the SDK.
    expect((await http(h.url, 'POST', '/api/v1/ticks', [{ symbol: 'EURUSD', price: 1.1 }])).status).toBe(202);
    await h.engine.drain();
    expect((await http(h.url, 'POST', '/api/v1/portfolios/wsf/cash', { type: 'deposit', amount: 1_000, currency: 'EUR' })).body.cash_balances).toEqual({ EUR: 1_000 });
    const after = await rest.convertCash('wsf', { from_currency: 'EUR', to_currency: 'USD', amount: 400, rate: 1.2 });
    expect(after.cash_balances).toEqual({ EUR: 600 });
    expect(after.cash).toBe(1_000_000 - 400_000 + 4_010 * 50 + 480);
    const events = await http(h.url, 'GET', '/api/v1/portfolios/_instruments/events');
    expect(events.status).toBe(200);
    expect(events.body.events.map((e: { type: string }) => e.type)).toEqual(['InstrumentDefined']);
  });
});
