import { it } from 'vitest';
import { validateTrade as vNew, validateCash as cNew } from '../src/domain/validate.js';
import { validateTrade as vOld, validateCash as cOld } from './zz_old.js';
it('bench', () => {
  const T = { trade_id: 'abc-1', symbol: 'AAPL', side: 'buy', quantity: 1.5, price: 101.25, fee: 1 };
  const bad = { ...T, price: -1 };
  for (const [name, f] of [['old', vOld], ['new', vNew], ['old', vOld], ['new', vNew]] as const) {
    let t0 = performance.now();
    for (let i = 0; i < 200_000; i++) f(T, 5);
    const good = performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < 20_000; i++) f(bad, 5);
    console.log(name, 'valid x200k ms', good.toFixed(1), 'invalid x20k ms', (performance.now() - t0).toFixed(1));
  }
});
