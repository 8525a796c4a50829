// npm run bench -- --scenario cluster [--quick] [--out DIR]: the cluster scenario alone (bench/scenarios/cluster.ts;
//   not part of the default run: it starts nats-server and three engine nodes).
// npm run bench [-- --quick] [--scenario steady[,max,...]] [--systems mtm,peer,limit] [--workload W1|W2] [--frames single|connection] [--publishers N] [--rate N] [--seconds N] [--out DIR] [--update-docs]
//
// Runs the benchmark scenarios against three systems, each a separate process over loopback sockets,
// with load generators in their own processes: mtm (this engine and server), the peer (the
// straightforward implementation, bench/peer/) and the limit (the transport alone, bench/limit/).
// Prints progress to stderr, a table to stdout, and writes bench/results/<timestamp>.json (+ .md).
// Scenarios and figures: docs/BENCHMARKS.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { projectRoot } from '../src/projectRoot.js';
import { errorText } from './loadgen/common.js';
import { Progress } from './report/progress.js';
import { markdownTable, machineLine, scenarioRatios, textTable, type Report, type ScenarioReport } from './report/report.js';
import { installCleanup, killAll, setClockTicks } from './scenarios/children.js';
import { fullScale, quickScale, scenarioNames, workloadNames, type Scale, type ScenarioName, type StreamingScenario, type WorkloadName } from './scenarios/config.js';
import { kernel } from './scenarios/kernel.js';
import { recovery } from './scenarios/recovery.js';
import { max, spike, steady } from './scenarios/streaming.js';
import type { StreamSetup } from './scenarios/stream.js';
import { systemNames, type SystemName } from './scenarios/systems.js';
import { tradeModes, trades } from './scenarios/trades.js';
import { runClusterBench } from './scenarios/cluster.js';

interface Args {
  quick: boolean;
  /** Replace the results section of docs/BENCHMARKS.md with this run's table. */
  updateDocs: boolean;
  scenarios: ScenarioName[];
  systems: SystemName[];
  rate: number | null;
  seconds: number | null;
  /** Every streaming scenario on this workload (default: steady and spike W1, max W2). */
  workload: WorkloadName | null;
  publishers: number | null;
  /** Subscribers ask for per-connection frames (subscribe option frames: 'connection'). */
  frames: 'single' | 'connection';
  out: string;
}

