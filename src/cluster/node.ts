// The cluster node: one engine joined to a NATS JetStream cluster (docs/CLUSTER.md). It composes
// the stations of src/cluster/: ownership (ownership.ts: who serves which partition), the command
// publisher (every command a client sends to this node goes to the command stream), and one
// command consumer per partition this node owns (commandConsumer.ts: apply through the local
// engine, commit with the stream cursor, answer). routed() is the Engine the server talks to:
// commands go through the stream, everything else goes to the local engine as before.

import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { importAnswersOf, type CommandOptions, type CorporateActionView, type Engine, type ImportItem } from '../engine/api.js';
import { ErrorCode, fail, type EngineError, type Result } from '../errors.js';
import { validateCreatePortfolio, validateTrade, type ValidTrade } from '../domain/validate.js';
import type { CreatePortfolioInput, TradeInput, TradeResult } from '../domain/types.js';
import { commandBytesMax, type CommandOp } from './commandCodec.js';
import { PartitionConsumer, partitionScope, type ConsumerCounters } from './commandConsumer.js';
import { Broadcaster } from './broadcast.js';
import { CommandPublisher, publisherDefaults } from './commandPublisher.js';
import { Ownership, ownershipDefaults, validNodeId } from './ownership.js';
import { partitionOf, partitionsDefault, partitionsMax } from './partition.js';
import { clusterSubjects as names } from './subjects.js';
import type { OwnershipView } from './types.js';
import { EdgeStations, type EdgeEngine } from './edge.js';
import { startStep, StartStepError, type StartRetry, type StartStepRunner } from './startSteps.js';
import { ClusterCounters, type ClusterReadings } from './counters.js';
import { StatusResponder } from './status.js';
import { SnapshotShipper } from './snapshotShipper.js';
import { Takeover, takeoverDefaults } from './takeover.js';
import { encodeRecentResults, RecentResults } from './recentResults.js';
import { encodeCarry } from './carry.js';
import { encodeIds, snapshotIdsMaxDefault } from './idsSegment.js';
import { snapshotRowCounts } from '../shard/snapshotCodec.js';
import type { EventQuery } from '../engine/api.js';

export interface ClusterOptions {
  /** NATS server URL(s), comma separated. */
  nats: string;
  nodeId: string;
  partitions?: number;
  heartbeatMs?: number;
  ownerTimeoutMs?: number;
  commandReplyTimeoutMs?: number;
  commandsInFlightMax?: number;
  /** JetStream dedup window of the command stream (Nats-Msg-Id), set when the stream is created. */
  dedupWindowMs?: number;
  /** Replicas of the command stream and the KV buckets (1, 3 or 5; 3 on a three-server NATS cluster), set when created. */
  replicas?: number;
  /** How often an owner ships a snapshot of each partition it owns whose stream cursor moved (0: only on release). */
  snapshotShipIntervalMs?: number;
  /** One blob read of a shipped snapshot on take-over may take this long (then it is retried). */
  snapshotReadTimeoutMs?: number;
  /** Blob reads of one take-over before the claim is given back. */
  snapshotReadAttemptsMax?: number;
  /** Trade ids and command keys a shipped snapshot carries per partition (idsSegment.ts); past it the rest are not carried. */
  snapshotIdsMax?: number;
  /** How long the start may wait for JetStream to answer its setup requests (each retried meanwhile). */
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

export const clusterDefaults = {
  partitions: partitionsDefault,
  ...ownershipDefaults,
  ...publisherDefaults,
  dedupWindowMs: 120_000,
  replicas: 1,
  snapshotShipIntervalMs: 30_000,
  snapshotIdsMax: snapshotIdsMaxDefault,
  startTimeoutMs: 60_000,
  ...takeoverDefaults,
} as const;

/** How often an owner looks for corporate action steps due on its partitions (each is then published on the partition's stream). */
export const corporateCheckMs = 250;

/** A clean stop waits at most this long for its last snapshots to ship (NATS down: it stops without them). */
export const releaseShipTimeoutMs = 5_000;

export class ClusterStartError extends Error {
  override name = 'ClusterStartError';
  constructor(readonly error: EngineError) {
    super(error.message);
  }
}

export class ClusterNode {
  readonly consumerCounters: ConsumerCounters = { applied: 0, skipped: 0, badMessages: 0 };
  private readonly consumers = new Map<number, PartitionConsumer>();
  /** Claim -> ready durations (ms) of the partitions this node took, most recent last (bounded). */
  readonly handoverMs: number[] = [];
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly engine: Engine,
    readonly ownership: Ownership,
    readonly publisher: CommandPublisher,
    private readonly log: (line: string) => void,
    /** Ticks over NATS, the update relay and the RPC router (edge.ts): started with the claims, closed first. */
    readonly edge: EdgeStations,
    /** What /metrics and mtm cluster status read (counters.ts). */
    readonly counters: ClusterCounters,
    /** Shipped partition snapshots (snapshotShipper.ts). */
    readonly shipper: SnapshotShipper,
    /** Corporate actions and instrument definitions to every partition (broadcast.ts). */
    readonly broadcaster: Broadcaster,
    /** Where a gained partition's books come from, and dropping a lost one's (takeover.ts). */
    readonly takeover: Takeover,
    private readonly heartbeatMs: number,
    /** Each owned partition's recent results, shipped with its snapshot (recentResults.ts). */
    private readonly recent: RecentResults,
    /** Trade ids and command keys a ship carries per partition (--cluster-snapshot-ids-max). */
    private readonly snapshotIdsMax: number,
  ) {
    this.status = new StatusResponder(nc, ownership, counters, () => this.readings());
  }

