// Proves the uWS detection and the Node transport the server runs on when uWebSockets.js falls back
// to its JS shim (no native binary for the platform / Node ABI):
// - detection: in a child process with UWS_USE_FALLBACK=1 the package loads its shim and loadUws()
//   says 'fallback'; here the native binary loads and says 'native';
// - the Node transport (forced with transport: 'node') serves the same protocol with a real engine:
//   /health reports it, HTTP commands, /ws subscribe (JSON and binary), trades, the compat path, the
//   binary feed, auth by sub-protocol, body limits, and close() with 1001.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeUpdate, encodeFeedRegister, encodeFeedTicks } from '../src/protocol/binary.js';
import { heldPositionsOf } from '../src/protocol/delta.js';
import { loadUws } from '../src/server/uws.js';
import { TestSocket, http, isType, startHarness, type Harness } from './support/serverHarness.js';

const KEY = 'node-transport-key-0123';
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ transport: 'node', keys: [{ key: KEY, name: 'all', scopes: ['admin'] }], limits: { maxBodyBytes: 4096 } });
});
afterAll(async () => {
  await h?.close();
});

describe('uWS detection', () => {
  it('says native here and fallback when the package falls back to its shim', async () => {
    expect(loadUws().binary).toBe('native');
    const uwsJs = fileURLToPath(new URL('../dist/src/server/uws.js', import.meta.url));
    expect(existsSync(uwsJs), 'dist is built (npm test builds first)').toBe(true);
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--input-type=module', '-e', `const m = await import(${JSON.stringify(uwsJs)}); console.log('binary=' + m.loadUws().binary);`],
        { env: { ...process.env, UWS_USE_FALLBACK: '1' } },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    expect(out).toContain('binary=fallback');
  });
});

describe('Node transport', () => {
  it('serves HTTP with the same answers', async () => {
    const health = await http(h.url, 'GET', '/health');
    expect(health.body).toMatchObject({ status: 'ok', transport: 'node', uws_binary: 'native' });
    expect(h.server.transport).toBe('node');
    expect((await http(h.url, 'GET', '/api/v1/portfolios')).status).toBe(401);
    expect((await http(h.url, 'POST', '/api/v1/portfolios', { id: 'nt', cash: 1000 }, KEY)).status).toBe(201);
    const t = await http(h.url, 'POST', '/api/v1/portfolios/nt/trades', { trade_id: 'nt-1', symbol: 'NT', side: 'buy', quantity: 2, price: 10 }, KEY);
    expect(t.status).toBe(201);
    expect((await http(h.url, 'POST', '/api/v1/portfolios/nt/trades', { trade_id: 'nt-1', symbol: 'NT', side: 'buy', quantity: 2, price: 10 }, KEY)).status).toBe(200);
    const big = await http(h.url, 'POST', '/api/v1/portfolios', { name: 'x'.repeat(10_000) }, KEY);
    expect(big.status).toBe(413);
    expect((await http(h.url, 'GET', '/api/v1/portfolios/nope', undefined, KEY)).body.error.code).toBe('portfolio_not_found');
  });

  it('serves /ws, the compat path and the feed', async () => {
    expect((await TestSocket.refused(h.wsUrl + '/ws')).status).toBe(401);
    const s = await TestSocket.open(h.wsUrl + '/ws', { protocols: ['mtm.v1', `mtm.bearer.${KEY}`] });
    expect(s.ws.protocol).toBe('mtm.v1');
    s.send({ op: 'subscribe', portfolios: ['nt'] });
    const snap = await s.next(isType('snapshot'));
    const b = await TestSocket.open(h.wsUrl + '/ws', { key: KEY });
    b.send({ op: 'subscribe', portfolios: ['nt'], encoding: 'binary' });
    const binSnap = await b.next(isType('snapshot'));
    const c = await TestSocket.open(h.wsUrl + '/ws/realtime/positions/nt', { key: KEY });
    await c.next(isType('snapshot'));
    const f = await TestSocket.open(h.wsUrl + '/ws/feed', { key: KEY });
    f.send(encodeFeedRegister(['NT']));
    await f.next(isType('registered'));
    f.send(encodeFeedTicks([{ symbolId: 0, price: 12, ts: Date.now(), size: NaN }]));
    expect(await f.next(isType('feed_ack'))).toMatchObject({ accepted: 1, rejected: 0 });
    await h.engine.drain();
    const u = await s.next(isType('update'));
    expect(u.seq).toBe(snap.seq + 1);
    expect(u.positions[0].last_price).toBe(12);
    // Layout v4: a position the tick only re-marked decodes against the one the snapshot holds.
    const bin = decodeUpdate(await b.next((m) => Buffer.isBuffer(m)), heldPositionsOf(binSnap));
    expect(bin.ok && bin.value.seq).toBe(u.seq);
    expect((await c.next((m) => m.seq === u.seq)).positions[0].last_price).toBe(12);
    s.send({ op: 'trade', id: 1, portfolio: 'nt', trade: { trade_id: 'nt-2', symbol: 'NT', side: 'sell', quantity: 1, price: 12 } });
    expect(await s.next(isType('ack'))).toMatchObject({ id: 1, applied: true });
    s.send('garbage');
    expect(await s.next(isType('error'))).toMatchObject({ code: 'invalid_json' });
    await h.server.close();
    expect(await s.closed).toBe(1001);
    expect(await c.closed).toBe(1001);
    expect(await f.closed).toBe(1001);
    await b.closed;
  });
});