const usage = `usage: node dist/bench/run.js [--quick] [--scenario NAME[,NAME...]] [--systems mtm,peer,limit] [--workload W1|W2] [--frames single|connection] [--publishers N] [--rate TICKS_PER_S] [--seconds S] [--out DIR] [--update-docs]
scenarios: ${scenarioNames.join(', ')} (default: all)
--workload: the streaming scenarios' workload (default: steady and spike on W1, max on W2); --publishers: publisher processes (default: W1 1, W2 2)
--update-docs: write this run's table and machine into docs/BENCHMARKS.md (between its bench:results markers)`;

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, updateDocs: false, scenarios: [], systems: [...systemNames], rate: null, seconds: null, workload: null, publishers: null, frames: 'single', out: join(projectRoot(), 'bench', 'results') };
  const list = <T extends string>(v: string | undefined, allowed: readonly T[], what: string): T[] => {
    const items = (v ?? '').split(',').filter((x) => x !== '');
    for (const x of items) if (!allowed.includes(x as T)) throw new Error(`unknown ${what} '${x}'; expected one of ${allowed.join(', ')}\n${usage}`);
    if (items.length === 0) throw new Error(`--${what} needs a value\n${usage}`);
    return items as T[];
  };
  const num = (v: string | undefined, what: string): number => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new Error(`--${what} needs a positive number\n${usage}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--quick') a.quick = true;
    else if (k === '--scenario' || k === '--scenarios') a.scenarios.push(...list(argv[++i], scenarioNames, 'scenario'));
    else if (k === '--systems' || k === '--system') a.systems = list(argv[++i], systemNames, 'systems');
    else if (k === '--rate') a.rate = num(argv[++i], 'rate');
    else if (k === '--seconds') a.seconds = num(argv[++i], 'seconds');
    else if (k === '--workload') a.workload = list(argv[++i], workloadNames, 'workload')[0];
    else if (k === '--frames') a.frames = list(argv[++i], ['single', 'connection'] as const, 'frames')[0];
    else if (k === '--publishers') a.publishers = Math.min(16, Math.ceil(num(argv[++i], 'publishers')));
    else if (k === '--out') a.out = argv[++i] ?? a.out;
    else if (k === '--update-docs') a.updateDocs = true;
    else if (k === '--help' || k === '-h') {
      console.log(usage);
      process.exit(0);
    } else throw new Error(`unknown argument '${k}'\n${usage}`);
  }
  if (a.scenarios.length === 0) a.scenarios = [...scenarioNames];
  a.scenarios = scenarioNames.filter((s) => a.scenarios.includes(s));
  return a;
}

const docsStart = '<!-- bench:results:start -->';
const docsEnd = '<!-- bench:results:end -->';

/** Replaces the generated section of docs/BENCHMARKS.md: its figures come from a run, never typed in. */
function updateDocs(markdown: string): void {
  const path = join(projectRoot(), 'docs', 'BENCHMARKS.md');
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(docsStart);
  const b = text.indexOf(docsEnd);
  if (a < 0 || b < a) throw new Error(`${path} has no ${docsStart} ... ${docsEnd} section`);
  writeFileSync(path, text.slice(0, a + docsStart.length) + '\n\n' + markdown + '\n' + text.slice(b));
}

function definitions(scale: Scale): Record<ScenarioName, { definition: string; params: object }> {
  const w = scale.stream;
  return {
    steady: {
      definition:
        'Feed at a fixed rate; after the warm-up, measured: ticks sent/s, ticks ingested/s (feed acks), updates delivered/s, tick-to-client latency (arrival - tick_ts) p50/p99/p99.9, server CPU (cores) and RSS (/proc), updates merged (conflated) and lost (seq holes), ticks skipped (feed backpressure) or rejected.',
      params: scale.steady,
    },
    max: {
      definition: `Geometric ramp of the feed rate (x${scale.max.factor} per ${scale.max.stepMs} ms step, the first ${scale.max.settleMs} ms of a step not measured), then ${scale.max.bisections} bisection steps: the highest rate whose step has p99 <= ${scale.max.p99LimitMs} ms and losses (tick loss + update loss) <= ${scale.max.lossLimit * 100}% with no client disconnected. Steps the publisher cannot produce end the search (limitedBy: loadgen).`,
      params: scale.max,
    },
    spike: {
      definition: `Rate R, then ${scale.spike.multiplier}R for ${scale.spike.spikeMs} ms, then R. Worst p99 of a ${w.windowMs} ms window during the spike and after it; recovery time: from the end of the spike to the start of the first window from which every window to the end of the run has p99 <= ${scale.spike.recoveryFactor} x the p99 before the spike (a window with ticks sent and no update counts as above).`,
      params: scale.spike,
    },
    trades: {
      definition:
        'Closed-loop trade ops over /ws from many connections: acknowledged trades/s and ack latency (send to ack). mtm: process (committed before ack) and sync (--sync: flushed to disk before ack); peer: write(2), and write(2) + fdatasync(2), before ack; limit: acked at once (transport round trip only, reported under none).',
      params: scale.trades,
    },
    recovery: {
      definition:
        'State built through each system\'s write path (P portfolios x K positions, then E more trades and a SIGKILL; mtm takes its own snapshot rounds during them unless tailSnapshots is deferred, so its crash restart replays the bounded tail a running engine leaves, the peer its whole journal); crash restart = start on that state, clean restart = start after a clean stop (median). spawnToReadySeconds: fork to ready; recoverSeconds: mtm createEngine on the data dir / peer journal replay. The limit has no state: a bare process start.',
      params: scale.recovery,
    },
    kernel: {
      definition:
        'Revaluation positions/s on bench/kernel.ts\'s 1M-position book (dense: every symbol moves; sparse: 1%). mtm: bench/kernel.js (WASM and TS kernels); peer: its from-scratch per-tick revaluation; limit: one gather-multiply per position over typed arrays (a floor, not an implementation).',
      params: scale.kernel,
    },
  };
}

function workloadRecord(w: StreamSetup): Record<string, number | string> {
  return {
    name: w.workloadName,
    portfolios: w.workload.portfolios,
    positionsPerPortfolio: w.workload.positionsPerPortfolio,
    symbols: w.workload.symbols,
    zipfS: w.workload.zipfS,
    seed: w.workload.seed,
    connections: w.connections,
    subscriptionsPerConnection: w.perConnection,
    subscriptions: w.connections * w.perConnection,
    encoding: w.encoding,
    frames: w.frames,
    throttleMs: 0,
    clientProcesses: w.clientProcesses,
    publishers: w.publishers,
    publisherIntervalMs: w.publisherIntervalMs,
    windowMs: w.windowMs,
  };
}

function expectedMs(s: ScenarioName, scale: Scale): number {
  if (s === 'steady') return scale.steady.warmupMs + scale.steady.measureMs + 4_000;
  if (s === 'max') return scale.max.stepsMax * scale.max.stepMs + 4_000;
  if (s === 'spike') return scale.spike.warmupMs + scale.spike.beforeMs + scale.spike.spikeMs + scale.spike.afterMs + 4_000;
  if (s === 'trades') return 2 * (scale.trades.warmupMs + scale.trades.durationMs) + 4_000;
  return 0;
}

async function runScenario(s: ScenarioName, sys: SystemName, scale: Scale, progress: Progress): Promise<unknown> {
  switch (s) {
    case 'steady':
      return steady(sys, scale, scale.steady, progress);
    case 'max':
      return max(sys, scale, scale.max, progress);
    case 'spike':
      return spike(sys, scale, scale.spike, progress);
    case 'trades': {
      const out: Record<string, unknown> = {};
      for (const mode of tradeModes(sys)) out[mode] = await trades(sys, mode, scale, progress);
      return out;
    }
    case 'recovery':
      return recovery(sys, scale, progress);
    case 'kernel':
      return kernel(sys, scale, progress);
  }
}

function brief(s: ScenarioName, r: unknown): string {
  const g = (path: string): string => {
    let v: unknown = r;
    for (const k of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
    return typeof v === 'number' ? String(v) : '-';
  };
  switch (s) {
    case 'steady':
      return `${g('measured.ticksSentPerSecond')} ticks/s sent, ${g('measured.ticksAcceptedPerSecond')} ingested, ${g('measured.updatesPerSecond')} updates/s, p50 ${g('measured.latency.p50Ms')} / p99 ${g('measured.latency.p99Ms')} / p99.9 ${g('measured.latency.p999Ms')} ms, cpu ${g('measured.serverCpuCores')}`;
    case 'max':
      return `max ${g('maxSustainedTicksPerSecond')} ticks/s (${String((r as { limitedBy?: string }).limitedBy)})`;
    case 'spike':
      return `p99 before ${g('before.latency.p99Ms')} ms, worst window during ${g('worstWindowP99DuringMs')} / after ${g('worstWindowP99AfterMs')} ms, recovery ${g('recoveryMs')} ms`;
    case 'trades':
      return Object.keys(r as object)
        .map((m) => `${m}: ${g(m + '.tradesPerSecond')} trades/s, ack p99 ${g(m + '.ack.p99Ms')} ms`)
        .join('; ');
    case 'recovery':
      return `crash restart ${g('crash.spawnToReadySeconds')} s (recover ${g('crash.recoverSeconds')} s), clean ${g('clean.spawnToReadySeconds')} s`;
    case 'kernel':
      return JSON.stringify(r).slice(0, 200);
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const at = argv.findIndex((a) => a === '--scenario' || a === '--scenarios');
  if (at >= 0 && argv[at + 1] === 'cluster') {
    installCleanup((signal) => console.error(`\n${signal}: stopping, children killed`));
    const outAt = argv.indexOf('--out');
    return runClusterBench(argv.includes('--quick'), outAt >= 0 && argv[outAt + 1] !== undefined ? argv[outAt + 1] : join(projectRoot(), 'bench', 'results'));
  }
  const args = parseArgs(argv);
  const scale = args.quick ? quickScale() : fullScale();
  if (args.rate !== null) {
    scale.steady.rate = args.rate;
    scale.spike.rate = args.rate;
  }
  if (args.seconds !== null) scale.steady.measureMs = args.seconds * 1000;
  if (args.workload !== null) for (const k of Object.keys(scale.workloads) as StreamingScenario[]) scale.workloads[k] = args.workload;
  if (args.publishers !== null) for (const w of workloadNames) scale.streams[w].publishers = args.publishers;
  for (const w of workloadNames) scale.streams[w].frames = args.frames;
  try {
    setClockTicks(Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()));
  } catch {
    /* 100 Hz: the Linux default */
  }
  const progress = new Progress();
  installCleanup((signal) => progress.note(`\n${signal}: stopping, children killed`));
  const started = new Date();
  const load0 = loadavg()[0];
  const defs = definitions(scale);
  const report: Report = {
    version: 1,
    startedAt: started.toISOString(),
    finishedAt: '',
    seconds: 0,
    argv: process.argv.slice(2),
    quick: args.quick,
    machine: {
      cores: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      totalMemoryGb: Math.round(totalmem() / 1e9),
      loadAverageStart: Math.round(load0 * 100) / 100,
      loadAverageEnd: 0,
    },
    workload: workloadRecord(scale.stream),
    workloads: { W1: workloadRecord(scale.streams.W1), W2: workloadRecord(scale.streams.W2) },
    scenarios: {},
    ratios: {},
    errors: [],
  };
  let tasks = 0;
  for (const s of args.scenarios) tasks += args.systems.length;
  progress.setTotal(tasks);
  for (const s of args.scenarios) {
    const sr: ScenarioReport = { definition: defs[s].definition, params: defs[s].params, systems: {}, ratios: {} };
    if (s === 'steady' || s === 'max' || s === 'spike') sr.workload = scale.workloads[s];
    report.scenarios[s] = sr;
    for (const sys of args.systems) {
      progress.begin(`${s} / ${sys}`, expectedMs(s, scale));
      const t0 = performance.now();
      try {
        const r = await runScenario(s, sys, scale, progress);
        sr.systems[sys] = r;
        progress.note(`  ${s} / ${sys} (${((performance.now() - t0) / 1000).toFixed(1)} s): ${brief(s, r)}`);
      } catch (e) {
        const message = errorText(e);
        sr.systems[sys] = { error: message.split('\n').slice(0, 8).join('\n') };
        report.errors.push(`${s} / ${sys}: ${message.split('\n')[0]}`);
        progress.note(`  ${s} / ${sys}: FAILED: ${message.split('\n').slice(0, 4).join(' | ')}`);
        // A failed run leaves nothing behind for the next one.
        killAll();
      }
      progress.end();
    }
    sr.ratios = scenarioRatios(s, sr.systems);
    for (const [k, v] of Object.entries(sr.ratios)) report.ratios[`${s}.${k}`] = v;
  }
  const finished = new Date();
  report.finishedAt = finished.toISOString();
  report.seconds = Math.round((finished.getTime() - started.getTime()) / 100) / 10;
  report.machine.loadAverageEnd = Math.round(loadavg()[0] * 100) / 100;
  mkdirSync(args.out, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const file = join(args.out, `${stamp}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  const markdown = `Run ${report.startedAt} (${report.seconds} s, \`${['node dist/bench/run.js', ...report.argv].join(' ')}\`), report \`${relative(projectRoot(), file)}\`.\n\nMachine: ${machineLine(report)}.\n\n${markdownTable(report)}\n`;
  writeFileSync(join(args.out, `${stamp}.md`), markdown);
  console.log(`\nmtm-engine benchmarks, ${report.seconds} s. Machine: ${machineLine(report)}`);
  for (const w of workloadNames) {
    const x = report.workloads[w];
    console.log(`${w}: ${x.portfolios} portfolios x ${x.positionsPerPortfolio} positions over ${x.symbols} symbols (Zipf s=${x.zipfS}), ${x.connections} connections x ${x.subscriptionsPerConnection} subscriptions (${x.encoding}, frames ${x.frames}), no throttle, ${x.clientProcesses} subscriber / ${x.publishers} publisher processes`);
  }
  console.log('');
  console.log(textTable(report));
  console.log(`\nratios: mtm / peer and mtm / limit (higher is better for rates, lower for latencies and times)`);
  if (report.errors.length > 0) console.log(`\n${report.errors.length} failed: \n  ${report.errors.join('\n  ')}`);
  console.log(`\nreport: ${file}`);
  if (args.updateDocs) {
    try {
      updateDocs(markdown);
      console.log('docs/BENCHMARKS.md: results section replaced by this run');
    } catch (e) {
      console.error(`--update-docs failed: ${errorText(e)}`);
      return 1;
    }
  }
  return report.errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    killAll();
    console.error(errorText(e));
    process.exit(2);
  },
);
