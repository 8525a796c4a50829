import { createEngine } from '/work/wt/restart/dist/src/engine/engine.js';
import { cpSync, rmSync } from 'node:fs';
rmSync('/tmp/dbg/a', { recursive: true, force: true }); rmSync('/tmp/dbg/b', { recursive: true, force: true });
let e = await createEngine({ dataDir: '/tmp/dbg/a', workers: 2 });
for (let p = 0; p < 6; p++) { await e.createPortfolio({ id: 'p' + p, cash: 1000 }); }
for (let i = 0; i < 30; i++) await e.trade('p' + (i % 6), { trade_id: 't' + i, symbol: 'S' + (i % 3), side: 'buy', quantity: 1, price: 10 });
await e.snapshotAll();
for (let i = 30; i < 60; i++) await e.trade('p' + (i % 6), { trade_id: 't' + i, symbol: 'S' + (i % 4), side: 'buy', quantity: 1, price: 10 });
const live = [];
for (let p = 0; p < 6; p++) live.push((await e.snapshot('p' + p)).value.positions.map((x) => x.symbol + x.quantity).join(','));
cpSync('/tmp/dbg/a', '/tmp/dbg/b', { recursive: true, filter: (f) => !f.endsWith('owner.sock') });
await e.close();
e = await createEngine({ dataDir: '/tmp/dbg/b', workers: 2 });
const got = [];
for (let p = 0; p < 6; p++) got.push((await e.snapshot('p' + p)).value.positions.map((x) => x.symbol + x.quantity).join(','));
console.log(JSON.stringify(live)); console.log(JSON.stringify(got), e.stats().shardRestarts);
await e.close();