  private shipTimer: NodeJS.Timeout | null = null;
  private corporateTimer: NodeJS.Timeout | null = null;
  /** Partitions whose due steps are being published (one round per partition at a time; bounded by the partition count). */
  private readonly stepping = new Set<number>();
  /** The sequence this node last shipped per partition: a round skips a partition whose cursor did not move (bounded by the partition count). */
  private readonly shippedSeq = new Map<number, number>();
  private shipRound: Promise<void> | null = null;
  /** Per partition, the drop in progress (a take of the partition waits for it); bounded by the partition count. */
  private readonly work = new Map<number, Promise<void>>();
  /** Partitions whose books the engine recovered at start: dropped once another node is seen owning them. */
  private residentAtStart = new Set<number>();
  private foreignTimer: NodeJS.Timeout | null = null;
  /** Stream purges after a confirmed ship: how many, and the messages they removed. */
  readonly purges = { count: 0, messages: 0, failed: 0 };

  private readonly status: StatusResponder;

  /** The node's cluster readings (/metrics: EngineMetrics.attachCluster; mtm cluster status). */
  readings(): ClusterReadings {
    return this.edge.readings(this.counters);
  }

  /** Joins the cluster; claims partitions once the engine has recovered. Throws ClusterStartError on a refusal. */
  static async start(engine: Engine & EdgeEngine & { ready?: Promise<void> }, options: ClusterOptions): Promise<ClusterNode> {
    const o = { ...clusterDefaults, ...definedOnly(options) };
    const log = options.log ?? ((line: string) => console.log(line));
    if (typeof options.nodeId !== 'string' || !validNodeId(options.nodeId)) {
      throw new ClusterStartError({ code: ErrorCode.invalid_field, message: `node-id: --nats needs --node-id matching [A-Za-z0-9_-]{1,64}, got ${JSON.stringify(options.nodeId) ?? 'none'}`, field: 'node-id' });
    }
    if (![1, 3, 5].includes(o.replicas)) {
      throw new ClusterStartError({ code: ErrorCode.invalid_field, message: `cluster-replicas must be 1, 3 or 5 (JetStream replicas), got ${o.replicas}`, field: 'cluster-replicas' });
    }
    if (!Number.isSafeInteger(o.partitions) || o.partitions < 1 || o.partitions > partitionsMax) {
      throw new ClusterStartError({ code: ErrorCode.invalid_field, message: `partitions must be an integer in 1..${partitionsMax}`, field: 'partitions' });
    }
    const nc = await connect({ servers: options.nats.split(','), name: `mtm-${options.nodeId}`, maxReconnectAttempts: -1 }).catch((err: unknown) => {
      throw new ClusterStartError({ code: ErrorCode.cluster_refused, message: `cluster: cannot connect to NATS at ${options.nats}: ${String(err)}`, field: 'nats' });
    });
    const retry: StartRetry = { deadline: performance.now() + o.startTimeoutMs, now: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)), log };
    const step: StartStepRunner = (what, fn) => startStep(what, fn, retry);
    try {
      const jsm = await step('the JetStream account info', () => jetstreamManager(nc));
      await step(`creating stream ${names.commandStream}`, () => ensureStream(jsm, o.dedupWindowMs, o.replicas));
      const counters = new ClusterCounters(o.partitions);
      const owned = await Ownership.open(nc, { cluster: counters, nodeId: o.nodeId, partitions: o.partitions, heartbeatMs: o.heartbeatMs, ownerTimeoutMs: o.ownerTimeoutMs, replicas: o.replicas, now: () => performance.now(), log }, step);
      if (!owned.ok) throw new ClusterStartError(owned.error);
      const js = jetstream(nc);
      const publisher = new CommandPublisher(nc, js, jsm, { partitions: o.partitions, commandReplyTimeoutMs: o.commandReplyTimeoutMs, commandsInFlightMax: o.commandsInFlightMax });
      const edge = new EdgeStations(nc, engine, owned.value, { log });
      const shipper = await step(`creating object store ${names.snapshotStore}`, () => SnapshotShipper.open(nc, o.replicas));
      const broadcaster = await step(`creating KV bucket ${names.definitionsBucket}`, () => Broadcaster.open(nc, o.replicas, o.partitions));
      const recent = new RecentResults(o.partitions, o.dedupWindowMs);
      const takeover = new Takeover(engine, shipper, recent, { partitions: o.partitions, snapshotReadTimeoutMs: o.snapshotReadTimeoutMs, snapshotReadAttemptsMax: o.snapshotReadAttemptsMax, snapshotIdsMax: o.snapshotIdsMax, log });
      const node = new ClusterNode(nc, jsm, engine, owned.value, publisher, log, edge, counters, shipper, broadcaster, takeover, o.heartbeatMs, recent, o.snapshotIdsMax);
      node.status.start();
      node.ownership.setGate({ take: (p, epoch) => node.take(p, epoch), drop: (p) => node.drop(p) });
      if (o.snapshotShipIntervalMs > 0) node.shipTimer = setInterval(() => void node.shipOwned(), o.snapshotShipIntervalMs).unref();
      node.corporateTimer = setInterval(() => {
        for (const p of node.consumers.keys()) node.publishDueSteps(p);
      }, corporateCheckMs).unref();
      // Claims wait for recovery; meanwhile this node already publishes its clients' commands.
      void (engine.ready ?? Promise.resolve()).then(
        () => {
          if (node.stopping !== null) return;
          node.watchResident();
          node.ownership.run();
          node.edge.start();
        },
        () => undefined,
      );
      return node;
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw err instanceof StartStepError ? new ClusterStartError({ code: ErrorCode.cluster_refused, message: err.message, field: 'nats' }) : err;
    }
  }

  get view(): OwnershipView {
    return this.ownership;
  }

  private async take(partition: number, epoch: number): Promise<void> {
    const started = performance.now();
    await this.work.get(partition);
    const plan = await this.takeover.prepare(partition);
    const js = jetstream(this.nc);
    const c = new PartitionConsumer(
      {
        nc: this.nc,
        js,
        jsm: this.jsm,
        engine: this.engine,
        current: (p, e) => this.ownership.current(p, e),
        fence: (p) => this.ownership.fence(p),
        counters: this.consumerCounters,
        cluster: this.counters,
        partitions: this.ownership.partitions,
        onCorporate: (p) => this.publishDueSteps(p),
        log: this.log,
        guard: (p, cursor) => this.takeover.gap(p, cursor),
        remember: (p, r) => this.recent.add(p, r),
      },
      partition,
      epoch,
    );
    this.consumers.get(partition)?.stop();
    this.consumers.set(partition, c);
    await c.start();
    const ms = performance.now() - started;
    if (this.handoverMs.length >= 1_024) this.handoverMs.shift();
    this.handoverMs.push(ms);
    const from = plan.source === 'snapshot' ? `from the shipped snapshot at stream seq ${plan.cursor} (${plan.portfolios} portfolios loaded in ${plan.loadMs.toFixed(1)} ms)` : plan.source === 'local' ? `from its own copy at stream seq ${plan.cursor}` : 'from the stream start';
    this.log(`cluster: gained partition ${partition} (epoch ${epoch}): caught up to stream seq ${this.engine.streamCursor(partition)} in ${ms.toFixed(1)} ms, ${from}`);
  }

  /**
   * The partitions whose books the engine recovered at start (its copies from before a restart): each
   * is used if this node takes it (takeover.ts), and dropped once another node is seen owning it, so a
   * stale copy is not revalued on this node's ticks for longer than that.
   */
  private watchResident(): void {
    const P = this.ownership.partitions;
    for (const id of this.engine.portfolioIds(() => true)) this.residentAtStart.add(partitionOf(id, P));
    if (this.residentAtStart.size === 0) return;
    this.foreignTimer = setInterval(() => {
      for (const p of this.residentAtStart) {
        if (this.ownership.heldPartitions().includes(p)) this.residentAtStart.delete(p);
        else {
          const owner = this.ownership.ownerOf(p);
          if (owner === undefined || owner === this.ownership.nodeId) continue;
          this.residentAtStart.delete(p);
          this.dropBooks(p, null);
        }
      }
      if (this.residentAtStart.size === 0 && this.foreignTimer !== null) clearInterval(this.foreignTimer);
    }, this.heartbeatMs).unref();
  }

  /** The partition's books leave the engine after the consumer's last apply (takeover.ts drop); a take of it waits. */
  private dropBooks(partition: number, c: PartitionConsumer | null): void {
    const lastApply = c === null ? Promise.resolve() : c.exclusive(() => Promise.resolve());
    const work: Promise<void> = (this.work.get(partition) ?? Promise.resolve())
      .then(() => lastApply)
      .then(() => this.takeover.drop(partition))
      .then(
        (n) => this.log(`cluster: partition ${partition}: dropped ${n} portfolios (served by another node now)`),
        (err: unknown) => this.log(`cluster: partition ${partition}: drop failed: ${String(err)}`),
      )
      .finally(() => {
        if (this.work.get(partition) === work) this.work.delete(partition);
      });
    this.work.set(partition, work);
  }

  /** Resolves once every drop in progress is done (tests; a take waits for its partition's). */
  async settledDrops(): Promise<void> {
    while (this.work.size > 0) await Promise.all([...this.work.values()]);
  }

  /**
   * Ships the partition's books as of its stream cursor, taken between two applies of its consumer
   * while this node still holds the claim. Answers the shipped sequence, or null when nothing was
   * shipped (not owned or not caught up, nothing applied yet, or the store already had this sequence).
   */
  async shipSnapshot(partition: number): Promise<number | null> {
    const c = this.consumers.get(partition);
    if (c === undefined || !c.ready) return null;
    const P = this.ownership.partitions;
    const image = await c.exclusive(async () => {
      if (!c.ready || !this.ownership.current(partition, c.epoch)) return null;
      const seq = this.engine.streamCursor(partition);
      if (seq === 0 || seq <= (this.shippedSeq.get(partition) ?? 0)) return null;
      const segments = await this.engine.exportBooks((id) => partitionOf(id, P) === partition);
      // What the stream below held besides the books (carry.ts): read at the same point as the books.
      const carry = encodeCarry({ actions: this.engine.corporateCarryIn(partitionScope(partition, P).name), instruments: this.engine.listInstruments() });
      return { seq, segments, portfolios: snapshotRowCounts(segments).portfolios, results: encodeRecentResults(this.recent.shipped(partition)), ids: this.idsOf(partition), carry };
    });
    if (image === null) return null;
    const put = await this.shipper.put(partition, image);
    this.shippedSeq.set(partition, image.seq);
    if (!put) return null;
    await this.purgeBelow(partition, image.seq, c);
    return image.seq;
  }

  /**
   * Every trade id and command key of the partition's portfolios (the ids segment), at most
   * snapshotIdsMax: past it the rest are left out (logged), and a resend of one of them older than the
   * dedup window reaches a new owner that does not know it (docs/CLUSTER.md).
   */
  private idsOf(partition: number): Uint8Array {
    const P = this.ownership.partitions;
    let left = this.snapshotIdsMax;
    const by = new Map<string, string[]>();
    for (const id of this.engine.portfolioIds((x) => partitionOf(x, P) === partition)) {
      const ids = this.engine.tradeIdsOf(id, left);
      by.set(id, ids);
      left -= ids.length;
      if (left <= 0) {
        this.log(`cluster: partition ${partition}: the snapshot carries ${this.snapshotIdsMax} trade and command ids (--cluster-snapshot-ids-max); the rest are not carried`);
        break;
      }
    }
    return encodeIds(by);
  }

  /**
   * Stream retention: after a confirmed put of the partition's image at seq, the messages of its subject
   * up to seq are purged (a take-over reads that image and replays from seq + 1; only one image per
   * partition is kept). Only while this node still serves the partition with the consumer that made
   * the image: a node that lost it purges nothing (the new owner may be replaying from its own cursor).
   */
  private async purgeBelow(partition: number, seq: number, c: PartitionConsumer): Promise<void> {
    if (this.consumers.get(partition) !== c || !this.ownership.owns(partition)) return;
    try {
      const r = await this.jsm.streams.purge(names.commandStream, { filter: names.command(partition), seq });
      this.purges.count++;
      this.purges.messages += r.purged;
    } catch (err) {
      this.purges.failed++;
      this.log(`cluster: partition ${partition}: stream not purged below seq ${seq + 1}: ${String(err)}`);
    }
  }

  /** One round of the schedule: every owned partition in turn (one round at a time). */
  shipOwned(): Promise<void> {
    this.shipRound ??= (async () => {
      for (const p of this.ownership.heldPartitions()) {
        if (this.stopping !== null) break;
        await this.shipSnapshot(p).catch((err: unknown) => this.log(`cluster: partition ${p}: snapshot not shipped: ${String(err)}`));
      }
    })().finally(() => {
      this.shipRound = null;
    });
    return this.shipRound;
  }

  /**
   * A clean stop ships a last snapshot of every partition it owns before releasing them, while the
   * ownership heartbeats still run (so the claims stay current), bounded by releaseShipTimeoutMs.
   */
  private async shipBeforeStop(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, releaseShipTimeoutMs);
    });
    const ships = Promise.all(
      this.ownership.heldPartitions().map((p) =>
        this.shipSnapshot(p).catch((err: unknown) => this.log(`cluster: partition ${p}: last snapshot not shipped on stop: ${String(err)}`)),
      ),
    );
    await Promise.race([ships, timeout]);
    clearTimeout(timer);
  }

  /**
   * The corporate steps due on a partition this node serves, each published on the partition's stream
   * (applied when consumed, so every replayer applies it at the same point). Only a caught-up owner
   * publishes: a replaying one may not have reached the step already in the stream. A step published
   * twice (another round, a former owner) is deduped within the window and a no-op after it.
   */
  publishDueSteps(partition: number): void {
    const c = this.consumers.get(partition);
    if (c === undefined || !c.ready || this.stepping.has(partition) || this.stopping !== null) return;
    const due = this.engine.corporateStepsDue(partitionScope(partition, this.ownership.partitions).name);
    if (due.length === 0) return;
    this.stepping.add(partition);
    void (async () => {
      for (const d of due) await this.broadcaster.publishStep(partition, d);
    })()
      .catch((err: unknown) => this.log(`cluster: partition ${partition}: corporate step not published (next round retries): ${String(err)}`))
      .finally(() => this.stepping.delete(partition));
  }

  /** A corporate action as the partitions this node serves applied it. */
  private corporateView(actionId: string): CorporateActionView | null {
    const P = this.ownership.partitions;
    return this.engine.corporateActionIn(actionId, this.ownership.heldPartitions().map((p) => partitionScope(p, P).name));
  }

  private drop(partition: number): void {
    const c = this.consumers.get(partition) ?? null;
    c?.stop();
    this.consumers.delete(partition);
    this.counters.consumerPending[partition] = 0;
    // A clean stop keeps its books: a restart resumes from them when nothing newer was shipped.
    if (this.stopping === null) this.dropBooks(partition, c);
  }

  /** The Engine the server talks to: commands through the stream, the rest to the local engine. */
  routed<E extends Engine>(engine: E): E {
    const send = (op: CommandOp, portfolio: string, args: unknown, msgId?: string): Promise<Result<never>> => this.publisher.send(op, portfolio, args, msgId) as Promise<Result<never>>;
    const sendOnce = (op: CommandOp, portfolio: string, args: unknown, o: CommandOptions | undefined): Promise<Result<never>> => {
      const commandId = o?.command_id ?? randomUUID();
      return this.publisher.send(op, portfolio, args, `${portfolio}\u001fcmd\u001f${commandId}`, commandId) as Promise<Result<never>>;
    };
    const tradeOf = (portfolio: string, t: ValidTrade): Promise<Result<never>> =>
      // A dry run books nothing and must not use up its id's dedup slot.
      send('trade', portfolio, tradeInputOf(t), t.dry_run === true ? undefined : `${portfolio}\u001f${t.trade_id}`);
    const overrides: Partial<Engine> = {
      createPortfolio: (input: CreatePortfolioInput) => {
        const v = validateCreatePortfolio(input);
        if (!v.ok) return Promise.resolve(v);
        // The receiving node names a new portfolio: its id decides the partition.
        const id = v.value.id ?? this.newId();
        return send('create', id, { ...input, id });
      },
      trade: (portfolio: string, input: TradeInput) => {
        const v = validateTrade(input, Date.now());
        return v.ok ? tradeOf(portfolio, v.value) : Promise.resolve(v);
      },
      tradeValidated: (portfolio: string, t: ValidTrade) => tradeOf(portfolio, t),
      // Each trade through its partition's stream, as a single trade goes (its owner dedups the id).
      importTrades: async (items: readonly ImportItem[]) => importAnswersOf(await Promise.all(items.map((item) => tradeOf(item.portfolio, item.trade) as Promise<Result<TradeResult>>))),
      // Not a trade: the client's command_id (or a fresh one, named in a timeout answer) is the dedup
      // key, and the owner applies it at most once per portfolio (docs/CLUSTER.md).
      cash: (portfolio: string, op: unknown, o?: CommandOptions) => sendOnce('cash', portfolio, op, o),
      convertCash: (portfolio: string, input: unknown, o?: CommandOptions) => sendOnce('fxConvert', portfolio, input, o),
      setLimits: (portfolio: string, limits: unknown, o?: CommandOptions) => sendOnce('limits', portfolio, limits, o),
      pause: (portfolio: string, o?: CommandOptions) => sendOnce('pause', portfolio, null, o),
      resume: (portfolio: string, o?: CommandOptions) => sendOnce('resume', portfolio, null, o),
      closePortfolio: (portfolio: string, o?: CommandOptions) => sendOnce('close', portfolio, null, o),
      // Reads and subscriptions go to the partition's owner (edge.ts: RPC router, update relay); ticks over NATS.
      ingestTick: (symbol: string, price: number, ts: number, size?: number) => this.edge.ticks.ingestTick(symbol, price, ts, size),
      ingestTicks: (ticks) => this.edge.ticks.ingestTicks(ticks),
      subscribe: (portfolio, listener, options) => this.edge.relay.subscribe(portfolio, listener, options),
      snapshot: (portfolio: string, options?: { lots?: boolean }) => this.edge.router.snapshot(portfolio, options),
      snapshotAt: (portfolio: string, timestamp: number) => this.edge.router.snapshotAt(portfolio, timestamp),
      lots: (portfolio: string, symbol: string) => this.edge.router.lots(portfolio, symbol),
      // A query naming a portfolio goes to its owner; one without, or of a system log (_market, _instruments), reads this node's log.
      queryEvents: (query: EventQuery) => (query.portfolio_id === undefined || query.portfolio_id.startsWith('_') ? engine.queryEvents(query) : this.edge.router.queryEvents(query.portfolio_id, query)),
      // Every partition's portfolios: published to every partition's stream (broadcast.ts), applied by each owner there.
      corporateAction: (input: unknown) => this.broadcaster.corporate(input, Date.now(), (id) => this.corporateView(id)),
      listCorporateActions: (query: { after_seq?: number; limit?: number } = {}) => this.broadcaster.listCorporate(query, (id) => this.corporateView(id)),
      defineInstrument: (symbol: string, input: unknown) => this.broadcaster.instrument(symbol, input),
      // Held elsewhere (or not yet known here): the owner answers portfolio_not_found if it does not exist.
      has: (portfolio: string) => engine.has(portfolio) || !this.ownership.owns(partitionOf(portfolio, this.ownership.partitions)),
    };
    return new Proxy(engine, {
      get(target, prop) {
        if (typeof prop === 'string' && Object.hasOwn(overrides, prop)) return overrides[prop as keyof Engine];
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  stats(): { owned: number; held: number[]; liveNodes: string[]; applied: number; skipped: number; badMessages: number; published: number; duplicates: number; timeouts: number } {
    return {
      owned: this.ownership.ownedCount(),
      held: this.ownership.heldPartitions(),
      liveNodes: this.ownership.liveNodes(),
      ...this.consumerCounters,
      published: this.publisher.published,
      duplicates: this.publisher.duplicates,
      timeouts: this.publisher.timeouts,
    };
  }

  private newId(): string {
    return `p-${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  }

  /** Clean stop: every partition released (others claim them at once), then the connection drained. */
  stop(): Promise<void> {
    if (this.stopping === null) this.stopping = this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.status.close();
    if (this.shipTimer !== null) clearInterval(this.shipTimer);
    if (this.foreignTimer !== null) clearInterval(this.foreignTimer);
    if (this.corporateTimer !== null) clearInterval(this.corporateTimer);
    await this.shipBeforeStop();
    await this.edge.close();
    await this.ownership.stop();
    await this.nc.drain().catch(() => undefined);
  }
}

function tradeInputOf(t: ValidTrade): TradeInput {
  return {
    trade_id: t.trade_id,
    symbol: t.symbol,
    side: t.side,
    quantity: t.quantity,
    price: t.price,
    fee: t.fee,
    ts: t.ts,
    currency: t.currency,
    fx_rate: t.fx_rate,
    lot_ids: t.lot_ids,
    ...(t.dry_run === true ? { dry_run: true } : {}),
  } as TradeInput;
}

function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Creates the command stream, or checks the one there (created by the first node). */
export async function ensureStream(jsm: JetStreamManager, dedupWindowMs: number, replicas: number): Promise<void> {
  // Only "not found" means "create it": no answer is retried by the start step.
  const info = await jsm.streams.info(names.commandStream).catch((err: unknown) => {
    if (err instanceof Error && err.name === 'StreamNotFoundError') return null;
    throw err;
  });
  if (info !== null) return;
  await jsm.streams
    .add({
      name: names.commandStream,
      subjects: [names.commandsAll],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(dedupWindowMs),
      max_msg_size: commandBytesMax + 1_024,
      num_replicas: replicas,
    })
    .catch(async (err: unknown) => {
      // Another node created it between our look and our add.
      // Or our own add, whose answer was lost: the stream is there either way.
      if ((await jsm.streams.info(names.commandStream).catch(() => null)) === null) throw err;
    });
}
