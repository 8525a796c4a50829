// Proves the staleness bound of the sliced pass over the unwatched rest (src/shard/restPass.ts): the
// rest is due (finished inline by the worker) once the oldest price change that some unwatched row may
// not have seen is unwatchedRevalueIntervalMs of batch time old, or that many batches old; a lap of
// slices that covered every portfolio since a round began clears every change older than that round,
// leaving as the oldest the first batch that arrived during it; a cleared pass clears everything.
import { describe, expect, it } from 'vitest';
import { RestPass } from '../src/shard/restPass.js';

describe('RestPass', () => {
  it('is due once the first uncovered batch is intervalMs old, not before', () => {
    const r = new RestPass(50, 64);
    expect(r.due(1_000)).toBe(false);
    r.batch(1_000, 0);
    r.batch(1_030, 0);
    expect(r.due(1_049)).toBe(false);
    expect(r.due(1_050)).toBe(true);
    r.slice(0, 10, true);
    expect(r.due(5_000)).toBe(false);
  });

  it('a finished round leaves the batches that arrived during it as the oldest uncovered', () => {
    const r = new RestPass(50, 64);
    r.batch(1_000, 100);
    r.slice(104, 10, false);
    r.batch(1_020, 104);
    r.slice(108, 10, false);
    // The round began at 100 swept rows: 8 of the 10 portfolio rows swept, the 1,000 batch still uncovered.
    expect(r.due(1_050)).toBe(true);
    r.slice(110, 10, false);
    // A lap since the round began: 1,000 is applied everywhere, 1,020 is the oldest left.
    expect(r.due(1_050)).toBe(false);
    expect(r.due(1_069)).toBe(false);
    expect(r.due(1_070)).toBe(true);
  });

  it('counts batches for a batch clock that stands still', () => {
    const r = new RestPass(50, 3);
    r.batch(7, 0);
    r.batch(7, 0);
    expect(r.due(7)).toBe(false);
    r.batch(7, 0);
    expect(r.due(7)).toBe(true);
  });

  it('with an interval of 0 the rest is due with the batch that left it', () => {
    const r = new RestPass(0, 64);
    expect(r.due(3)).toBe(false);
    r.batch(3, 0);
    expect(r.due(3)).toBe(true);
  });
});
