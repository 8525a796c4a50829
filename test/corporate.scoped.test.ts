// Proves the engine's scoped corporate actions (cluster mode's per-partition application,
// CorporateDesk.announceIn / applyStepIn / dueIn / viewIn, docs/CLUSTER.md), with a real engine (two
// shard workers, LMDB) and an injected clock, no NATS:
// - an action announced to one scope changes only that scope's portfolios, and only when its step
//   arrives (the engine's own timer never applies a scoped step);
// - the same announcement again is created: false; another body under its id is refused naming the field;
// - a step that is not the action's next one (early, or a repeat) applies nothing (applied: false);
// - dueIn names the scope's steps whose time has come, in due order;
// - the scoped pending set survives a restart (rebuilt from the '_corporate' log): the next step is
//   due again and applies once; cash equals the exact decimal oracle.

import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import type { CorporateScope } from '../src/engine/api.js';
import type { Clock } from '../src/domain/types.js';
import type { Result } from '../src/errors.js';
import { Dec } from './oracle/ledger.js';
import { dividend } from './oracle/corporate.js';
import { expectClose } from './oracle/compare.js';
import { ensureBuilt, tempDir } from './support/engine.js';

const T0 = Date.UTC(2026, 0, 5, 14, 30);

class TestClock implements Clock {
  t = T0;
  now(): number {
    return this.t;
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => ensureBuilt());

async function open(path: string, clock: Clock): Promise<MtmEngine> {
  const engine = await createEngine({ dataDir: path, workers: 2, snapshotIntervalMs: 600_000, clock, corporateActionsCheckMs: 600_000 });
  cleanups.push(() => engine.close());
  return engine;
}

function must<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
}

const scopeA: CorporateScope = { name: 'pA', keep: (id) => id.startsWith('a') };
const ids = ['a1', 'a2', 'b1'];
const cash = 10_000;
const dividendInput = { action_id: 'div-1', type: 'dividend', symbol: 'DIV', amount_per_share: 0.37, ex_ts: T0 + 1_000, pay_ts: T0 + 2_000 };

async function entitled(e: MtmEngine): Promise<string[]> {
  const out: string[] = [];
  for (const id of ids) {
    const r = must(await e.queryEvents({ portfolio_id: id, type: 'DividendEntitled' }));
    if (r.length > 0) out.push(id);
  }
  return out;
}

describe('corporate actions in one scope (a partition\'s portfolios)', () => {
  it('applies a scoped dividend to its scope only, step by step as the steps arrive, across a restart', async () => {
    const d = tempDir('mtm-corp-scoped-');
    cleanups.push(() => d.remove());
    const clock = new TestClock();
    let e = await open(d.path, clock);
    for (const [i, id] of ids.entries()) {
      must(await e.createPortfolio({ id, cash }));
      must(await e.trade(id, { trade_id: `${id}-t`, symbol: 'DIV', side: 'buy', quantity: 10 + i, price: 20 }));
    }
    const first = must(await e.corporateAnnounceIn(scopeA, { input: dividendInput, announced_ts: T0 }));
    expect(first.created).toBe(true);
    expect(first.action).toMatchObject({ action_id: 'div-1', status: 'pending', steps: [] });
    expect(must(await e.corporateAnnounceIn(scopeA, { input: dividendInput, announced_ts: T0 })).created).toBe(false);
    const clash = await e.corporateAnnounceIn(scopeA, { input: { ...dividendInput, amount_per_share: 1 }, announced_ts: T0 });
    expect(!clash.ok && clash.error.field).toBe('action_id');
    const bad = await e.corporateAnnounceIn(scopeA, { input: dividendInput, announced_ts: -1 });
    expect(!bad.ok && bad.error.field).toBe('announced_ts');

    expect(e.corporateStepsDue('pA')).toEqual([]);
    clock.t = T0 + 1_000;
    expect(e.corporateStepsDue('pA')).toEqual([{ action_id: 'div-1', step: 'ex_date' }]);
    expect(e.corporateStepsDue('pB')).toEqual([]);
    // The engine's own timer leaves a scoped action alone: its steps come through the stream.
    await e.checkCorporateActions();
    expect(await entitled(e)).toEqual([]);
    expect(must(await e.corporateStepIn(scopeA, { action_id: 'div-1', step: 'pay_date' })).applied).toBe(false);
    expect(must(await e.corporateStepIn(scopeA, { action_id: 'div-1', step: 'ex_date' })).applied).toBe(true);
    expect(must(await e.corporateStepIn(scopeA, { action_id: 'div-1', step: 'ex_date' })).applied).toBe(false);
    expect(await entitled(e)).toEqual(['a1', 'a2']);
    expect(e.corporateActionIn('div-1', ['pA'])).toMatchObject({ status: 'pending', steps: [{ step: 'ex_date', holders: 2 }] });
    expect(e.corporateActionIn('div-1', ['pB'])).toBeNull();

    await e.close();
    clock.t = T0 + 2_000;
    e = await open(d.path, clock);
    expect(e.corporateStepsDue('pA')).toEqual([{ action_id: 'div-1', step: 'pay_date' }]);
    expect(must(await e.corporateStepIn(scopeA, { action_id: 'div-1', step: 'pay_date' })).applied).toBe(true);
    expect(must(await e.corporateStepIn(scopeA, { action_id: 'div-1', step: 'pay_date' })).applied).toBe(false);
    expect(e.corporateStepsDue('pA')).toEqual([]);
    expect(e.corporateActionIn('div-1', ['pA', 'pB'])).toMatchObject({ status: 'applied', steps: [{ step: 'ex_date' }, { step: 'pay_date' }] });
    for (const [i, id] of ids.entries()) {
      const s = must(await e.snapshot(id));
      const paid = id.startsWith('a') ? dividend(10 + i, 0.37, 1).amount : new Dec(0);
      expectClose(s.cash, new Dec(cash).minus(new Dec(10 + i).times(20)).plus(paid), `${id}.cash`);
    }
  }, 60_000);
});
