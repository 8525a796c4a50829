// Ownership: which node serves each partition (docs/CLUSTER.md). The table is a JetStream KV bucket
// (clusterSubjects.ownershipBucket), one key per partition, value {node, instance, epoch}. A claim is
// a compare-and-set on the key's revision (create when absent or deleted, update with the revision
// last seen otherwise), so two nodes racing for a partition cannot both win. The owner refreshes its
// entries every heartbeatMs (a CAS update: a new revision); every node watches the bucket and takes
// an entry whose revision it has not seen move for ownerTimeoutMs as expired.
//
// Fencing. A node holds a partition only while (a) the last revision it saw is its own and (b) its
// lease is fresh: leaseUntil = the time it sent its last successful refresh + ownerTimeoutMs - one
// heartbeat. Observers start their ownerTimeoutMs clock only when they see that revision (after it
// was sent), so the lease always ends before anyone else may claim. A node paused past its heartbeat
// (SIGSTOP, a long GC, a partition from NATS) therefore fails owns() the moment it runs again, before
// it has read anything: the command consumer checks current(partition, epoch) before every apply,
// and the drop hook (which stops that consumer) runs before any listener hears 'lost'.
//
// Fair share: each round a node counts the live nodes (node keys in the cluster bucket refreshed
// within ownerTimeoutMs, as it observed them), keeps at most ceil(P / N) partitions (releasing the
// rest: drop locally first, then delete the key with CAS) and claims up to that share from the
// unowned or expired ones, scanning from an offset derived from its id so nodes do not all race for
// the same keys. A clean stop releases everything.
//
// Bad input: an entry that does not parse is logged, counted (badEntries) and treated as unowned:
// it is overwritten by the next claim's CAS; nothing else is read from it.

import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { hashOf } from '../engine/shardOf.js';
import { clusterSubjects as names } from './subjects.js';
import type { OwnershipChange, OwnershipView } from './types.js';
import type { ClusterCounters } from './counters.js';
import { transientNatsError, type StartStepRunner } from './startSteps.js';

export interface OwnershipOptions {
  nodeId: string;
  partitions: number;
  /** How often an owner refreshes its entries (and the node its presence key). */
  heartbeatMs: number;
  /** An entry not refreshed for this long is expired and may be claimed by another node. */
  ownerTimeoutMs: number;
  /** Monotonic milliseconds (injected: performance.now in a node, a fake in tests). */
  now: () => number;
  log: (line: string) => void;
  /** Replicas of the KV buckets when this node creates them (1, 3 or 5). */
  replicas?: number;
  /** Where the counts go (a refused start counts its clash here too); default: a fresh set. */
  counters?: OwnershipCounters;
  /** The node's cluster counters (counters.ts: /metrics, mtm cluster status): rebalances, fenced writes, bad KV input. */
  cluster?: ClusterCounters;
}

export function newOwnershipCounters(): OwnershipCounters {
  return { rebalances: 0, claims: 0, releases: 0, lost: 0, badEntries: 0, nodeIdClashes: 0, fencedWrites: 0 };
}

/** Reads of a node's presence key at start before a failed compare-and-set counts as an id clash (one heartbeat apart). */
export const joinAttemptsMax = 5;

export const ownershipDefaults = { heartbeatMs: 1_000, ownerTimeoutMs: 5_000 } as const;

/** What the node does when it gains a partition (load it, catch up, start consuming) or must stop serving it. */
export interface PartitionGate {
  /** Resolves once the partition is ready to serve; a rejection gives the partition back. */
  take(partition: number, epoch: number): Promise<void>;
  /** Synchronous: stop serving (stop the consumer) before anything else runs. */
  drop(partition: number): void;
}

export interface OwnershipCounters {
  rebalances: number;
  claims: number;
  releases: number;
  lost: number;
  badEntries: number;
  nodeIdClashes: number;
  fencedWrites: number;
}

interface Seen {
  revision: number;
  /** Local time the revision was first seen. */
  seenAt: number;
  node: string | undefined;
  instance: string | undefined;
  epoch: number;
}

interface Held {
  revision: number;
  epoch: number;
  leaseUntil: number;
  ready: boolean;
}

