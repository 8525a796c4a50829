// The parameters of a run: the full scale (W1, the figures docs/BENCHMARKS.md reports) and --quick
// (the smoke test: every scenario, small, under two minutes). Command-line flags override a few.
import { W1, type Workload } from '../workload.js';
import type { StreamSetup } from './stream.js';

export const scenarioNames = ['steady', 'max', 'spike', 'trades', 'recovery', 'kernel'] as const;
export type ScenarioName = (typeof scenarioNames)[number];

/**
 * The two streaming workloads, over the same book (W1's 10,000 portfolios x 25 positions):
 *   W1 - fan-out stress: every portfolio watched, 1,000 connections x 10 subscriptions, binary
 *        subscribers (steady also runs them with JSON, reported beside);
 *   W2 - latency: 100 connections x 10 subscriptions = 1,000 watched portfolios, binary.
 */
export const workloadNames = ['W1', 'W2'] as const;
export type WorkloadName = (typeof workloadNames)[number];
export type StreamingScenario = 'steady' | 'max' | 'spike';
/** Which workload each streaming scenario runs on unless --workload says otherwise. */
export const defaultWorkloads: Record<StreamingScenario, WorkloadName> = { steady: 'W1', max: 'W2', spike: 'W1' };

export interface SteadyParams {
  rate: number;
  warmupMs: number;
  measureMs: number;
}

export interface MaxParams {
  /**
   * Before the ramp, not measured: the feed at warmupRate for warmupMs (every system sees its symbols
   * for the first time, JIT compiles), then a drain. The first step then measures the steady state.
   */
  warmupRate: number;
  warmupMs: number;
  startRate: number;
  factor: number;
  stepMs: number;
  /** The first part of each step is not measured (the system settling to the new rate). */
  settleMs: number;
  stepsMax: number;
  rateMax: number;
  /** Failing steps in a row that end the ramp (a single failure can be one unlucky tick: see streaming.ts max). */
  failuresToStop: number;
  /** Geometric bisection steps between the last passing and the first failing rate. */
  bisections: number;
  /** Pause at rate 0 before a bisection step, so the backlog of the failed step drains. */
  recoverPauseMs: number;
  p99LimitMs: number;
  lossLimit: number;
}

export interface SpikeParams {
  rate: number;
  multiplier: number;
  warmupMs: number;
  beforeMs: number;
  spikeMs: number;
  afterMs: number;
  /** Recovered: every window's p99 from then on is at most this multiple of the steady p99. */
  recoveryFactor: number;
}

export interface TradesParams {
  connections: number;
  inFlight: number;
  warmupMs: number;
  durationMs: number;
}

export interface RecoveryParams {
  portfolios: number;
  positions: number;
  events: number;
  /** Clean restarts after the crash restart; the median is reported. */
  cleanRestarts: number;
  buildTimeoutMs: number;
  /** How long after ready the recovered server's resident memory is read as its steady RSS. */
  steadyAfterMs: number;
  /**
   * mtm's tail phase: 'engine' (its own snapshot settings: a round every snapshot interval or
   * snapshotTailEventsMax events, so the crash leaves the bounded tail a running engine leaves) or
   * 'deferred' (no round: all `events` after the last snapshot, the worst case). docs/BENCHMARKS.md
   * "Restart, seventh session (start)" has both.
   */
  tailSnapshots: 'engine' | 'deferred';
}

export interface KernelParams {
  /** Passed to bench/kernel.js as --iterations; null = its default. */
  iterations: number | null;
  /** Passed as --portfolios (a smaller book than the 40,000 portfolios); null = the full book. */
  portfolios: number | null;
  timeoutMs: number;
}

export interface Scale {
  quick: boolean;
  /** The book every scenario loads (trades and recovery size their own). */
  stream: StreamSetup;
  streams: Record<WorkloadName, StreamSetup>;
  /** The workload of each streaming scenario in this run. */
  workloads: Record<StreamingScenario, WorkloadName>;
  steady: SteadyParams;
  max: MaxParams;
  spike: SpikeParams;
  trades: TradesParams;
  recovery: RecoveryParams;
  kernel: KernelParams;
  serverReadyTimeoutMs: number;
}

