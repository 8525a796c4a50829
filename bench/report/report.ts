// The report: JSON (bench/results/<timestamp>.json), its ratios, and the human table rendered from it
// (plain text on stdout, Markdown next to the JSON for docs/BENCHMARKS.md). Every figure in the table
// is read from the report object; nothing is computed twice or typed in.
import type { ScenarioName } from '../scenarios/config.js';
import type { SystemName } from '../scenarios/systems.js';

export interface SystemError {
  error: string;
}

export interface ScenarioReport {
  definition: string;
  params: object;
  /** The streaming scenarios' workload (W1 or W2, described under the report's workloads). */
  workload?: string;
  systems: Partial<Record<SystemName, unknown>>;
  /** mtm / peer and mtm / limit for the scenario's key figures; null when a figure is missing or the denominator is 0. */
  ratios: Record<string, number | null>;
}

export interface Report {
  version: 1;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  argv: string[];
  quick: boolean;
  machine: {
    cores: number;
    cpuModel: string;
    node: string;
    platform: string;
    totalMemoryGb: number;
    loadAverageStart: number;
    loadAverageEnd: number;
  };
  /** The W1 book and layout (kept for readers of older reports); every workload is under workloads. */
  workload: Record<string, number | string>;
  workloads: Record<string, Record<string, number | string>>;
  scenarios: Partial<Record<ScenarioName, ScenarioReport>>;
  /** Every scenario's ratios, keyed "<scenario>.<figure>.<mtm/peer|mtm/limit>". */
  ratios: Record<string, number | null>;
  errors: string[];
}

export function isError(x: unknown): x is SystemError {
  return typeof x === 'object' && x !== null && typeof (x as SystemError).error === 'string';
}