interface PartitionValue {
  node: string;
  instance: string;
  epoch: number;
}

interface NodeValue {
  instance: string;
  partitions: number;
}

export function parsePartitionValue(bytes: Uint8Array): PartitionValue | null {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<PartitionValue>;
    if (typeof v !== 'object' || v === null) return null;
    if (typeof v.node !== 'string' || v.node.length === 0 || typeof v.instance !== 'string') return null;
    if (!Number.isSafeInteger(v.epoch) || (v.epoch as number) < 1) return null;
    return { node: v.node, instance: v.instance, epoch: v.epoch as number };
  } catch {
    return null;
  }
}

const nodeIdPattern = /^[A-Za-z0-9_-]{1,64}$/;
/** Presence keys remembered (the live-node count's input); more are refused as bad input. */
export const nodesSeenMax = 4_096;

export function validNodeId(id: string): boolean {
  return nodeIdPattern.test(id);
}

export class Ownership implements OwnershipView {
  readonly nodeId: string;
  readonly partitions: number;
  readonly instance = randomUUID();
  readonly counters: OwnershipCounters;
  private readonly seen: (Seen | undefined)[];
  private readonly held = new Map<number, Held>();
  private readonly nodesSeen = new Map<string, number>();
  private readonly listeners = new Set<(c: OwnershipChange) => void>();
  private nodeRevision = 0;
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> = Promise.resolve();
  private stopped = false;
  private gate: PartitionGate = { take: () => Promise.resolve(), drop: () => undefined };
  private watches: { stop(): void }[] = [];
  /** The watches opened (watch() is retried as a start step). */
  private readonly following = new Set<'ownership' | 'node'>();
  /** Each watch's iterator now (stopped to open it again when the watches fell silent). */
  private readonly currentWatch = new Map<'ownership' | 'node', { stop?(): void }>();
  /** The newest revision of this node's presence key its node watch delivered. */
  private ownSeenRevision = 0;
  /** When a presence refresh was written that the node watch has not delivered yet (null: none). */
  private firstUnseenWriteAt: number | null = null;

  private constructor(
    private readonly o: OwnershipOptions,
    private readonly parts: KV,
    private readonly cluster: KV,
    private readonly jsm: JetStreamManager,
  ) {
    this.nodeId = o.nodeId;
    this.partitions = o.partitions;
    this.counters = o.counters ?? newOwnershipCounters();
    this.seen = new Array<Seen | undefined>(o.partitions).fill(undefined);
  }

  /**
   * Opens the buckets, checks the cluster's settings (the partition count) and this node's id, and
   * watches the table. Claims nothing until run() (the node wires its gate first).
   */
  static async open(nc: NatsConnection, o: OwnershipOptions, step: StartStepRunner = (_what, fn) => fn()): Promise<Result<Ownership>> {
    if (!validNodeId(o.nodeId)) return fail(ErrorCode.invalid_field, `node-id must match ${nodeIdPattern.source}, got '${o.nodeId}'`, 'node-id');
    if (!(o.heartbeatMs >= 10 && o.ownerTimeoutMs >= 3 * o.heartbeatMs)) {
      return fail(ErrorCode.invalid_field, `cluster-owner-timeout-ms must be >= 3 x cluster-heartbeat-ms (got ${o.ownerTimeoutMs} and ${o.heartbeatMs})`, 'cluster-owner-timeout-ms');
    }
    const kvm = new Kvm(jetstream(nc));
    const replicas = o.replicas ?? 1;
    const parts = await step(`creating KV bucket ${names.ownershipBucket}`, () => kvm.create(names.ownershipBucket, { history: 1, replicas }));
    const cluster = await step(`creating KV bucket ${names.clusterBucket}`, () => kvm.create(names.clusterBucket, { history: 1, replicas }));
    const jsm = await step('opening the JetStream manager', () => jetstreamManager(nc));
    const own = new Ownership(o, parts, cluster, jsm);
    const settings = await step('checking the cluster settings', () => own.checkSettings());
    if (!settings.ok) return settings;
    const joined = await step('writing this node\'s presence key', () => own.join());
    if (!joined.ok) return joined;
    await step('watching the ownership table', () => own.watch());
    return ok(own);
  }

