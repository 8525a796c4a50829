// The start's progress while the engine recovers: a bar on a terminal (portfolios and events
// restored, rate, ETA), a plain line a second otherwise (logs, pipes); the same figures /ready
// answers with its 503 meanwhile.

import type { RecoveryProgress } from '../engine/recovery.js';

/** Redraws of the bar on a terminal. */
export const progressBarIntervalMs = 200;
/** Plain lines otherwise: one a second. */
export const progressLineIntervalMs = 1_000;
const barWidth = 30;

export function progressText(p: ReturnType<RecoveryProgress['view']>): string {
  const eta = p.eta_ms === null ? '?' : `${(p.eta_ms / 1000).toFixed(1)} s`;
  return `recovering: ${p.portfolios} portfolios, ${p.events_replayed} of ~${p.events_total} events replayed, ${p.events_per_second} events/s, ETA ${eta} (${(p.elapsed_ms / 1000).toFixed(1)} s)`;
}

/** Shows the progress until `done` settles; returns when it has stopped drawing. */
export async function showProgress(progress: RecoveryProgress, done: Promise<unknown>, out: NodeJS.WriteStream = process.stdout): Promise<void> {
  const tty = out.isTTY === true;
  const draw = () => {
    const v = progress.view();
    if (!tty) return void out.write(progressText(v) + '\n');
    const frac = v.events_total > 0 ? Math.min(1, v.events_replayed / v.events_total) : 0;
    const filled = Math.round(frac * barWidth);
    out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${progressText(v)}\x1b[K`);
  };
  const timer = setInterval(draw, tty ? progressBarIntervalMs : progressLineIntervalMs);
  try {
    await done;
  } finally {
    clearInterval(timer);
    if (tty) out.write('\n');
  }
  out.write(`recovered ${progress.portfolios} portfolios and ${progress.eventsReplayed} events in ${(progress.view().elapsed_ms / 1000).toFixed(2)} s\n`);
}
