// recovery: how long a restart takes with P portfolios x K positions and E events since the last
// clean shutdown. The state is built once per run through each system's own write path
// (bench/scenarios/recoveryBuild.ts), then the server process is started on it:
//   crash restart: after the build's tail phase was killed (SIGKILL) with E events acknowledged since
//                  the last clean shutdown (mtm: with its own snapshot rounds during them, so it
//                  replays the bounded tail they leave; scale.recovery.tailSnapshots 'deferred' takes
//                  none, the worst case: all E);
//   clean restart: after a clean stop of the recovered server (median of cleanRestarts).
// Figures: recoverSeconds (in-process: mtm createEngine on the data dir until ready; peer journal
// replay), readySeconds (process start to listening) and spawnToReadySeconds (fork to ready message).
// The limit has no state: its figures are a bare process start to listening, the floor of any restart.
import { join } from 'node:path';
import { round3 } from '../loadgen/common.js';
import type { Progress } from '../report/progress.js';
import { Child, benchScript, makeTempDir, removeTempDir } from './children.js';
import type { Scale } from './config.js';
import type { RecoveryBuildConfig, RecoveryBuildDone } from './recoveryBuild.js';
import { startSystem, type RunningSystem, type SystemName } from './systems.js';
import { W1 } from '../workload.js';

export interface RestartFigures {
  recoverSeconds: number;
  readySeconds: number;
  spawnToReadySeconds: number;
  portfoliosRecovered: number;
  /** The clean stop that followed (mtm: server close, engine close with its final snapshot). */
  stopSeconds: number;
  /** Peak resident memory of the server process from spawn to ready (VmHWM read at ready), MB. */
  peakRssMb: number | null;
  /** Resident memory once recovered and idle (VmRSS RecoveryParams.steadyAfterMs after ready), MB. */
  steadyRssMb: number | null;
}


/** VmHWM / VmRSS of a process in MB from /proc/<pid>/status (null off Linux or once it is gone). */
async function statusMb(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number | null> {
  const { readFile } = await import('node:fs/promises');
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : round3(Number(m[1]) / 1024);
  } catch {
    return null;
  }
}

export interface RecoveryResult {
  portfolios: number;
  positionsPerPortfolio: number;
  /** Events written: creations + opening trades (base) and the tail since the last clean shutdown. */
  baseEvents: number;
  tailEvents: number;
  buildSeconds: number;
  crash: RestartFigures;
  clean: RestartFigures;
  cleanRuns: RestartFigures[];
}

async function build(cfg: RecoveryBuildConfig, timeoutMs: number): Promise<RecoveryBuildDone> {
  const child = new Child(`build ${cfg.system} ${cfg.phase}`, benchScript('scenarios/recoveryBuild.js'), [JSON.stringify(cfg)], ['--max-old-space-size=8192']);
  try {
    const done = await child.next<RecoveryBuildDone>('done', timeoutMs);
    await child.exited;
    if (done.failed > 0) throw new Error(`${child.name}: ${done.failed} of ${done.events} events failed`);
    return done;
  } finally {
    child.kill();
  }
}

function figures(sys: RunningSystem, stopMs: number, rss: { peakRssMb: number | null; steadyRssMb: number | null }): RestartFigures {
  return {
    ...rss,
    recoverSeconds: round3(sys.ready.recoverMs / 1000),
    readySeconds: round3(sys.ready.readyMs / 1000),
    spawnToReadySeconds: round3(sys.spawnToReadyMs / 1000),
    portfoliosRecovered: Number(sys.ready.info.portfolios ?? 0),
    stopSeconds: round3(stopMs / 1000),
  };
}

/** A clean stop may snapshot every portfolio: allow it minutes, and insist that it was clean. */
const cleanStopGraceMs = 10 * 60_000;

function median(runs: RestartFigures[]): RestartFigures {
  const sorted = [...runs].sort((a, b) => a.spawnToReadySeconds - b.spawnToReadySeconds);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

export async function recovery(name: SystemName, scale: Scale, progress: Progress): Promise<RecoveryResult> {
  const p = scale.recovery;
  const dir = makeTempDir(`mtm-bench-recovery-${name}-`);
  try {
    let baseEvents = 0;
    let tailEvents = 0;
    let buildMs = 0;
    if (name !== 'limit') {
      for (const phase of ['base', 'tail'] as const) {
        progress.update(`building: ${phase}`);
        const done = await build({ system: name, dir, portfolios: p.portfolios, positions: p.positions, events: p.events, phase, tailSnapshots: p.tailSnapshots }, p.buildTimeoutMs);
        if (phase === 'base') baseEvents = done.events;
        else tailEvents = done.events;
        buildMs += done.ms;
      }
    }
    const restart = async (label: string): Promise<RestartFigures> => {
      progress.update(label);
      const sys = await startSystem(name, {
        // The relay keeps no state: one portfolio, so its start is the bare process and listen.
        workload: name === 'limit' ? { ...W1, portfolios: 1, positionsPerPortfolio: 1 } : null,
        dataDir: dir,
        journal: join(dir, 'journal.jsonl'),
        recover: name !== 'limit',
        readyTimeoutMs: Math.max(scale.serverReadyTimeoutMs, p.buildTimeoutMs),
      });
      let stopped = false;
      try {
        const peakRssMb = await statusMb(sys.child.pid, 'VmHWM');
        await new Promise((r) => setTimeout(r, p.steadyAfterMs));
        const steadyRssMb = await statusMb(sys.child.pid, 'VmRSS');
        const t0 = performance.now();
        const how = await sys.stop(cleanStopGraceMs);
        stopped = true;
        // The next restart is a clean one only if this stop was.
        if (how.code !== 0) throw new Error(`${name} did not stop cleanly (${JSON.stringify(how)}): ${sys.child.tail()}`);
        return figures(sys, performance.now() - t0, { peakRssMb, steadyRssMb });
      } finally {
        if (!stopped) sys.child.kill();
      }
    };
    const crash = await restart('crash restart');
    if (name !== 'limit' && crash.portfoliosRecovered !== p.portfolios) {
      throw new Error(`${name} recovered ${crash.portfoliosRecovered} portfolios, expected ${p.portfolios}`);
    }
    const cleanRuns: RestartFigures[] = [];
    for (let i = 0; i < p.cleanRestarts; i++) cleanRuns.push(await restart(`clean restart ${i + 1}/${p.cleanRestarts}`));
    return {
      portfolios: name === 'limit' ? 0 : p.portfolios,
      positionsPerPortfolio: name === 'limit' ? 0 : p.positions,
      baseEvents,
      tailEvents,
      buildSeconds: round3(buildMs / 1000),
      crash,
      clean: median(cleanRuns),
      cleanRuns,
    };
  } finally {
    removeTempDir(dir);
  }
}
