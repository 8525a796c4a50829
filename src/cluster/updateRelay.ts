// Clients on any node (docs/CLUSTER.md, "Relaying updates"). A client may subscribe on any node to any
// portfolio. For a portfolio whose partition this node owns, the subscription is the engine's own. For
// one owned elsewhere, the node asks the owner to watch it (RPC `watch`, which answers the snapshot),
// listens on the partition's update subject and hands the owner's delta bytes to its listeners as they
// came: the bytes the owner's shard wrote, never decoded or re-encoded on the way (an object listener
// decodes them once, as on the owner).
//
// Owner side (UpdatePublisher): a remote watch is an engine bytes subscription held under a lease
// (watchLeaseMs, renewed by each relaying node every watchRenewMs); the deltas of every watched portfolio
// of a partition are sent once per batch, as one message on clusterSubjects.updates(partition) in the
// per-connection updates frame layout (src/protocol/delta.ts: u8 0x02 | u8 3 | u16 0 | u32 K | K x
// (u32 length | delta record)), records copied as they are. A lapsed lease or a lost partition ends the
// watch. Cost: every node relaying any portfolio of a partition receives the deltas of all the remotely
// watched portfolios of that partition, and drops the ones it does not relay.
//
// Consistency: a listener gets a snapshot, then only deltas whose seq is above it (deltas that arrive
// while it waits for its snapshot are kept, bounded, and replayed after it). It gets a fresh snapshot
// flagged resync, as after a shard restart today, when: the partition changes owner (this node gains or
// loses it, or the owner a renewal reaches is another node), the owner's shard restarted (the renewal
// says so), this node reconnected to NATS (deltas may have been lost on the way), or its buffer overflowed.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { ErrorCode, fail, ok, type EngineError, type Result } from '../errors.js';
import type { PortfolioSnapshot } from '../domain/types.js';
import type { EngineMessage, Listener, SubscribeOptions } from '../engine/api.js';
import { Delta, deltaOf } from '../engine/deltas.js';
import { DELTA_VERSION, DeltaKind, HeldBook } from '../protocol/delta.js';
import { partitionOf } from './partition.js';
import type { RpcRouter } from './rpc.js';
import { clusterSubjects } from './subjects.js';
import type { OwnershipView } from './types.js';

/** What both sides need of the node's engine. */
export interface RelayEngine {
  subscribe(portfolioId: string, listener: Listener, options?: SubscribeOptions): Result<() => void>;
  snapshot(portfolioId: string, options?: { lots?: boolean }): Promise<Result<PortfolioSnapshot>>;
}

export interface RelayOptions {
  /** An owner keeps publishing a remotely watched portfolio this long after the last renewal. */
  watchLeaseMs: number;
  /** How often a relaying node renews its watches (and checks the owner did not change). */
  watchRenewMs: number;
  /** Portfolios an owner publishes for other nodes at once (more watch requests are refused). */
  remoteWatchesMax: number;
  /** Portfolios a node relays from other owners at once (more subscriptions are refused). */
  relayedPortfoliosMax: number;
  /** Deltas kept per relayed portfolio while a listener waits for its snapshot (past it: resync). */
  bufferedDeltasMax: number;
  /** Delta records an owner collects for one partition before sending them without waiting for the batch's end. */
  recordsPerMessageMax: number;
  now: () => number;
  log: (line: string) => void;
}

export const relayDefaults: RelayOptions = {
  watchLeaseMs: 10_000,
  watchRenewMs: 2_000,
  remoteWatchesMax: 100_000,
  relayedPortfoliosMax: 100_000,
  bufferedDeltasMax: 1_024,
  recordsPerMessageMax: 4_096,
  now: () => Date.now(),
  log: () => undefined,
};

export interface RelayCounters {
  /** Update messages an owner sent (one per partition per batch). */
  messagesPublished: number;
  /** Delta records in them. */
  recordsPublished: number;
  /** Delta records received from owners and handed to local listeners (once per record, whatever the listener count). */
  recordsRelayed: number;
  /** Resync snapshots given to relayed listeners. */
  resyncs: number;
  /** Update messages on an update subject that were not a valid updates frame (logged, counted, dropped). */
  badMessages: number;
  /** Remote watches an owner holds now. */
  remoteWatches: number;
  /** Portfolios this node relays from other owners now. */
  relayedPortfolios: number;
}