  setGate(gate: PartitionGate): void {
    this.gate = gate;
  }

  /** Starts the rounds: heartbeat, then rebalance, every heartbeatMs; one round at a time. */
  run(): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.round = this.round.then(() => this.roundOnce()).catch((err: unknown) => this.o.log(`cluster: ownership round failed: ${String(err)}`));
      this.timer = setTimeout(tick, this.o.heartbeatMs);
    };
    tick();
  }

  /** Resolves after the round in progress (tests and the clean stop wait on it). */
  settled(): Promise<void> {
    return this.round;
  }

  // ---- OwnershipView --------------------------------------------------------------------------

  ownerOf(partition: number): string | undefined {
    const h = this.held.get(partition);
    if (h !== undefined && this.fresh(h)) return this.nodeId;
    const s = this.seen[partition];
    if (s === undefined || s.node === undefined) return undefined;
    if (s.node === this.nodeId && s.instance !== this.instance) return undefined;
    return this.o.now() - s.seenAt < this.o.ownerTimeoutMs ? s.node : undefined;
  }

  owns(partition: number): boolean {
    const h = this.held.get(partition);
    return h !== undefined && h.ready && this.fresh(h);
  }

  /** The fencing check of every apply: still held, with the claim epoch the consumer started under, lease fresh. */
  current(partition: number, epoch: number): boolean {
    const h = this.held.get(partition);
    const yes = h !== undefined && h.epoch === epoch && this.fresh(h);
    if (!yes) {
      this.counters.fencedWrites++;
      if (this.o.cluster !== undefined) this.o.cluster.fencedWrites++;
    }
    return yes;
  }

  onChange(listener: (change: OwnershipChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Partitions this node holds (claimed; ready or catching up). */
  heldPartitions(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  ownedCount(): number {
    let n = 0;
    for (const p of this.held.keys()) if (this.owns(p)) n++;
    return n;
  }

  liveNodes(): string[] {
    const now = this.o.now();
    const live = [this.nodeId];
    for (const [id, at] of this.nodesSeen) if (id !== this.nodeId && now - at < this.o.ownerTimeoutMs) live.push(id);
    return live.sort();
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Clean stop: drop and release every partition, remove the presence key. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    await this.round.catch(() => undefined);
    const releases = [...this.held.keys()].map((p) => this.release(p));
    await Promise.allSettled(releases);
    await this.cluster.delete(names.nodeKey(this.nodeId), { previousSeq: this.nodeRevision }).catch(() => undefined);
    for (const w of this.watches) w.stop();
  }

  // ---- start-up checks ----------------------------------------------------------------------

  private async checkSettings(): Promise<Result<void>> {
    const mine = JSON.stringify({ partitions: this.partitions });
    try {
      await this.cluster.create(names.settingsKey, mine);
      return ok(undefined);
    } catch (err) {
      // No answer is not "someone recorded them first": the start step asks again.
      if (transientNatsError(err)) throw err;
      // Someone recorded the settings first: ours must agree.
    }
    const e = await this.cluster.get(names.settingsKey);
    let recorded: unknown;
    try {
      recorded = e === null ? undefined : (JSON.parse(e.string()) as { partitions?: unknown }).partitions;
    } catch {
      recorded = undefined;
    }
    if (!Number.isSafeInteger(recorded)) {
      this.counters.badEntries++;
      return fail(ErrorCode.cluster_refused, `cluster settings in KV '${names.clusterBucket}' key '${names.settingsKey}' are malformed (want {"partitions": N}); refusing to join`, 'partitions');
    }
    if (recorded !== this.partitions) {
      return fail(
        ErrorCode.cluster_refused,
        `partitions: this cluster has ${String(recorded)} partitions (KV '${names.clusterBucket}' key '${names.settingsKey}'); this node was started with ${this.partitions}. The count is fixed for the life of a cluster: start with --partitions ${String(recorded)}`,
        'partitions',
      );
    }
    return ok(undefined);
  }

  /** Presence key; a live node with the same id (refreshed within ownerTimeoutMs) makes this one refuse to start. */
  private async join(): Promise<Result<void>> {
    const key = names.nodeKey(this.nodeId);
    const value = JSON.stringify({ instance: this.instance, partitions: this.partitions } satisfies NodeValue);
    try {
      this.nodeRevision = await this.cluster.create(key, value);
      return ok(undefined);
    } catch (err) {
      if (transientNatsError(err)) throw err;
      // The key exists: an earlier run of this node (crashed), our own create whose answer was lost,
      // or a live clash.
    }
    // A failed compare-and-set is read again before it counts as a clash: on a replicated bucket a
    // read may be answered by a replica that lags (direct get), so the revision it gave can be stale
    // (the cluster simulator, --nats-servers 3 seed 201: a node restarted twice after kill -9 was
    // refused with "wrong last sequence"). A live clash still shows as a fresh key on a later read.
    let lastError: unknown = null;
    for (let attempt = 0; attempt < joinAttemptsMax; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, this.o.heartbeatMs));
      const e = await this.presenceFromLeader(key);
      if (e !== null && e.operation === 'PUT' && presenceInstance(e) === this.instance) {
        // Our own create, whose answer was lost (a start step retried after a timeout).
        this.nodeRevision = e.revision;
        return ok(undefined);
      }
      if (e !== null && e.operation === 'PUT' && Date.now() - e.created.getTime() < this.o.ownerTimeoutMs) {
        this.counters.nodeIdClashes++;
        const line = `cluster: node id '${this.nodeId}' is in use by a live node (its presence key was refreshed ${Date.now() - e.created.getTime()} ms ago); refusing to start. Give each node its own --node-id`;
        this.o.log(line);
        return fail(ErrorCode.cluster_refused, line, 'node-id');
      }
      try {
        this.nodeRevision = await this.cluster.update(key, value, e?.revision ?? 0);
        return ok(undefined);
      } catch (err) {
        lastError = err;
      }
    }
    this.counters.nodeIdClashes++;
    return fail(ErrorCode.cluster_refused, `cluster: node id '${this.nodeId}' was taken while this node joined (${String(lastError)}, ${joinAttemptsMax} reads); refusing to start`, 'node-id');
  }

  /** Both watches; one that ends (NATS restarted under it) is opened again, which replays every current value. */
  private async watch(): Promise<void> {
    // Idempotent, so a start step retried after the second open failed does not follow the first twice.
    if (!this.following.has('ownership')) await this.follow(() => this.parts.watch({ key: '>' }), (e) => this.onPartitionEntry(e), 'ownership');
    if (!this.following.has('node')) await this.follow(() => this.cluster.watch({ key: 'node.>' }), (e) => this.onNodeEntry(e), 'node');
  }

  private async follow(open: () => Promise<AsyncIterable<KvEntry> & { stop(): void }>, on: (e: KvEntry) => void, what: 'ownership' | 'node'): Promise<void> {
    const first = await open();
    this.following.add(what);
    this.watches.push(first);
    this.currentWatch.set(what, first);
    void (async () => {
      let iter = first;
      for (;;) {
        try {
          for await (const e of iter) on(e);
        } catch (err) {
          this.o.log(`cluster: ${what} watch failed: ${String(err)}`);
        }
        if (this.stopped) return;
        this.o.log(`cluster: ${what} watch ended; watching again`);
        await new Promise((r) => setTimeout(r, this.o.heartbeatMs));
        if (this.stopped) return;
        try {
          iter = await open();
          this.currentWatch.set(what, iter);
          this.watches.push(iter);
          if (this.watches.length > 8) this.watches.splice(0, this.watches.length - 8);
        } catch (err) {
          this.o.log(`cluster: ${what} watch could not be opened again: ${String(err)}`);
          iter = (async function* () {})() as unknown as AsyncIterable<KvEntry> & { stop(): void };
        }
      }
    })();
  }

  private onNodeEntry(e: KvEntry): void {
    const id = e.key.slice('node.'.length);
    if (e.operation !== 'PUT') {
      this.nodesSeen.delete(id);
      return;
    }
    if (!this.nodesSeen.has(id) && this.nodesSeen.size >= nodesSeenMax) {
      this.badEntry(`cluster: ignoring presence key '${e.key}': already ${nodesSeenMax} nodes known`);
      return;
    }
    this.nodesSeen.set(id, this.o.now());
    if (id !== this.nodeId || this.stopped) return;
    const instance = presenceInstance(e);
    if (instance === this.instance) {
      this.ownSeenRevision = Math.max(this.ownSeenRevision, e.revision);
      if (this.ownSeenRevision >= this.nodeRevision) this.firstUnseenWriteAt = null;
    }
    if (instance !== this.instance && e.revision > this.nodeRevision) {
      // Another process took this node's id (this one was paused past its timeout): it is now the node.
      this.counters.nodeIdClashes++;
      this.o.log(`cluster: node id '${this.nodeId}' was taken by another process (instance ${String(instance)}); this process stops serving every partition`);
      this.stopped = true;
      if (this.timer !== null) clearTimeout(this.timer);
      for (const p of [...this.held.keys()]) this.lose(p);
    }
  }

  private onPartitionEntry(e: KvEntry): void {
    const p = partitionOfKey(e.key, this.partitions);
    if (p < 0) {
      this.badEntry(`cluster: ignoring key '${e.key}' in KV '${names.ownershipBucket}': not a partition of 0..${this.partitions - 1}`);
      return;
    }
    const before = this.seen[p];
    if (before !== undefined && before.revision >= e.revision) return;
    const v = e.operation === 'PUT' ? parsePartitionValue(e.value) : null;
    if (e.operation === 'PUT' && v === null) this.badEntry(`cluster: malformed entry for partition ${p} in KV '${names.ownershipBucket}' (revision ${e.revision}); treated as unowned`);
    this.seen[p] = { revision: e.revision, seenAt: this.o.now(), node: v?.node, instance: v?.instance, epoch: v?.epoch ?? before?.epoch ?? 0 };
    const h = this.held.get(p);
    if (h !== undefined && e.revision > h.revision && v?.instance !== this.instance) this.lose(p);
  }

  // ---- rounds -------------------------------------------------------------------------------

  private fresh(h: Held): boolean {
    return this.o.now() < h.leaseUntil;
  }

  private async roundOnce(): Promise<void> {
    if (this.stopped) return;
    await this.heartbeat();
    if (this.stopped) return;
    this.reopenSilentWatches();
    await this.rebalance();
  }

  /**
   * This node refreshes its own presence key every round, so its node watch must deliver that key
   * within ownerTimeoutMs. When it does not, the watches are stalled, not ended: an ordered consumer
   * whose server was killed can stay silent for 60 s and more ("The KV key listing stall",
   * docs/CLUSTER.md), and meanwhile this node sees every other node's refreshes stop, counts them
   * gone and keeps more than its share (the cluster simulator, --nats-servers 3 seed 201, CI run of
   * 453bacc: a node back after kill -9 got no partition for 59 s). Stopping them opens them again,
   * which replays every current value.
   */
  private reopenSilentWatches(): void {
    const since = this.firstUnseenWriteAt;
    if (since === null || this.o.now() - since < this.o.ownerTimeoutMs) return;
    this.firstUnseenWriteAt = null;
    this.o.log(`cluster: watches silent for ${(this.o.now() - since).toFixed(0)} ms (this node's own presence refresh not delivered); opening them again`);
    for (const w of this.currentWatch.values()) w.stop?.();
  }

  private async heartbeat(): Promise<void> {
    const sentAt = this.o.now();
    const nodeValue = JSON.stringify({ instance: this.instance, partitions: this.partitions } satisfies NodeValue);
    try {
      this.nodeRevision = await this.cluster.update(names.nodeKey(this.nodeId), nodeValue, this.nodeRevision);
      if (this.nodeRevision > this.ownSeenRevision && this.firstUnseenWriteAt === null) this.firstUnseenWriteAt = sentAt;
    } catch (err) {
      this.o.log(`cluster: presence refresh failed: ${String(err)}`);
      if (wrongRevision(err)) await this.resyncPresence(nodeValue);
    }
    await Promise.all(
      [...this.held.entries()].map(async ([p, h]) => {
        try {
          const revision = await this.parts.update(names.partitionKey(p), this.valueOf(h.epoch), h.revision);
          const still = this.held.get(p);
          if (still !== h) return;
          h.revision = revision;
          h.leaseUntil = sentAt + this.leaseMs();
        } catch (err) {
          if (this.held.get(p) !== h) return;
          // Someone else wrote the key: lost now. Any other failure (NATS restarting, a leader
          // election) keeps the claim until its lease runs out; the next round tries again.
          if (wrongRevision(err)) this.lose(p);
          else this.o.log(`cluster: refresh of partition ${p} failed (${String(err)}); its lease ends in ${Math.max(0, h.leaseUntil - this.o.now()).toFixed(0)} ms`);
        }
      }),
    );
  }

  /**
   * The presence key moved past the revision this node holds. When the entry is this process's own
   * (an update whose answer was lost, or the key written again with our value), take its revision so
   * the next refresh succeeds: without this every later refresh failed on the stale revision and the
   * other nodes counted this one gone (the simulator, --nats-servers 3 seed 201, CI run of b67581f:
   * "wrong last sequence: 78" each round). A key gone is created again; another process's entry is
   * left to onNodeEntry (this process stops serving).
   */
  /**
   * A presence key as the stream's leader has it (STREAM.MSG.GET, not the bucket's direct get): a
   * compare-and-set refused with "wrong last sequence" is checked against what the leader holds. A
   * direct get may be answered by a replica that lags, and the same lagging replica kept answering a
   * restarted node's five reads, one heartbeat apart, with a revision the leader had moved past: it
   * refused to start as a clash with itself (the cluster simulator, --nats-servers 3 seed 201 at load
   * ~22, the lead's runs of the seventh session).
   */
  private async presenceFromLeader(key: string): Promise<PresenceEntry | null> {
    const m = await this.jsm.streams.getMessage(`KV_${names.clusterBucket}`, { last_by_subj: `$KV.${names.clusterBucket}.${key}` });
    if (m === null) return null;
    const op = m.header?.get('KV-Operation');
    return { revision: m.seq, operation: op === 'DEL' || op === 'PURGE' ? op : 'PUT', created: m.time, string: () => m.string() };
  }

  private async resyncPresence(nodeValue: string): Promise<void> {
    const key = names.nodeKey(this.nodeId);
    try {
      const e = await this.presenceFromLeader(key);
      if (e === null || e.operation !== 'PUT') this.nodeRevision = await this.cluster.create(key, nodeValue);
      else if (presenceInstance(e) === this.instance) this.nodeRevision = Math.max(this.nodeRevision, e.revision);
    } catch (err) {
      this.o.log(`cluster: presence key read failed: ${String(err)}`);
    }
  }

  private leaseMs(): number {
    return this.o.ownerTimeoutMs - this.o.heartbeatMs;
  }

  private valueOf(epoch: number): string {
    return JSON.stringify({ node: this.nodeId, instance: this.instance, epoch } satisfies PartitionValue);
  }

  private async rebalance(): Promise<void> {
    const share = Math.ceil(this.partitions / this.liveNodes().length);
    const mine = [...this.held.keys()].sort((a, b) => b - a);
    if (mine.length > share) {
      this.rebalanced();
      await Promise.all(mine.slice(0, mine.length - share).map((p) => this.release(p)));
      return;
    }
    const want = share - mine.length;
    if (want === 0) return;
    const start = hashOf(this.nodeId) % this.partitions;
    const claims: Promise<boolean>[] = [];
    for (let i = 0; i < this.partitions && claims.length < want; i++) {
      const p = (start + i) % this.partitions;
      if (!this.held.has(p) && this.claimable(p)) claims.push(this.claim(p));
    }
    if (claims.length > 0 && (await Promise.all(claims)).some((x) => x)) this.rebalanced();
  }

  private rebalanced(): void {
    this.counters.rebalances++;
    if (this.o.cluster !== undefined) this.o.cluster.rebalances++;
  }

  private badEntry(line: string): void {
    this.counters.badEntries++;
    if (this.o.cluster !== undefined) this.o.cluster.badInput.kv++;
    this.o.log(line);
  }

  /** No entry, deleted, malformed, this node's previous run, or not refreshed for ownerTimeoutMs as seen here. */
  private claimable(p: number): boolean {
    const s = this.seen[p];
    if (s === undefined || s.node === undefined) return true;
    // Ours but not held: this node's previous run, or this run fenced it after its lease ran out.
    if (s.node === this.nodeId) return true;
    return this.o.now() - s.seenAt >= this.o.ownerTimeoutMs;
  }

  private async claim(p: number): Promise<boolean> {
    const s = this.seen[p];
    const epoch = (s?.epoch ?? 0) + 1;
    const sentAt = this.o.now();
    let revision: number;
    try {
      revision = s === undefined ? await this.parts.create(names.partitionKey(p), this.valueOf(epoch)) : await this.parts.update(names.partitionKey(p), this.valueOf(epoch), s.revision);
    } catch (err) {
      // Lost the race, or our view of the key is stale (a watch that missed an update): read it again.
      if (wrongRevision(err) || s === undefined) {
        const e = await this.parts.get(names.partitionKey(p)).catch(() => null);
        if (e !== null) this.onPartitionEntry(e);
      }
      return false;
    }
    if (this.stopped) return false;
    const h: Held = { revision, epoch, leaseUntil: sentAt + this.leaseMs(), ready: false };
    this.held.set(p, h);
    this.counters.claims++;
    this.load(p, h);
    return true;
  }

  /**
   * Loads a claimed partition without holding up the rounds: a round that awaited the load stopped
   * every heartbeat while it lasted, and a consumer that never caught up (its NATS server restarted
   * under it) stopped them for good; the node's presence and leases ran out, every later tick queued
   * one more round behind it, and the others kept partitions it still held (the cluster simulator,
   * --nats-servers 3 seed 201, the lead's runs of the seventh session). The lease is refreshed while it
   * loads; it serves once ready. A load still going at stop() is dropped with the partition.
   */
  private load(p: number, h: Held): void {
    this.gate.take(p, h.epoch).then(
      () => {
        if (this.held.get(p) !== h || this.stopped) return;
        h.ready = true;
        this.emit({ partition: p, kind: 'gained', owner: this.nodeId });
      },
      (err: unknown) => {
        if (this.held.get(p) !== h) return;
        this.o.log(`cluster: partition ${p} could not be loaded (${String(err)}); giving it back`);
        void this.release(p);
      },
    );
  }

  /** Drop locally first (the consumer stops), then delete the key with CAS so nobody else's claim is undone. */
  private async release(p: number): Promise<void> {
    const h = this.held.get(p);
    if (h === undefined) return;
    this.held.delete(p);
    this.gate.drop(p);
    this.counters.releases++;
    if (h.ready) this.emit({ partition: p, kind: 'lost', owner: undefined });
    await this.parts.delete(names.partitionKey(p), { previousSeq: h.revision }).catch(() => undefined);
  }

  /** The consumer found its claim no longer current (lease ran out): stop serving; a later round may claim it again. */
  fence(p: number): void {
    this.lose(p);
  }

  /** Fenced: another revision won, or the refresh failed. Stop serving at once. */
  private lose(p: number): void {
    const h = this.held.get(p);
    if (h === undefined) return;
    this.held.delete(p);
    this.gate.drop(p);
    this.counters.lost++;
    this.o.log(`cluster: lost partition ${p} (epoch ${h.epoch}); stopped serving it`);
    if (h.ready) this.emit({ partition: p, kind: 'lost', owner: this.seen[p]?.node });
  }

  private emit(c: OwnershipChange): void {
    for (const l of this.listeners) l(c);
  }
}

function wrongRevision(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 10071 || code === 10164 || /wrong last sequence/i.test(String(err));
}

function partitionOfKey(key: string, partitions: number): number {
  if (!/^p(0|[1-9][0-9]{0,5})$/.test(key)) return -1;
  const p = Number(key.slice(1));
  return p < partitions ? p : -1;
}

/** The process instance a presence key was written by (undefined: malformed). */
/** What the presence checks read of a key (a KvEntry, or a leader read of its stream message). */
type PresenceEntry = Pick<KvEntry, 'revision' | 'operation' | 'created' | 'string'>;

function presenceInstance(e: PresenceEntry): unknown {
  try {
    return (JSON.parse(e.string()) as { instance?: unknown }).instance;
  } catch {
    return undefined;
  }
}