function streamSetup(workloadName: WorkloadName, workload: Workload, connections: number, perConnection: number, clientProcesses: number, publishers: number, quick: boolean): StreamSetup {
  return {
    workloadName,
    workload,
    encoding: 'binary',
    frames: 'single',
    connections,
    perConnection,
    clientProcesses,
    publishers,
    windowMs: 100,
    flushMs: 250,
    publisherIntervalMs: 2,
    // 2,000 x 28 bytes + 8 = 56 KB: under the mtm server's 64 KiB frame limit.
    frameTicksMax: 2_000,
    bufferedMaxBytes: 4 * 1024 * 1024,
    connectConcurrency: 50,
    readyTimeoutMs: quick ? 20_000 : 120_000,
    drainMaxMs: quick ? 1_000 : 20_000,
  };
}

export function fullScale(): Scale {
  const streams = { W1: streamSetup('W1', W1, 1_000, 10, 2, 1, false), W2: streamSetup('W2', W1, 100, 10, 1, 2, false) };
  return {
    quick: false,
    stream: streams.W1,
    streams,
    workloads: { ...defaultWorkloads },
    steady: { rate: 200_000, warmupMs: 2_000, measureMs: 10_000 },
    max: {
      warmupRate: 100,
      warmupMs: 2_000,
      startRate: 10,
      factor: 2,
      stepMs: 3_000,
      settleMs: 1_000,
      stepsMax: 20,
      rateMax: 4_000_000,
      failuresToStop: 2,
      bisections: 2,
      recoverPauseMs: 3_000,
      p99LimitMs: 10,
      lossLimit: 0.001,
    },
    spike: { rate: 200_000, multiplier: 10, warmupMs: 2_000, beforeMs: 5_000, spikeMs: 5_000, afterMs: 10_000, recoveryFactor: 2 },
    trades: { connections: 50, inFlight: 4, warmupMs: 1_000, durationMs: 10_000 },
    recovery: { portfolios: 100_000, positions: 25, events: 1_000_000, cleanRestarts: 3, buildTimeoutMs: 60 * 60_000, steadyAfterMs: 3_000, tailSnapshots: 'engine' },
    kernel: { iterations: null, portfolios: null, timeoutMs: 15 * 60_000 },
    serverReadyTimeoutMs: 10 * 60_000,
  };
}

export function quickScale(): Scale {
  // 500 portfolios x 10 positions: the mtm server loads its book through durable trades at every start
  // (a few thousand a second), and quick starts it a dozen times.
  const workload: Workload = { ...W1, portfolios: 500, positionsPerPortfolio: 10 };
  const streams = { W1: streamSetup('W1', workload, 50, 10, 1, 1, true), W2: streamSetup('W2', workload, 10, 10, 1, 1, true) };
  return {
    quick: true,
    stream: streams.W1,
    streams,
    workloads: { ...defaultWorkloads },
    steady: { rate: 2_000, warmupMs: 500, measureMs: 1_500 },
    max: {
      warmupRate: 100,
      warmupMs: 500,
      startRate: 10,
      factor: 5,
      stepMs: 1_000,
      settleMs: 300,
      stepsMax: 5,
      rateMax: 200_000,
      failuresToStop: 2,
      bisections: 0,
      recoverPauseMs: 0,
      p99LimitMs: 10,
      lossLimit: 0.001,
    },
    spike: { rate: 500, multiplier: 10, warmupMs: 300, beforeMs: 1_000, spikeMs: 1_000, afterMs: 1_000, recoveryFactor: 2 },
    trades: { connections: 10, inFlight: 4, warmupMs: 300, durationMs: 1_500 },
    recovery: { portfolios: 200, positions: 25, events: 2_000, cleanRestarts: 1, buildTimeoutMs: 60_000, steadyAfterMs: 500, tailSnapshots: 'engine' },
    kernel: { iterations: 10, portfolios: 4_000, timeoutMs: 120_000 },
    serverReadyTimeoutMs: 60_000,
  };
}
