// node dist/bench/restartRatio.js --mtm DIR --peer JOURNAL [--mtm-clean DIR] [--runs N]
//
// mtm's restart beside the peer's on the same state, in one sitting (issue 16's goal is a ratio:
// crash restart <= 0.15x the peer's). Each restart is a server process started the way the recovery
// scenario starts it (bench/scenarios/systems.ts: mtm's engine and server on a data dir, the peer
// replaying its JSON-lines journal), timed from fork to its ready message, then SIGKILLed (neither
// writes anything on the way out, so the state is the same for the next run). DIR must be a copy
// (mtm's start writes a seq epoch and indexes what the crash left unindexed); a copy per run is taken
// by the caller (`--mtm` accepts a comma-separated list, one directory per run). The states are the
// recovery scenario's at full scale (docs/BENCHMARKS.md "Restart, sixth session (crash)"): mtm
// `/tmp/rs/full-crash` (snapshot + 1M tail trades, SIGKILLed), the peer `/tmp/rs/peer-full`
// (the same 100,000 x 25 base and 1M tail trades as journal lines).
// Prints one JSON line per restart and a summary with the ratios, each with the load average.
import { loadavg } from 'node:os';
import { startSystem, type SystemName } from './scenarios/systems.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
const round = (x: number): number => Math.round(x * 10) / 10;

/** Starts the system on its state, answers fork-to-ready and the in-process recovery ms, kills it. */
async function restart(name: SystemName, state: { dataDir?: string; journal?: string }): Promise<{ spawnToReadyMs: number; recoverMs: number; portfolios: number }> {
  const sys = await startSystem(name, { workload: null, ...state, recover: true, readyTimeoutMs: 600_000 });
  const figures = { spawnToReadyMs: round(sys.spawnToReadyMs), recoverMs: round(sys.ready.recoverMs), portfolios: Number(sys.ready.info.portfolios ?? 0) };
  sys.child.kill();
  await sys.child.exited;
  return figures;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main(): Promise<void> {
  const mtmDirs = (arg('mtm') ?? '').split(',').filter((d) => d !== '');
  const journal = arg('peer');
  const clean = arg('mtm-clean');
  if (mtmDirs.length === 0 || journal === undefined) throw new Error('usage: node dist/bench/restartRatio.js --mtm DIR[,DIR...] --peer JOURNAL [--mtm-clean DIR]');
  const peer: number[] = [];
  const mtm: number[] = [];
  for (let i = 0; i < mtmDirs.length; i++) {
    const p = await restart('peer', { journal });
    peer.push(p.spawnToReadyMs);
    console.log(JSON.stringify({ system: 'peer', restart: 'crash', run: i + 1, ...p, load: load() }));
    const m = await restart('mtm', { dataDir: mtmDirs[i] });
    mtm.push(m.spawnToReadyMs);
    console.log(JSON.stringify({ system: 'mtm', restart: 'crash', run: i + 1, ...m, load: load() }));
  }
  let cleanMs: number | null = null;
  if (clean !== undefined) {
    const c = await restart('mtm', { dataDir: clean });
    cleanMs = c.spawnToReadyMs;
    console.log(JSON.stringify({ system: 'mtm', restart: 'clean', run: 1, ...c, load: load() }));
  }
  const peerMs = median(peer);
  console.log(
    JSON.stringify({
      summary: true,
      peerMedianMs: peerMs,
      mtmCrashMedianMs: median(mtm),
      crashRatio: Math.round((median(mtm) / peerMs) * 1000) / 1000,
      ...(cleanMs === null ? {} : { mtmCleanMs: cleanMs, cleanRatio: Math.round((cleanMs / peerMs) * 1000) / 1000 }),
      load: load(),
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
