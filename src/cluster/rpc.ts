// Request-reply to a partition's owner (docs/CLUSTER.md, "RPC"): the snapshot, time travel
// (snapshotAt), events and lots queries of a portfolio, and the update relay's watch, answered by the
// node that owns the portfolio's partition, whichever node the client is connected to.
//
// Subjects: clusterSubjects.rpc(partition, verb) = `mtm.rpc.<partition>.<verb>`; an owner subscribes
// `mtm.rpc.<partition>.*` for each partition it owns (and drops it when it loses one), so a request for
// a partition nobody serves fails at once with NATS "no responders" instead of waiting for a timeout.
// Body and reply are JSON (not the hot path): the request an object with portfolio_id and the verb's
// fields, the reply the engine's Result as it is ({ok, value} or {ok: false, error}).
//
// The owner checks again that it owns the partition (a fenced node answers partition_unavailable, which
// the asker retries) and that the portfolio hashes to the partition of the subject; anything else (not
// JSON, no portfolio_id, an unknown verb) is refused with a clear error, logged and counted.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { ErrorCode, fail, type Result } from '../errors.js';
import type { PortfolioSnapshot, StoredEvent } from '../domain/types.js';
import type { EventQuery, PositionLots } from '../engine/api.js';
import { partitionOf } from './partition.js';
import { clusterSubjects } from './subjects.js';
import type { OwnershipView } from './types.js';

/** What the owner's side needs of its engine (MtmEngine has all of it). */
export interface RpcEngine {
  snapshot(portfolioId: string, options?: { lots?: boolean }): Promise<Result<PortfolioSnapshot>>;
  snapshotAt(portfolioId: string, timestamp: number): Promise<Result<PortfolioSnapshot>>;
  queryEvents(query: EventQuery): Promise<Result<StoredEvent[]>>;
  lots(portfolioId: string, symbol: string): Promise<Result<PositionLots>>;
}

export const rpcVerbs = ['snapshot', 'snapshotAt', 'events', 'lots', 'watch'] as const;
export type RpcVerb = (typeof rpcVerbs)[number];

/** The owner's handler of `watch` (updateRelay.ts: UpdatePublisher.watch). */
export type WatchHandler = (portfolioId: string, partition: number, snapshot: boolean) => Promise<Result<unknown>>;

export interface RpcOptions {
  /** How long an asker waits for the owner's answer. */
  requestTimeoutMs: number;
  /** Bytes of a request body the owner reads (larger ones are refused). */
  requestBytesMax: number;
  log: (line: string) => void;
}

export const rpcDefaults: RpcOptions = { requestTimeoutMs: 5_000, requestBytesMax: 4_096, log: () => undefined };

export interface RpcCounters {
  /** Requests this node answered as owner. */
  served: number;
  /** Requests refused as malformed (not JSON, bad fields, wrong partition, unknown verb). */
  badRequests: number;
  /** Requests answered partition_unavailable because this node no longer owns the partition (fenced). */
  notOwner: number;
  /** Requests this node sent to another node. */
  sent: number;
  /** Of those, no owner answered (no responders or timeout). */
  unanswered: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function isVerb(v: string): v is RpcVerb {
  return (rpcVerbs as readonly string[]).includes(v);
}

/** The owner's side: answers the requests of the partitions this node owns. */
export class RpcServer {
  readonly counters: RpcCounters;
  private readonly o: RpcOptions;
  private readonly subs = new Map<number, Subscription>();
  private offChange: (() => void) | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly engine: RpcEngine,
    private readonly ownership: OwnershipView,
    private readonly watch: WatchHandler,
    counters: RpcCounters,
    options: Partial<RpcOptions> = {},
  ) {
    this.o = { ...rpcDefaults, ...options };
    this.counters = counters;
  }

  start(): void {
    for (let p = 0; p < this.ownership.partitions; p++) if (this.ownership.owns(p)) this.listen(p);
    this.offChange = this.ownership.onChange((c) => {
      if (c.kind === 'gained') this.listen(c.partition);
      else this.unlisten(c.partition);
    });
  }

  close(): void {
    this.offChange?.();
    for (const p of [...this.subs.keys()]) this.unlisten(p);
  }

  private listen(partition: number): void {
    if (this.subs.has(partition)) return;
    const sub = this.nc.subscribe(clusterSubjects.rpcPartition(partition), {
      callback: (err, msg) => {
        if (err !== null) return this.o.log(`rpc: subscription of partition ${partition} failed: ${err.message}`);
        const verb = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
        void this.handle(partition, verb, msg.data)
          .catch((e: unknown) => fail(ErrorCode.store_failed, `rpc ${verb} failed on the owner: ${String(e)}`))
          .then((r) => {
            if (msg.reply) msg.respond(encoder.encode(JSON.stringify(r)));
          });
      },
    });
    this.subs.set(partition, sub);
  }

  private unlisten(partition: number): void {
    this.subs.get(partition)?.unsubscribe();
    this.subs.delete(partition);
  }