/** Reads a dotted path ("measured.latency.p99Ms") from a system's result; null when absent or not finite. */
export function figure(x: unknown, path: string): number | null {
  let v: unknown = x;
  for (const k of path.split('.')) {
    if (typeof v !== 'object' || v === null) return null;
    v = (v as Record<string, unknown>)[k];
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function ratio(a: number | null, b: number | null): number | null {
  if (a === null || b === null || b === 0) return null;
  return Math.round((a / b) * 10_000) / 10_000;
}

/** Key figures per scenario: [name, path in the system result, better ('higher' | 'lower')]. */
export const keyFigures: Record<ScenarioName, [string, string, 'higher' | 'lower'][]> = {
  steady: [
    ['ticksSentPerSecond', 'measured.ticksSentPerSecond', 'higher'],
    ['ticksAcceptedPerSecond', 'measured.ticksAcceptedPerSecond', 'higher'],
    ['updatesPerSecond', 'measured.updatesPerSecond', 'higher'],
    ['p50Ms', 'measured.latency.p50Ms', 'lower'],
    ['p99Ms', 'measured.latency.p99Ms', 'lower'],
    ['p999Ms', 'measured.latency.p999Ms', 'lower'],
    ['serverCpuCores', 'measured.serverCpuCores', 'lower'],
    ['serverRssMaxMb', 'measured.serverRssMaxMb', 'lower'],
    ['json.updatesPerSecond', 'json.measured.updatesPerSecond', 'higher'],
    ['json.p99Ms', 'json.measured.latency.p99Ms', 'lower'],
  ],
  max: [
    ['maxSustainedTicksPerSecond', 'maxSustainedTicksPerSecond', 'higher'],
    ['updatesPerSecondAtMax', 'atMax.updatesPerSecond', 'higher'],
  ],
  spike: [
    ['steadyP99Ms', 'before.latency.p99Ms', 'lower'],
    ['worstWindowP99DuringMs', 'worstWindowP99DuringMs', 'lower'],
    ['worstWindowP99AfterMs', 'worstWindowP99AfterMs', 'lower'],
    ['recoveryMs', 'recoveryMs', 'lower'],
  ],
  trades: [
    ['process.tradesPerSecond', 'process.tradesPerSecond', 'higher'],
    ['process.ackP99Ms', 'process.ack.p99Ms', 'lower'],
    ['sync.tradesPerSecond', 'sync.tradesPerSecond', 'higher'],
    ['sync.ackP99Ms', 'sync.ack.p99Ms', 'lower'],
  ],
  recovery: [
    ['crashRestartSeconds', 'crash.spawnToReadySeconds', 'lower'],
    ['cleanRestartSeconds', 'clean.spawnToReadySeconds', 'lower'],
  ],
  kernel: [
    ['densePositionsPerSecond', 'dense.positionsPerSecond', 'higher'],
    ['sparsePositionsPerSecond', 'sparse.positionsPerSecond', 'higher'],
  ],
};

/**
 * The system result a key figure is read from. trades: the limit has one mode ('none'), compared with
 * both of mtm's. kernel: mtm's WASM kernel (the default), the peer's naive code, the limit's floor.
 */
export function figureSource(scenario: ScenarioName, system: SystemName, result: unknown, path: string): number | null {
  // The peer speaks JSON only: its one steady run is its JSON run.
  if (scenario === 'steady' && system === 'peer' && path.startsWith('json.')) return figure(result, path.slice('json.'.length));
  if (scenario === 'trades' && system === 'limit') return figure(result, path.replace(/^(process|sync)\./, 'none.'));
  if (scenario === 'kernel') {
    const variant = system === 'mtm' ? 'wasm' : system === 'peer' ? 'naive' : 'floor';
    return figure(result, `${variant}.${path}`);
  }
  return figure(result, path);
}

export function scenarioRatios(scenario: ScenarioName, systems: Partial<Record<SystemName, unknown>>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [name, path] of keyFigures[scenario]) {
    const ours = isError(systems.mtm) ? null : figureSource(scenario, 'mtm', systems.mtm, path);
    for (const other of ['peer', 'limit'] as const) {
      const theirs = isError(systems[other]) ? null : figureSource(scenario, other, systems[other], path);
      out[`${name}.mtm/${other}`] = ratio(ours, theirs);
    }
  }
  if (scenario === 'kernel' && !isError(systems.mtm)) {
    out['densePositionsPerSecond.wasm/ts'] = ratio(figure(systems.mtm, 'wasm.dense.positionsPerSecond'), figure(systems.mtm, 'ts.dense.positionsPerSecond'));
    out['sparsePositionsPerSecond.wasm/ts'] = ratio(figure(systems.mtm, 'wasm.sparse.positionsPerSecond'), figure(systems.mtm, 'ts.sparse.positionsPerSecond'));
  }
  return out;
}

// ---- the table ----

type Cell = string;
interface Row {
  scenario: string;
  figure: string;
  cells: Record<SystemName, Cell>;
  ratios: [Cell, Cell];
}

function fmt(v: number | null, unit = ''): string {
  if (v === null) return '-';
  const a = Math.abs(v);
  const s =
    a >= 1e6 ? (v / 1e6).toFixed(2) + 'M' : a >= 1e4 ? (v / 1e3).toFixed(1) + 'k' : a >= 100 || Number.isInteger(v) ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
  return s + unit;
}

/** A boolean at a dotted path; null when absent. */
function flag(x: unknown, path: string): boolean | null {
  let v: unknown = x;
  for (const k of path.split('.')) {
    if (typeof v !== 'object' || v === null) return null;
    v = (v as Record<string, unknown>)[k];
  }
  return typeof v === 'boolean' ? v : null;
}

function figureParent(x: unknown, key: string): unknown {
  return typeof x === 'object' && x !== null ? (x as Record<string, unknown>)[key] : undefined;
}

function fmtRatio(v: number | null): string {
  return v === null ? '-' : v >= 100 ? v.toFixed(0) + 'x' : v >= 10 ? v.toFixed(1) + 'x' : v.toFixed(2) + 'x';
}

export function rows(r: Report): Row[] {
  const out: Row[] = [];
  const add = (scenario: ScenarioName, label: string, get: (sys: SystemName, x: unknown) => string, ratioKey?: string): void => {
    const s = r.scenarios[scenario];
    if (s === undefined) return;
    const cells = {} as Record<SystemName, Cell>;
    for (const sys of ['mtm', 'peer', 'limit'] as const) {
      const x = s.systems[sys];
      cells[sys] = x === undefined ? '' : isError(x) ? 'error' : get(sys, x);
    }
    const rk = ratioKey === undefined ? undefined : ratioKey;
    out.push({
      scenario,
      figure: label,
      cells,
      ratios: rk === undefined ? ['', ''] : [fmtRatio(s.ratios[`${rk}.mtm/peer`] ?? null), fmtRatio(s.ratios[`${rk}.mtm/limit`] ?? null)],
    });
  };
  const f = (path: string, unit = '') => (_: SystemName, x: unknown) => fmt(figure(x, path), unit);
  const wl = (scenario: ScenarioName) => (r.scenarios[scenario]?.workload === undefined ? scenario : `${scenario} ${String(r.scenarios[scenario]?.workload)}`);
  /** ' (lg-bound)' after a figure measured while the load generator was the bottleneck (PhaseStats.loadgenBound). */
  const lg = (x: unknown, path: string) => (flag(x, path) === true ? ' (lg-bound)' : '');
  add('steady', `${wl('steady')}: ticks/s sent (target ${fmt(figure(r.scenarios.steady?.params, 'rate'))})`, f('measured.ticksSentPerSecond'), 'ticksSentPerSecond');
  add('steady', 'ticks/s ingested (feed acks)', f('measured.ticksAcceptedPerSecond'), 'ticksAcceptedPerSecond');
  add('steady', 'updates delivered/s', (_, x) => fmt(figure(x, 'measured.updatesPerSecond')) + lg(x, 'measured.loadgenBound'), 'updatesPerSecond');
  add('steady', 'tick-to-client p50', f('measured.latency.p50Ms', ' ms'), 'p50Ms');
  add('steady', 'tick-to-client p99', (_, x) => fmt(figure(x, 'measured.latency.p99Ms'), ' ms') + lg(x, 'measured.loadgenBound'), 'p99Ms');
  add('steady', 'tick-to-client p99.9', f('measured.latency.p999Ms', ' ms'), 'p999Ms');
  add('steady', 'server CPU (cores)', f('measured.serverCpuCores'), 'serverCpuCores');
  add('steady', 'server RSS max', f('measured.serverRssMaxMb', ' MB'), 'serverRssMaxMb');
  add('steady', 'p99 tick->server stamp / stamp->client', (_, x) => `${fmt(figure(x, 'measured.hops.tickToStamp.p99Ms'), ' ms')} / ${fmt(figure(x, 'measured.hops.stampToClient.p99Ms'), ' ms')}`);
  add('steady', 'subscriber event-loop stall max', f('measured.clientLoopDelayMaxMs', ' ms'));
  add('steady', 'subscriber / publisher CPU max (cores)', (_, x) => `${fmt(figure(x, 'measured.clientCpuMaxCores'))} / ${fmt(figure(x, 'measured.publisherCpuMaxCores'))}`);
  add('steady', 'updates merged / lost', (_, x) => `${fmt(figure(x, 'measured.updatesMerged'))} / ${fmt(figure(x, 'measured.updatesLost'))}`);
  add('steady', 'ticks skipped / rejected / lagged', (_, x) => ['ticksSkipped', 'ticksRejected', 'ticksLagged'].map((k) => fmt(figure(x, `measured.${k}`))).join(' / '));
  const js = (path: string, unit = '') => (sys: SystemName, x: unknown) => fmt(figureSource('steady', sys, x, path), unit);
  add('steady', 'JSON subscribers: updates delivered/s', (sys, x) => js('json.measured.updatesPerSecond')(sys, x) + lg(sys === 'peer' ? x : figureParent(x, 'json'), 'measured.loadgenBound'), 'json.updatesPerSecond');
  add('steady', 'JSON subscribers: tick-to-client p99', js('json.measured.latency.p99Ms', ' ms'), 'json.p99Ms');
  add('max', `${wl('max')}: max sustained ticks/s`, (_, x) => `${fmt(figure(x, 'maxSustainedTicksPerSecond'))} (${String((x as { limitedBy?: string }).limitedBy ?? '')})`, 'maxSustainedTicksPerSecond');
  add('max', 'updates/s at max', f('atMax.updatesPerSecond'), 'updatesPerSecondAtMax');
  add('max', 'p99 at max', (_, x) => fmt(figure(x, 'atMax.latency.p99Ms'), ' ms') + lg(x, 'atMax.loadgenBound'));
  add('max', 'p99 at max: tick->server stamp / stamp->client', (_, x) => `${fmt(figure(x, 'atMax.hops.tickToStamp.p99Ms'), ' ms')} / ${fmt(figure(x, 'atMax.hops.stampToClient.p99Ms'), ' ms')}`);
  add('max', 'failed steps below the max', (_, x) => {
    const failed = (x as { failedBelowMax?: number[] }).failedBelowMax ?? [];
    return failed.length === 0 ? 'none' : failed.map((q) => fmt(q)).join(', ');
  });
  add('max', 'load-generator-bound steps', (_, x) => {
    const steps = (x as { steps?: { rate: number; loadgenBound?: boolean }[] }).steps ?? [];
    const bound = steps.filter((q) => q.loadgenBound === true).map((q) => fmt(q.rate));
    return bound.length === 0 ? 'none' : bound.join(', ');
  });
  add('spike', `${wl('spike')}: rate / spike rate`, (_, x) => `${fmt(figure(x, 'rate'))} / ${fmt(figure(x, 'spikeRate'))}`);
  add('spike', 'p99 before (steady)', (_, x) => fmt(figure(x, 'before.latency.p99Ms'), ' ms') + lg(x, 'before.loadgenBound'), 'steadyP99Ms');
  const silent = (x: unknown, path: string) => ((figure(x, path) ?? 0) > 0 ? ` (${fmt(figure(x, path))} windows without updates)` : '');
  add('spike', 'worst 100ms p99 during', (_, x) => fmt(figure(x, 'worstWindowP99DuringMs'), ' ms') + silent(x, 'silentWindowsDuring') + lg(x, 'during.loadgenBound'), 'worstWindowP99DuringMs');
  add('spike', 'worst 100ms p99 after', (_, x) => fmt(figure(x, 'worstWindowP99AfterMs'), ' ms') + silent(x, 'silentWindowsAfter') + lg(x, 'after.loadgenBound'), 'worstWindowP99AfterMs');
  add('spike', 'server RSS max (before / during / after)', (_, x) => ['before', 'during', 'after'].map((k) => fmt(figure(x, `${k}.serverRssMaxMb`), ' MB')).join(' / '));
  add('spike', 'subscriber event-loop stall max (before / during / after)', (_, x) => ['before', 'during', 'after'].map((k) => fmt(figure(x, `${k}.clientLoopDelayMaxMs`), ' ms')).join(' / '));
  add('spike', 'time to recover', (_, x) => fmt(figure(x, 'recoveryMs'), ' ms') + ((x as { recovered?: boolean }).recovered === false ? ' (not recovered)' : ''), 'recoveryMs');
  for (const mode of ['process', 'sync'] as const) {
    const m = (sys: SystemName) => (sys === 'limit' ? 'none' : mode);
    add('trades', `${mode}: trades/s`, (sys, x) => fmt(figure(x, `${m(sys)}.tradesPerSecond`)) + lg(x, `${m(sys)}.loadgenBound`), `${mode}.tradesPerSecond`);
    add('trades', `${mode}: ack p50`, (sys, x) => fmt(figure(x, `${m(sys)}.ack.p50Ms`), ' ms'));
    add('trades', `${mode}: ack p99`, (sys, x) => fmt(figure(x, `${m(sys)}.ack.p99Ms`), ' ms'), `${mode}.ackP99Ms`);
  }
  add('recovery', 'crash restart (spawn to ready)', f('crash.spawnToReadySeconds', ' s'), 'crashRestartSeconds');
  add('recovery', 'crash: state recovery', f('crash.recoverSeconds', ' s'));
  add('recovery', 'clean restart (spawn to ready)', f('clean.spawnToReadySeconds', ' s'), 'cleanRestartSeconds');
  add('recovery', 'crash: peak RSS to ready', f('crash.peakRssMb', ' MB'));
  add('recovery', 'crash: steady RSS after', f('crash.steadyRssMb', ' MB'));
  const k = (c: string) => (sys: SystemName, x: unknown) => fmt(figureSource('kernel', sys, x, `${c}.positionsPerSecond`));
  add('kernel', 'dense positions/s (wasm)', k('dense'), 'densePositionsPerSecond');
  add('kernel', 'dense positions/s (ts)', (sys, x) => (sys === 'mtm' ? fmt(figure(x, 'ts.dense.positionsPerSecond')) : ''));
  add('kernel', 'sparse positions/s (wasm)', k('sparse'), 'sparsePositionsPerSecond');
  add('kernel', 'sparse positions/s (ts)', (sys, x) => (sys === 'mtm' ? fmt(figure(x, 'ts.sparse.positionsPerSecond')) : ''));
  return out;
}

const headers = ['scenario', 'figure', 'mtm', 'peer', 'limit', 'mtm/peer', 'mtm/limit'];

function matrix(r: Report): string[][] {
  return rows(r).map((x) => [x.scenario, x.figure, x.cells.mtm, x.cells.peer, x.cells.limit, x.ratios[0], x.ratios[1]]);
}

export function textTable(r: Report): string {
  const m = [headers, ...matrix(r)];
  const widths = headers.map((_, i) => Math.max(...m.map((row) => row[i].length)));
  const line = (row: string[]) => row.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(m[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...m.slice(1).map(line)].join('\n');
}

export function markdownTable(r: Report): string {
  const m = matrix(r);
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...m.map((row) => `| ${row.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`),
  ].join('\n');
}

export function machineLine(r: Report): string {
  const m = r.machine;
  return `${m.cores} cores (${m.cpuModel}), ${m.totalMemoryGb} GB, ${m.platform}, Node ${m.node}; load average ${m.loadAverageStart} at start, ${m.loadAverageEnd} at end${r.quick ? '; --quick scale' : ''}`;
}
