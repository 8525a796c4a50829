// Smoke test of the benchmark harness: `node dist/bench/run.js --quick` runs every scenario against
// every system (real processes over loopback sockets) and writes a report in which every scenario
// and system carries its figures as finite numbers, the streaming scenarios name their workload
// (steady and spike W1, max W2), W1 steady carries the JSON subscribers' run beside the binary one,
// and every measured phase (steady, max steps, spike phases, trade modes) says whether the load
// generator bounded it; the streaming phases also split their latency at the server's stamp and report
// the subscribers' event-loop stalls. No threshold is asserted: machines are shared and noisy;
// docs/BENCHMARKS.md holds the measured figures.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { figure, type Report } from '../bench/report/report.js';

const runJs = fileURLToPath(new URL('../dist/bench/run.js', import.meta.url));
const scenarios = ['steady', 'max', 'spike', 'trades', 'recovery', 'kernel'] as const;
const systems = ['mtm', 'peer', 'limit'] as const;

/** Figures every system must report in each scenario (paths in its result). */
function required(scenario: (typeof scenarios)[number], system: (typeof systems)[number]): string[] {
  switch (scenario) {
    case 'steady': {
      const fields = ['ticksSentPerSecond', 'updatesPerSecond', 'latency.count', 'latency.p50Ms', 'latency.p99Ms', 'latency.p999Ms', 'serverCpuCores', 'serverRssMaxMb', 'tickLoss', 'updateLoss', 'clientCpuMaxCores', 'publisherCpuMaxCores', 'hops.tickToStamp.p99Ms', 'hops.stampToClient.p99Ms', 'clientLoopDelayMaxMs'];
      // The peer speaks JSON only: its one run is its JSON run; mtm and the limit run JSON subscribers beside.
      return fields.map((f) => 'measured.' + f).concat(system === 'peer' ? [] : ['json.measured.updatesPerSecond', 'json.measured.latency.p99Ms']);
    }
    case 'max':
      return ['maxSustainedTicksPerSecond', 'steps.0.rate', 'steps.0.p99Ms', 'steps.0.ticksMeasured', 'steps.0.p99StampToClientMs', 'steps.0.clientLoopDelayMaxMs'];
    case 'spike':
      return ['rate', 'spikeRate', 'before.latency.p99Ms', 'during.latency.p99Ms', 'worstWindowP99DuringMs', 'worstWindowP99AfterMs', 'recoveryMs', 'recoveryThresholdMs', 'after.serverRssMaxMb'];
    case 'trades':
      return (system === 'limit' ? ['none'] : ['process', 'sync']).flatMap((m) => [`${m}.tradesPerSecond`, `${m}.ack.p50Ms`, `${m}.ack.p99Ms`]);
    case 'recovery':
      return ['crash.spawnToReadySeconds', 'crash.recoverSeconds', 'crash.readySeconds', 'clean.spawnToReadySeconds'];
    case 'kernel': {
      const variants = system === 'mtm' ? ['wasm', 'ts'] : system === 'peer' ? ['naive'] : ['floor'];
      return variants.flatMap((v) => [`${v}.dense.positionsPerSecond`, `${v}.sparse.positionsPerSecond`]);
    }
  }
}

describe('npm run bench -- --quick', () => {
  it('runs every scenario on mtm, the peer and the limit and reports finite figures', { timeout: 300_000 }, async () => {
    expect(existsSync(runJs), 'dist is built (npm test builds first)').toBe(true);
    const out = mkdtempSync(join(tmpdir(), 'mtm-bench-test-'));
    try {
      const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [runJs, '--quick', '--out', out], { timeout: 280_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
          resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr }),
        );
      });
      const files = readdirSync(out).filter((f) => f.endsWith('.json'));
      expect(files, `one report written\n${run.stdout}\n${run.stderr}`).toHaveLength(1);
      const report = JSON.parse(readFileSync(join(out, files[0]), 'utf8')) as Report;
      expect(report.errors, run.stdout).toEqual([]);
      expect(run.code, run.stderr.slice(-4000)).toBe(0);
      expect(report.quick).toBe(true);
      expect(report.machine.cores).toBeGreaterThan(0);
      expect(typeof report.machine.cpuModel).toBe('string');
      expect(report.machine.node).toBe(process.version);
      expect(report.workload.portfolios).toBeGreaterThan(0);
      expect(report.workloads.W1.subscriptions).toBe(report.workloads.W1.portfolios);
      expect(report.workloads.W2.subscriptions).toBeLessThan(report.workloads.W1.subscriptions as number);
      expect(report.scenarios.steady?.workload).toBe('W1');
      expect(report.scenarios.spike?.workload).toBe('W1');
      expect(report.scenarios.max?.workload).toBe('W2');
      for (const sys of systems) {
        const steady = report.scenarios.steady?.systems[sys] as { measured: { loadgenBound: unknown }; json?: { measured: { loadgenBound: unknown } } };
        expect(typeof steady.measured.loadgenBound, `steady / ${sys}: loadgenBound`).toBe('boolean');
        if (sys !== 'peer') expect(typeof steady.json?.measured.loadgenBound, `steady json / ${sys}`).toBe('boolean');
        const max = report.scenarios.max?.systems[sys] as { steps: { loadgenBound: unknown }[] };
        for (const step of max.steps) expect(typeof step.loadgenBound, `max / ${sys}: step loadgenBound`).toBe('boolean');
        // Every scenario with a load generator says whether it bounded the figures.
        const spike = report.scenarios.spike?.systems[sys] as Record<'before' | 'during' | 'after', { loadgenBound: unknown }>;
        for (const phase of ['before', 'during', 'after'] as const) expect(typeof spike[phase].loadgenBound, `spike ${phase} / ${sys}: loadgenBound`).toBe('boolean');
        const trades = report.scenarios.trades?.systems[sys] as Record<string, { loadgenBound: unknown }>;
        for (const mode of sys === 'limit' ? ['none'] : ['process', 'sync']) expect(typeof trades[mode].loadgenBound, `trades ${mode} / ${sys}: loadgenBound`).toBe('boolean');
      }
      for (const s of scenarios) {
        const sr = report.scenarios[s];
        expect(sr, `scenario ${s}`).toBeDefined();
        for (const sys of systems) {
          const result = sr?.systems[sys];
          expect(result, `${s} / ${sys}`).toBeDefined();
          for (const path of required(s, sys)) {
            const v = figure(result, path);
            expect(v, `${s} / ${sys}: ${path} = ${JSON.stringify(v)}`).not.toBeNull();
            expect(Number.isFinite(v)).toBe(true);
          }
        }
        // Streaming runs delivered updates on every system: the harness measured something.
        if (s === 'steady') for (const sys of systems) expect(figure(sr?.systems[sys], 'measured.latency.count')).toBeGreaterThan(0);
        for (const [k, v] of Object.entries(sr?.ratios ?? {})) expect(v === null || Number.isFinite(v), `${s} ratio ${k}`).toBe(true);
      }
      expect(run.stdout).toContain('mtm/peer');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