/** The answer to `watch`: a snapshot when asked for one, and whether the owner's view restarted since the last renewal. */
export interface WatchAnswer {
  owner: string;
  snapshot: PortfolioSnapshot | null;
  resync: boolean;
}

interface RemoteWatch {
  readonly partition: number;
  unsubscribe: () => void;
  leaseUntil: number;
  /** The owner's shard resynced this portfolio since the last renewal. */
  resynced: boolean;
}

/** The owner's side: remote watches and the per-partition update messages. */
export class UpdatePublisher {
  private readonly o: RelayOptions;
  private readonly watches = new Map<string, RemoteWatch>();
  /** Per partition: delta records waiting for the end of the batch. */
  private readonly pending = new Map<number, Uint8Array[]>();
  private flushQueued = false;
  private timer: NodeJS.Timeout | null = null;
  private offChange: (() => void) | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly engine: RelayEngine,
    private readonly ownership: OwnershipView,
    readonly counters: RelayCounters,
    options: Partial<RelayOptions> = {},
  ) {
    this.o = { ...relayDefaults, ...options };
  }

  start(): void {
    this.timer = setInterval(() => this.expire(), Math.max(1, Math.floor(this.o.watchLeaseMs / 4)));
    this.timer.unref();
    this.offChange = this.ownership.onChange((c) => {
      if (c.kind === 'lost') this.dropPartition(c.partition);
    });
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.offChange?.();
    this.flush();
    for (const id of [...this.watches.keys()]) this.drop(id);
  }

  /** RPC `watch` (the caller checked ownership): start or renew the lease; a snapshot when `snapshot`. */
  async watch(portfolioId: string, partition: number, snapshot: boolean): Promise<Result<WatchAnswer>> {
    let w = this.watches.get(portfolioId);
    // A renewal this node holds no watch for (lease lapsed, partition lost and regained, owner restarted):
    // deltas were not sent meanwhile, so the asker must resync.
    const lapsed = w === undefined;
    if (w === undefined) {
      if (this.watches.size >= this.o.remoteWatchesMax) {
        return fail(ErrorCode.limit_exceeded, `remote watches must be <= ${this.o.remoteWatchesMax}`, 'portfolio_id', true);
      }
      const watch: RemoteWatch = { partition, unsubscribe: () => undefined, leaseUntil: 0, resynced: false };
      let first = true;
      const sub = this.engine.subscribe(portfolioId, (m) => {
        this.onMessage(watch, m, first);
        first = false;
      }, { bytes: true });
      if (!sub.ok) return sub;
      watch.unsubscribe = sub.value;
      this.watches.set(portfolioId, watch);
      this.counters.remoteWatches = this.watches.size;
      w = watch;
    }
    w.leaseUntil = this.o.now() + this.o.watchLeaseMs;
    const resync = w.resynced || lapsed;
    w.resynced = false;
    if (!snapshot) return ok({ owner: this.ownership.nodeId, snapshot: null, resync });
    const s = await this.engine.snapshot(portfolioId);
    if (!s.ok) return s;
    return ok({ owner: this.ownership.nodeId, snapshot: s.value, resync: false });
  }

  private onMessage(w: RemoteWatch, m: EngineMessage, first: boolean): void {
    if (m.kind === 'delta') return this.enqueue(w.partition, m.delta.bytes);
    // The subscription's own first snapshot is not news; a later one is a shard restart's resync.
    if (m.kind === 'snapshot' && !first) w.resynced = true;
  }

  private enqueue(partition: number, record: Uint8Array): void {
    let list = this.pending.get(partition);
    if (list === undefined) {
      list = [];
      this.pending.set(partition, list);
    }
    list.push(record);
    if (list.length >= this.o.recordsPerMessageMax) this.publish(partition, list);
    else if (!this.flushQueued) {
      this.flushQueued = true;
      // The shard's batch is delivered in one turn: everything enqueued in it leaves in one message.
      queueMicrotask(() => this.flush());
    }
  }

  flush(): void {
    this.flushQueued = false;
    for (const [partition, list] of this.pending) if (list.length > 0) this.publish(partition, list);
  }

  private publish(partition: number, records: Uint8Array[]): void {
    let size = 8;
    for (const r of records) size += 4 + r.length;
    const frame = new Uint8Array(size);
    const view = new DataView(frame.buffer);
    frame[0] = DeltaKind.updates;
    frame[1] = DELTA_VERSION;
    view.setUint32(4, records.length, true);
    let o = 8;
    for (const r of records) {
      view.setUint32(o, r.length, true);
      frame.set(r, o + 4);
      o += 4 + r.length;
    }
    this.counters.messagesPublished++;
    this.counters.recordsPublished += records.length;
    records.length = 0;
    try {
      this.nc.publish(clusterSubjects.updates(partition), frame);
    } catch (e) {
      this.o.log(`update relay: publish on partition ${partition} failed: ${(e as Error).message}`);
    }
  }

  private expire(): void {
    const now = this.o.now();
    for (const [id, w] of this.watches) if (w.leaseUntil < now) this.drop(id);
  }

  private dropPartition(partition: number): void {
    for (const [id, w] of this.watches) if (w.partition === partition) this.drop(id);
    this.pending.delete(partition);
  }

  private drop(id: string): void {
    this.watches.get(id)?.unsubscribe();
    this.watches.delete(id);
    this.counters.remoteWatches = this.watches.size;
  }
}

