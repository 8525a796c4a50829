// The swarm's shape for a seed: fault rates scaled 0-4x each, 150-1200 steps. Replay with
// `npm run simulate -- --seed S --swarm-shape`; regression tests of swarm seeds use it too.

import { defaultRates, type FaultRates } from './simulator.js';

export function swarmShape(seed: number): { rates: Partial<FaultRates>; stepCount: number } {
  // A small LCG of its own, so the shape does not consume the simulation's stream.
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const rates: Partial<FaultRates> = {};
  for (const k of Object.keys(defaultRates) as (keyof FaultRates)[]) rates[k] = k === 'slowSubscriber' ? next() : defaultRates[k] * next() * 4;
  return { rates, stepCount: 150 + Math.floor(next() * 1050) };
}
