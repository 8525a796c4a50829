// node dist/bench/restartRatio.js --mtm DIR[,DIR...] [--peer JOURNAL] [--mtm-clean DIR] [--cli DIR[,DIR...]]
//                                 [--cold] [--cpu-prof PROFDIR]
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
//
// Each mtm line also has the start step by step, in ms from the fork (node_up: the child's clock
// starts; then its module graph, each recovery mark, listening; ready_received: the message here),
// and the MB of its data file in the page cache when it was forked (fincore). --cold evicts the data
// file (and the peer's journal) from the page cache before each start (dd iflag=nocache), as after a
// copy made long enough before, or a reboot. --cpu-prof PROFDIR profiles the mtm server processes.
// --cli runs the real `mtm serve` (dist/src/cli/main.js) on each DIR instead: fork to its
// "recovered" line, the recovery's own elapsed time in it, and fork to its "mtm listening" line.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startSystem, type SystemName } from './scenarios/systems.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
const round = (x: number): number => Math.round(x * 10) / 10;
const cold = process.argv.includes('--cold');
const profDir = arg('cpu-prof');

/** The files of a data dir (or a journal file itself). */
function filesOf(path: string): string[] {
  if (!existsSync(path)) return [];
  try {
    return readdirSync(path)
      .map((f) => join(path, f))
      .filter((f) => f.endsWith('.mdb') || f.includes('journal'));
  } catch {
    return [path];
  }
}

/** MB of the file in the page cache (fincore), or null when fincore is missing. */
function cachedMb(file: string): number | null {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' });
  return r.status === 0 ? round(Number(r.stdout.trim()) / 2 ** 20) : null;
}

/** Drops the files from the page cache (they are clean: the caller synced after copying). */
function evict(path: string): void {
  for (const f of filesOf(path)) spawnSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
}

function cacheState(path: string): number | null {
  const data = filesOf(path).find((f) => f.endsWith('data.mdb') || f.endsWith('.jsonl'));
  return data === undefined ? null : cachedMb(data);
}

/** Starts the system on its state, answers fork-to-ready, the in-process recovery ms and the start's steps, kills it. */
async function restart(name: SystemName, state: { dataDir?: string; journal?: string }): Promise<Record<string, unknown> & { spawnToReadyMs: number }> {
  const path = state.dataDir ?? state.journal ?? '';
  if (cold) evict(path);
  const cachedMbAtFork = cacheState(path);
  const nodeArgs = name === 'mtm' && profDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  const sys = await startSystem(name, { workload: null, ...state, recover: true, readyTimeoutMs: 600_000, nodeArgs });
  const r = sys.ready;
  const origin = r.timeOriginMs === undefined ? null : r.timeOriginMs - sys.forkedAtMs;
  const figures = {
    spawnToReadyMs: round(sys.spawnToReadyMs),
    recoverMs: round(r.recoverMs),
    portfolios: Number(r.info.portfolios ?? 0),
    ...(name === 'mtm' ? { eventsReplayed: r.info.eventsReplayed, workerLoadMs: r.info.workerLoadMs, workerReplayMs: r.info.workerReplayMs, workerFinishMs: r.info.workerFinishMs } : {}),
    cachedMbAtFork,
    ...(origin === null || r.steps === undefined
      ? {}
      : { fromFork: [{ step: 'node_up', at_ms: round(origin) }, ...r.steps.map((s) => ({ step: s.step, at_ms: round(origin + s.at_ms) })), { step: 'ready_received', at_ms: round(sys.spawnToReadyMs) }] }),
  };
  // SIGTERM first under a profiler: the profile is written on the way out (mtm's stop is its clean close).
  if (profDir !== undefined && name === 'mtm') await sys.stop(600_000);
  else sys.child.kill();
  await sys.child.exited;
  return figures;
}

/** `mtm serve` on dir: fork to its "recovered" line and to its "mtm listening" line; then SIGKILL. */
function cliRestart(dir: string): Promise<Record<string, unknown>> {
  if (cold) evict(dir);
  const cachedMbAtFork = cacheState(dir);
  const main = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const prof = profDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, ['--max-old-space-size=8192', ...prof, main, 'serve', '--data', dir, '--port', '0', '--stats-interval-ms', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Record<string, unknown> = { cachedMbAtFork };
    let buf = '';
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.stdout.on('data', (d: Buffer) => {
      const at = round(performance.now() - t0);
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const rec = /^recovered (\d+) portfolios and (\d+) events in ([\d.]+) s/.exec(line);
        if (rec !== null) Object.assign(out, { recoveredLineMs: at, recoveryElapsedS: Number(rec[3]), portfolios: Number(rec[1]), events: Number(rec[2]) });
        if (line.startsWith('mtm listening')) {
          out.listeningLineMs = at;
          // SIGTERM under a profiler (written on the way out), else SIGKILL as a crash leaves it.
          p.kill(profDir === undefined ? 'SIGKILL' : 'SIGTERM');
        }
      }
    });
    p.on('exit', () => (out.listeningLineMs === undefined ? reject(new Error(`mtm serve ended before listening: ${err}`)) : resolve(out)));
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main(): Promise<void> {
  const mtmDirs = (arg('mtm') ?? '').split(',').filter((d) => d !== '');
  const cliDirs = (arg('cli') ?? '').split(',').filter((d) => d !== '');
  const journal = arg('peer');
  const clean = arg('mtm-clean');
  if (mtmDirs.length === 0 && cliDirs.length === 0) throw new Error('usage: node dist/bench/restartRatio.js --mtm DIR[,DIR...] [--peer JOURNAL] [--mtm-clean DIR] [--cli DIR[,DIR...]] [--cold] [--cpu-prof PROFDIR]');
  const peer: number[] = [];
  const mtm: number[] = [];
  for (let i = 0; i < mtmDirs.length; i++) {
    if (journal !== undefined) {
      const p = await restart('peer', { journal });
      peer.push(p.spawnToReadyMs);
      console.log(JSON.stringify({ system: 'peer', restart: 'crash', run: i + 1, ...p, load: load() }));
    }
    const m = await restart('mtm', { dataDir: mtmDirs[i] });
    mtm.push(m.spawnToReadyMs);
    console.log(JSON.stringify({ system: 'mtm', restart: 'crash', run: i + 1, cold, ...m, load: load() }));
  }
  let cleanMs: number | null = null;
  if (clean !== undefined) {
    const c = await restart('mtm', { dataDir: clean });
    cleanMs = c.spawnToReadyMs;
    console.log(JSON.stringify({ system: 'mtm', restart: 'clean', run: 1, cold, ...c, load: load() }));
  }
  for (const [i, dir] of cliDirs.entries()) console.log(JSON.stringify({ system: 'mtm serve', run: i + 1, cold, ...(await cliRestart(dir)), load: load() }));
  if (mtm.length === 0) return;
  const peerMs = peer.length > 0 ? median(peer) : null;
  console.log(
    JSON.stringify({
      summary: true,
      peerMedianMs: peerMs,
      mtmCrashMedianMs: median(mtm),
      crashRatio: peerMs === null ? null : Math.round((median(mtm) / peerMs) * 1000) / 1000,
      ...(cleanMs === null ? {} : { mtmCleanMs: cleanMs, cleanRatio: peerMs === null ? null : Math.round((cleanMs / peerMs) * 1000) / 1000 }),
      load: load(),
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