/** Watch renewals a relaying node has out at once (a pass over many portfolios goes in slices of this). */
const renewalsInFlightMax = 64;

interface RelayListener {
  readonly listener: Listener;
  readonly bytes: boolean;
  /** Seq of the last snapshot or delta this listener got; -1 while it waits for a snapshot. */
  seq: number;
  /** Its next snapshot replaces a view it already had (resync: true). */
  resync: boolean;
  /** The engine's subscription while the partition is owned here. */
  local: (() => void) | null;
}

interface Relayed {
  readonly id: string;
  readonly partition: number;
  readonly listeners: Set<RelayListener>;
  mode: 'local' | 'remote';
  /** The owner the last watch answer came from. */
  owner: string | undefined;
  /** Deltas received while some listener waits for its snapshot. */
  buffer: Delta[];
  /** A snapshot request is on its way (the listeners at -1 get it). */
  syncing: boolean;
  /**
   * Remote mode: the positions the relayed stream's readers hold (from the owner's snapshot and the
   * records since), which its version 4 tick records decode against (src/protocol/delta.ts).
   */
  held: HeldBook;
  onError: ((e: EngineError) => void) | undefined;
}

/** Any node's side: every local subscription, attached to the local engine or relayed from the owner. */
export class UpdateRelay {
  private readonly o: RelayOptions;
  private readonly entries = new Map<string, Relayed>();
  /** Per partition: the update subject's subscription and how many remote entries use it. */
  private readonly partitionSubs = new Map<number, { sub: Subscription; users: number }>();
  private timer: NodeJS.Timeout | null = null;
  private offChange: (() => void) | null = null;
  private closed = false;
  private renewing = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly engine: RelayEngine,
    private readonly ownership: OwnershipView,
    private readonly router: RpcRouter,
    readonly counters: RelayCounters,
    options: Partial<RelayOptions> = {},
  ) {
    this.o = { ...relayDefaults, ...options };
  }

  start(): void {
    this.timer = setInterval(() => void this.renew(), this.o.watchRenewMs);
    this.timer.unref();
    this.offChange = this.ownership.onChange((c) => this.ownerChanged(c.partition));
    void (async () => {
      for await (const s of this.nc.status()) if (s.type === 'reconnect' && !this.closed) this.resyncAllRemote('reconnected to NATS');
    })();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.offChange?.();
    for (const e of this.entries.values()) for (const l of e.listeners) l.local?.();
    this.entries.clear();
    for (const { sub } of this.partitionSubs.values()) sub.unsubscribe();
    this.partitionSubs.clear();
    this.counters.relayedPortfolios = 0;
  }

  /**
   * The engine's subscribe, on any node: a snapshot, then updates (bytes with { bytes: true }). An error
   * found later (the owner does not know the portfolio) goes to onError, and the listener hears nothing more.
   */
  subscribe(portfolioId: string, listener: Listener, options: SubscribeOptions & { onError?: (e: EngineError) => void } = {}): Result<() => void> {
    if (this.closed) return fail(ErrorCode.engine_closed, 'the node is closing');
    const partition = partitionOf(portfolioId, this.ownership.partitions);
    let e = this.entries.get(portfolioId);
    if (e === undefined) {
      if (this.entries.size >= this.o.relayedPortfoliosMax) {
        return fail(ErrorCode.limit_exceeded, `subscribed portfolios per node must be <= ${this.o.relayedPortfoliosMax}`, 'portfolio_id', true);
      }
      e = { id: portfolioId, partition, listeners: new Set(), mode: 'remote', owner: undefined, buffer: [], syncing: false, held: new HeldBook(), onError: options.onError };
      if (this.ownership.owns(partition)) e.mode = 'local';
      else if (!this.usePartition(partition)) return fail(ErrorCode.limit_exceeded, 'update subscription refused by NATS', 'portfolio_id', true);
      this.entries.set(portfolioId, e);
      this.counters.relayedPortfolios = this.remoteCount();
    }
    const l: RelayListener = { listener, bytes: options.bytes === true, seq: -1, resync: false, local: null };
    if (e.mode === 'local') {
      const r = this.engine.subscribe(portfolioId, listener, { bytes: l.bytes });
      if (!r.ok) {
        if (e.listeners.size === 0) this.entries.delete(portfolioId);
        return r;
      }
      l.local = r.value;
    }
    e.listeners.add(l);
    if (e.mode === 'remote') void this.sync(e, false);
    const entry = e;
    return ok(() => this.unsubscribe(entry, l));
  }

  /** Portfolios relayed from other owners now. */
  relayedPortfolios(): string[] {
    return [...this.entries.values()].filter((e) => e.mode === 'remote').map((e) => e.id);
  }

  private unsubscribe(e: Relayed, l: RelayListener): void {
    if (!e.listeners.delete(l)) return;
    l.local?.();
    if (e.listeners.size > 0) return;
    this.entries.delete(e.id);
    if (e.mode === 'remote') this.releasePartition(e.partition);
    this.counters.relayedPortfolios = this.remoteCount();
  }

  private remoteCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.mode === 'remote') n++;
    return n;
  }

  private usePartition(partition: number): boolean {
    const used = this.partitionSubs.get(partition);
    if (used !== undefined) {
      used.users++;
      return true;
    }
    try {
      const sub = this.nc.subscribe(clusterSubjects.updates(partition), {
        callback: (err, msg) => {
          if (err !== null) return this.o.log(`update relay: subscription of partition ${partition} failed: ${err.message}`);
          this.receive(partition, msg.data);
        },
      });
      this.partitionSubs.set(partition, { sub, users: 1 });
      return true;
    } catch (err) {
      this.o.log(`update relay: cannot subscribe partition ${partition}: ${(err as Error).message}`);
      return false;
    }
  }

  private releasePartition(partition: number): void {
    const used = this.partitionSubs.get(partition);
    if (used === undefined || --used.users > 0) return;
    used.sub.unsubscribe();
    this.partitionSubs.delete(partition);
  }

  /** One owner message: the updates frame, records routed by their portfolio id. */
  private receive(partition: number, data: Uint8Array): void {
    const bad = badUpdatesFrame(data);
    if (bad !== null) {
      this.counters.badMessages++;
      this.o.log(`update relay: refused a message on partition ${partition} (${data.length} bytes): ${bad}`);
      return;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const count = view.getUint32(4, true);
    for (let k = 0, o = 8; k < count; k++) {
      const len = view.getUint32(o, true);
      const delta = deltaOf(data.subarray(o + 4, o + 4 + len));
      o += 4 + len;
      const e = this.entries.get(delta.portfolioId);
      if (e === undefined || e.mode !== 'remote' || e.partition !== partition) continue;
      this.counters.recordsRelayed++;
      this.deliver(e, delta);
    }
  }

  private deliver(e: Relayed, delta: Delta): void {
    const heldBefore = e.held.seq;
    e.held.observe(delta.bytes, delta.seq, delta.fromSeq);
    delta.held = e.held;
    // A record that does not follow the last one (lost on the way): what is held may be wrong, so
    // nothing decodes against it until a fresh snapshot.
    if (heldBefore >= 0 && e.held.seq < 0) void this.sync(e, true, 'a gap in the relayed updates');
    let waiting = false;
    for (const l of e.listeners) {
      if (l.seq < 0) waiting = true;
      else if (delta.seq > l.seq) {
        l.seq = delta.seq;
        l.listener(l.bytes ? { kind: 'delta', delta } : { kind: 'update', update: delta.update() });
      }
    }
    if (!waiting) return;
    if (e.buffer.length >= this.o.bufferedDeltasMax) {
      e.buffer = [];
      void this.sync(e, true, `more than ${this.o.bufferedDeltasMax} deltas while waiting for a snapshot`);
      return;
    }
    // Decoded now when its positions are held (the held book moves on before the buffer is read).
    if (e.held.seq === delta.seq) delta.decodeIfHeld();
    e.buffer.push(delta);
  }

  /**
   * Asks the owner to watch the portfolio and answer its snapshot; gives it to the listeners waiting
   * (every listener when `resync`), then the deltas buffered meanwhile.
   */
  private async sync(e: Relayed, resync: boolean, why = ''): Promise<void> {
    if (resync) {
      for (const l of e.listeners) {
        l.seq = -1;
        l.resync = true;
      }
      if (why !== '') this.o.log(`update relay: resync of ${e.id}: ${why}`);
    }
    if (e.syncing) return;
    e.syncing = true;
    const r = await this.router.call<WatchAnswer>(e.id, 'watch', { snapshot: true });
    e.syncing = false;
    if (this.entries.get(e.id) !== e || e.mode !== 'remote') return;
    if (!r.ok || r.value.snapshot === null) {
      if (!r.ok && r.error.code === ErrorCode.portfolio_not_found) return this.refuse(e, r.error);
      // No owner now (failover, handover): the next renewal tries again.
      if (!r.ok) this.o.log(`update relay: snapshot of ${e.id} not available yet: ${r.error.message}`);
      return;
    }
    e.owner = r.value.owner;
    const snapshot = r.value.snapshot;
    if (snapshot.seq >= e.held.seq) e.held.reset(snapshot);
    const waiting = [...e.listeners].filter((l) => l.seq < 0);
    for (const l of waiting) {
      const again = l.resync;
      l.seq = snapshot.seq;
      l.resync = false;
      if (again) this.counters.resyncs++;
      l.listener({ kind: 'snapshot', snapshot, resync: again });
    }
    // Record by record to every listener that waited: each decodes against the positions held at its seq.
    for (const d of e.buffer) {
      const heldBefore = e.held.seq;
      e.held.observe(d.bytes, d.seq, d.fromSeq);
      d.held = e.held;
      if (heldBefore >= 0 && e.held.seq < 0) {
        // Not the record after the snapshot: nothing decodes against what is held; a fresh snapshot.
        e.buffer = [];
        void this.sync(e, true, 'a gap between the snapshot and the relayed updates');
        return;
      }
      for (const l of waiting) {
        if (d.seq <= l.seq) continue;
        l.seq = d.seq;
        l.listener(l.bytes ? { kind: 'delta', delta: d } : { kind: 'update', update: d.update() });
      }
    }
    e.buffer = [];
    // Listeners that joined while the request was out wait for the next one.
    if ([...e.listeners].some((l) => l.seq < 0)) void this.sync(e, false);
  }

  private refuse(e: Relayed, error: EngineError): void {
    this.o.log(`update relay: ${e.id}: ${error.message}`);
    for (const l of [...e.listeners]) this.unsubscribe(e, l);
    e.onError?.(error);
  }

  /**
   * Every watchRenewMs: renew each remote watch; a new owner, a restarted owner view or a miss resyncs.
   * One pass at a time (a stalled owner makes requests wait requestTimeoutMs), renewalsInFlightMax at once.
   */
  private async renew(): Promise<void> {
    if (this.renewing) return;
    this.renewing = true;
    try {
      const due = [...this.entries.values()].filter((e) => e.mode === 'remote' && !e.syncing);
      for (let i = 0; i < due.length; i += renewalsInFlightMax) await Promise.all(due.slice(i, i + renewalsInFlightMax).map((e) => this.renewOne(e)));
    } finally {
      this.renewing = false;
    }
  }

  private async renewOne(e: Relayed): Promise<void> {
    if (e.listeners.size > 0 && [...e.listeners].every((l) => l.seq < 0)) return this.sync(e, false);
    const r = await this.router.call<WatchAnswer>(e.id, 'watch', { snapshot: false });
    if (this.entries.get(e.id) !== e || e.mode !== 'remote') return;
    if (!r.ok) {
      // The owner is gone or fenced: whoever serves next must be asked for a fresh view.
      if (r.error.code === ErrorCode.partition_unavailable) this.markResync(e);
      return;
    }
    if (r.value.owner !== e.owner) void this.sync(e, true, `partition ${e.partition} now served by ${r.value.owner} (was ${e.owner ?? 'unknown'})`);
    else if (r.value.resync) void this.sync(e, true, `the owner's shard restarted`);
  }

  /** The owner is unknown for now: the next answer, whoever gives it, is a resync. */
  private markResync(e: Relayed): void {
    e.owner = undefined;
  }

  /** This node gained or lost the partition: each of its subscriptions moves, with a resync. */
  private ownerChanged(partition: number): void {
    const owned = this.ownership.owns(partition);
    for (const e of this.entries.values()) {
      if (e.partition !== partition) continue;
      if (owned && e.mode === 'remote') this.toLocal(e);
      else if (!owned && e.mode === 'local') this.toRemote(e);
    }
    this.counters.relayedPortfolios = this.remoteCount();
  }

  private toLocal(e: Relayed): void {
    e.mode = 'local';
    e.buffer = [];
    this.releasePartition(e.partition);
    for (const l of e.listeners) {
      let first = true;
      const r = this.engine.subscribe(e.id, (m) => {
        if (first && m.kind === 'snapshot') {
          first = false;
          this.counters.resyncs++;
          return l.listener({ ...m, resync: true });
        }
        l.listener(m);
      }, { bytes: l.bytes });
      if (r.ok) l.local = r.value;
      else this.o.log(`update relay: ${e.id} gained but not subscribable here: ${r.error.message}`);
    }
  }

  private toRemote(e: Relayed): void {
    for (const l of e.listeners) {
      l.local?.();
      l.local = null;
      l.seq = -1;
      l.resync = true;
    }
    e.mode = 'remote';
    e.owner = undefined;
    if (!this.usePartition(e.partition)) return this.refuse(e, { code: ErrorCode.partition_unavailable, message: 'update subscription refused by NATS', retryable: true });
    void this.sync(e, true, `partition ${e.partition} left this node`);
  }

  private resyncAllRemote(why: string): void {
    for (const e of this.entries.values()) if (e.mode === 'remote') void this.sync(e, true, why);
  }
}

