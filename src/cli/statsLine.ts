// The one-line stats a second: ticks/s, portfolios revalued/s, p99 tick-to-update, kernel, workers.
import type { MtmEngine } from '../engine/engine.js';

export function formatStats(engine: MtmEngine, prev: { ticks: number; portfolios: number; at: number }, now: number): string {
  const s = engine.stats();
  const seconds = Math.max(1e-3, (now - prev.at) / 1000);
  const ticks = (s.ticksReceived - prev.ticks) / seconds;
  const revalued = (s.portfoliosRevalued - prev.portfolios) / seconds;
  prev.ticks = s.ticksReceived;
  prev.portfolios = s.portfoliosRevalued;
  prev.at = now;
  return (
    `ticks/s ${Math.round(ticks).toLocaleString('en-US')} | portfolios revalued/s ${Math.round(revalued).toLocaleString('en-US')}` +
    ` | p99 tick-to-update ${s.latencyP99Ms.toFixed(2)} ms | kernel ${s.kernel} | workers ${s.workers}` +
    ` | portfolios ${s.portfolios} | positions ${s.positions}`
  );
}

export function startStatsLine(engine: MtmEngine, intervalMs: number): { stop(): void } {
  const prev = { ticks: 0, portfolios: 0, at: Date.now() };
  const timer = setInterval(() => {
    console.log(formatStats(engine, prev, Date.now()));
    engine.latency.reset();
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}
