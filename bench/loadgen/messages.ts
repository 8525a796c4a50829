// The IPC messages between the orchestrator (bench/run.ts) and its child processes. One file so that
// both sides agree on the shapes; every child also sends {type:'error', message} before dying.
import type { Workload } from '../workload.js';
import type { EncodedWindow } from './common.js';

export interface ErrorMsg {
  type: 'error';
  message: string;
}

// ---- bench servers (mtm, peer, limit) ----

export type ServerIn = { type: 'stats' } | { type: 'stop' };

export interface ServerReady {
  type: 'ready';
  port: number;
  pid: number;
  /** ms from this process's start to listening (performance.now() at that point). */
  readyMs: number;
  /** Time spent loading the workload (not part of a restart). */
  loadMs: number;
  /** Time spent recovering persisted state (createEngine on a data dir, or a journal replay). */
  recoverMs: number;
  info: Record<string, string | number | boolean>;
  /** performance.timeOrigin of the server process (epoch ms): where its own clock starts. */
  timeOriginMs?: number;
  /** Steps of its start in ms of its own clock (mtm: modules, each recovery mark, listening). */
  steps?: { step: string; at_ms: number }[];
}

export interface ServerStatsMsg {
  type: 'stats';
  cpuSeconds: number;
  rssBytes: number;
  counters: Record<string, number>;
}

export type ServerOut = ServerReady | ServerStatsMsg | ErrorMsg | { type: 'stopped' };

// ---- publisher ----

export interface PublisherConfig {
  url: string;
  workload: Workload;
  /** The subscription layout, to count what a per-tick system owes (see subscribedHolders). */
  connections: number;
  perConnection: number;
  seed: number;
  /** A frame is sent every intervalMs, sized by the time elapsed since the previous one. */
  intervalMs: number;
  /** Ticks per frame at most (the mtm server refuses frames over 64 KiB: 2,340 ticks). */
  frameTicksMax: number;
  /** Above this many bytes buffered on the feed socket, ticks are skipped (counted) instead of queued. */
  bufferedMaxBytes: number;
  t0: number;
  windowMs: number;
  flushMs: number;
}

export type PublisherIn = { type: 'rate'; rate: number } | { type: 'finish' } | { type: 'stop' };

/** What the publisher did in one time window. */
export interface PublisherWindow {
  w: number;
  /** Ticks sent. */
  sent: number;
  /** Ticks not sent because the feed socket had more than bufferedMaxBytes queued (the server is not reading). */
  skipped: number;
  /** Ticks the server accepted (feed acks, counted when the ack arrives): its ingest rate. */
  accepted: number;
  /** Ticks the server rejected (feed acks, counted when the ack arrives). */
  rejected: number;
  /** Ticks the publisher itself failed to produce on time (its own CPU starved): a load generator limit. */
  lagged: number;
  /** Updates a system that sends one update per tick per watching subscription owes for the ticks sent. */
  owed: number;
}

export interface PublisherFinal {
  type: 'final';
  frames: number;
  acks: number;
  windows: PublisherWindow[];
  cpuSeconds: number;
}

export type PublisherOut = { type: 'ready' } | { type: 'windows'; windows: PublisherWindow[]; cpuSeconds: number } | PublisherFinal | ErrorMsg;

// ---- subscriber clients ----

export interface ClientsConfig {
  url: string;
  /** Connection indexes [from, to) of the global layout. */
  from: number;
  to: number;
  perConnection: number;
  portfolios: number;
  /** How updates are asked for: JSON text or binary frames (snapshots and answers stay JSON). */
  encoding: 'json' | 'binary';
  /** 'connection': one frame per connection per batch (subscribe option frames); 'single': one message per update. */
  frames: 'single' | 'connection';
  t0: number;
  windowMs: number;
  flushMs: number;
  connectConcurrency: number;
  readyTimeoutMs: number;
}

export type ClientsIn = { type: 'finish' } | { type: 'stop' };

export interface ClientsTotals {
  updates: number;
  /** Per-connection frames received (each carrying one or more updates). */
  frames: number;
  merged: number;
  gaps: number;
  resyncs: number;
  bytes: number;
  errors: number;
  closed: number;
  firstError: string;
}

export interface ClientsFinal {
  type: 'final';
  totals: ClientsTotals;
  windows: EncodedWindow[];
  cpuSeconds: number;
  /** The longest event-loop stall of this process since its previous report, ms. */
  loopDelayMaxMs: number;
}

export type ClientsOut =
  | { type: 'ready'; connections: number; subscriptions: number; snapshots: number }
  | { type: 'windows'; windows: EncodedWindow[]; cpuSeconds: number; updates: number; loopDelayMaxMs: number }
  | ClientsFinal
  | ErrorMsg;

// ---- traders ----

export interface TradersConfig {
  url: string;
  connections: number;
  /** Trades outstanding per connection (closed loop: a new one is sent when one is acked). */
  inFlight: number;
  /** Portfolios traded, round-robin over connections. */
  portfolios: string[];
  symbols: string[];
  /** Prefix of trade ids, unique per process and run (trade ids are idempotency keys). */
  prefix: string;
  readyTimeoutMs: number;
}

/** start: trade for warmupMs (not measured), then durationMs (measured). */
export type TradersIn = { type: 'start'; warmupMs: number; durationMs: number } | { type: 'stop' };

export interface TradersFinal {
  type: 'final';
  acked: number;
  errors: number;
  firstError: string;
  seconds: number;
  hist: string;
  /** CPU time of the traders process during the run (start to final). */
  cpuSeconds: number;
}

export type TradersOut = { type: 'ready'; connections: number } | TradersFinal | ErrorMsg;