/** Why a message on an update subject is not an updates frame of delta records, or null. */
export function badUpdatesFrame(data: Uint8Array): string | null {
  if (data.length < 8) return 'shorter than the 8-byte header';
  if (data[0] !== DeltaKind.updates) return `kind ${data[0]} is not the updates frame (${DeltaKind.updates})`;
  if (data[1] !== DELTA_VERSION) return `version ${data[1]} is not ${DELTA_VERSION}`;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint32(4, true);
  let o = 8;
  for (let k = 0; k < count; k++) {
    if (o + 4 > data.length) return `record ${k} of ${count} is missing`;
    const len = view.getUint32(o, true);
    if (len < 117 || o + 4 + len > data.length) return `record ${k} has a bad length ${len}`;
    if (data[o + 4] !== DeltaKind.delta || data[o + 5] !== DELTA_VERSION) return `record ${k} is not a v${DELTA_VERSION} delta`;
    const idLength = data[o + 4 + 6];
    if (116 + idLength > len) return `record ${k}'s portfolio id overruns it`;
    o += 4 + len;
  }
  return o === data.length ? null : 'trailing bytes after the last record';
}

export function newRelayCounters(): RelayCounters {
  return { messagesPublished: 0, recordsPublished: 0, recordsRelayed: 0, resyncs: 0, badMessages: 0, remoteWatches: 0, relayedPortfolios: 0 };
}