  /** One request, from NATS or from this node itself: the owner's checks, then the engine. */
  async handle(partition: number, verb: string, data: Uint8Array): Promise<Result<unknown>> {
    const bad = (code: ErrorCode, message: string, field?: string): Result<never> => {
      this.counters.badRequests++;
      this.o.log(`rpc: refused a ${verb} request on partition ${partition}: ${message}`);
      return fail(code, message, field);
    };
    if (!isVerb(verb)) return bad(ErrorCode.unknown_op, `rpc verb must be one of ${rpcVerbs.join(', ')}, got '${verb.slice(0, 40)}'`, 'verb');
    if (data.length > this.o.requestBytesMax) return bad(ErrorCode.payload_too_large, `rpc body must be <= ${this.o.requestBytesMax} bytes, got ${data.length}`);
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(decoder.decode(data));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return bad(ErrorCode.invalid_json, 'rpc body must be a JSON object');
      body = parsed as Record<string, unknown>;
    } catch {
      return bad(ErrorCode.invalid_json, 'rpc body must be JSON');
    }
    const id = body.portfolio_id;
    if (typeof id !== 'string' || id.length === 0) return bad(ErrorCode.invalid_field, 'portfolio_id must be a non-empty string', 'portfolio_id');
    if (partitionOf(id, this.ownership.partitions) !== partition) {
      return bad(ErrorCode.invalid_field, `portfolio_id '${id.slice(0, 64)}' is in partition ${partitionOf(id, this.ownership.partitions)}, not ${partition}`, 'portfolio_id');
    }
    if (!this.ownership.owns(partition)) {
      this.counters.notOwner++;
      return notOwned(partition, this.ownership.ownerOf(partition));
    }
    this.counters.served++;
    switch (verb) {
      case 'snapshot':
        return this.engine.snapshot(id, { lots: body.lots === true });
      case 'snapshotAt':
        if (typeof body.timestamp !== 'number') return bad(ErrorCode.invalid_timestamp, 'timestamp must be a number (epoch ms)', 'timestamp');
        return this.engine.snapshotAt(id, body.timestamp);
      case 'events':
        return this.engine.queryEvents({ ...(typeof body.query === 'object' && body.query !== null ? (body.query as EventQuery) : {}), portfolio_id: id });
      case 'lots':
        if (typeof body.symbol !== 'string') return bad(ErrorCode.invalid_symbol, 'symbol must be a string', 'symbol');
        return this.engine.lots(id, body.symbol);
      case 'watch':
        return this.watch(id, partition, body.snapshot === true);
    }
  }
}

function notOwned(partition: number, owner: string | undefined): Result<never> {
  return fail(ErrorCode.partition_unavailable, `partition ${partition} is not served here (owner: ${owner ?? 'none'}); retry`, undefined, true);
}

/** Any node's side: sends a portfolio's request to its partition's owner (itself: no NATS). */
export class RpcRouter {
  private readonly o: RpcOptions;

  constructor(
    private readonly nc: NatsConnection,
    private readonly ownership: OwnershipView,
    private readonly local: RpcServer,
    readonly counters: RpcCounters,
    options: Partial<RpcOptions> = {},
  ) {
    this.o = { ...rpcDefaults, ...options };
  }

  partitionOf(portfolioId: string): number {
    return partitionOf(portfolioId, this.ownership.partitions);
  }

  async call<T>(portfolioId: string, verb: RpcVerb, fields: Record<string, unknown> = {}): Promise<Result<T>> {
    const partition = this.partitionOf(portfolioId);
    const body = encoder.encode(JSON.stringify({ ...fields, portfolio_id: portfolioId }));
    if (this.ownership.owns(partition)) return (await this.local.handle(partition, verb, body)) as Result<T>;
    this.counters.sent++;
    try {
      const msg = await this.nc.request(clusterSubjects.rpc(partition, verb), body, { timeout: this.o.requestTimeoutMs });
      return JSON.parse(decoder.decode(msg.data)) as Result<T>;
    } catch (e) {
      this.counters.unanswered++;
      return fail(
        ErrorCode.partition_unavailable,
        `no owner of partition ${partition} answered ${verb} within ${this.o.requestTimeoutMs} ms (${(e as Error).message}); retry`,
        undefined,
        true,
      );
    }
  }

  snapshot(portfolioId: string, options: { lots?: boolean } = {}): Promise<Result<PortfolioSnapshot>> {
    return this.call(portfolioId, 'snapshot', options.lots === true ? { lots: true } : {});
  }

  snapshotAt(portfolioId: string, timestamp: number): Promise<Result<PortfolioSnapshot>> {
    return this.call(portfolioId, 'snapshotAt', { timestamp });
  }

  /** A query naming a portfolio goes to its owner; the events of one node's log otherwise (docs/CLUSTER.md). */
  queryEvents(portfolioId: string, query: EventQuery): Promise<Result<StoredEvent[]>> {
    return this.call(portfolioId, 'events', { query });
  }

  lots(portfolioId: string, symbol: string): Promise<Result<PositionLots>> {
    return this.call(portfolioId, 'lots', { symbol });
  }
}

export function newRpcCounters(): RpcCounters {
  return { served: 0, badRequests: 0, notOwner: 0, sent: 0, unanswered: 0 };
}
