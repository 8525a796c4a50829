// `mtm cluster status` (docs/CLUSTER.md, "Operations"): who is in the cluster, which partitions each
// node owns, and how far behind each one applies its command streams. Two sources, shown side by side:
// the KV buckets (ownership keys, node presence keys: what the cluster agrees on) and each node's own
// answer to a request on clusterSubjects.status (what the node says it serves, its consumer lag and
// counters). A node in the bucket that does not answer, or a disagreement between a node's answer and
// the bucket, is printed as such.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import type { ClusterCounters, ClusterReadings } from './counters.js';
import { clusterSubjects } from './subjects.js';
import type { OwnershipView } from './types.js';

/** A node's answer on clusterSubjects.status. */
export interface NodeStatus {
  readings: ClusterReadings;
  /** Partitions this node serves now, ascending. */
  owned: number[];
  /** Command-stream messages not yet applied, per partition of `owned` (same order). */
  lag: number[];
}

/** The node's side: answers status requests with its readings. */
export class StatusResponder {
  private sub: Subscription | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly view: OwnershipView,
    private readonly counters: ClusterCounters,
    private readonly readings: () => ClusterReadings,
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(clusterSubjects.status, {
      callback: (err, msg) => {
        if (err === null && msg.reply) msg.respond(new TextEncoder().encode(JSON.stringify(this.status())));
      },
    });
  }

  status(): NodeStatus {
    const owned: number[] = [];
    const lag: number[] = [];
    for (let p = 0; p < this.view.partitions; p++) {
      if (!this.view.owns(p)) continue;
      owned.push(p);
      lag.push(this.counters.consumerPending[p] ?? 0);
    }
    return { readings: this.readings(), owned, lag };
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = null;
  }
}

export interface ClusterStatus {
  /** The partition count (from the settings key, else the nodes' answers); 0 when no cluster was found. */
  partitions: number;
  /** Owner of each partition in the ownership bucket (undefined: none; a string starting '!' : malformed entry). */
  owners: (string | undefined)[];
  nodes: {
    id: string;
    /** Ms since its presence key was last refreshed; undefined when only its answer was seen. */
    lastSeenMs: number | undefined;
    /** Partitions the bucket gives it. */
    owned: number[];
    /** Its own answer, when it gave one within the wait. */
    answer: NodeStatus | undefined;
  }[];
}

async function openBucket(nc: NatsConnection, name: string): Promise<KV | null> {
  try {
    const kv = await new Kvm(nc).open(name);
    // open() binds without asking the server: status() fails when the bucket does not exist.
    await kv.status();
    return kv;
  } catch {
    return null;
  }
}

/** How long the bucket reads may take beyond the nodes' answer window before the read is refused. */
export const statusReadTimeoutMs = 10_000;

/**
 * Reads the buckets and asks every node (answers collected for `waitMs`). Bounded: a KV key listing
 * is an ordered consumer, and one opened while JetStream restarts was seen to wait without end (the
 * cluster simulator in CI hung on it after a nats-server restart); past the bound it rejects, naming it.
 */
export async function readClusterStatus(nc: NatsConnection, waitMs: number, now = Date.now()): Promise<ClusterStatus> {
  const limitMs = waitMs + statusReadTimeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`cluster status: the buckets did not answer within ${limitMs} ms`)), limitMs);
  });
  try {
    return await Promise.race([readStatusOnce(nc, waitMs, now), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function readStatusOnce(nc: NatsConnection, waitMs: number, now: number): Promise<ClusterStatus> {
  const answers: NodeStatus[] = [];
  const replies = await nc.requestMany(clusterSubjects.status, '', { maxWait: waitMs, strategy: 'timer' }).catch(() => null);
  const collecting = (async () => {
    if (replies === null) return;
    try {
      for await (const m of replies) {
        try {
          answers.push(JSON.parse(new TextDecoder().decode(m.data)) as NodeStatus);
        } catch {
          // A foreign answer on the status subject: not a node of ours.
        }
      }
    } catch {
      // no responders: no node answered
    }
  })();

  const cluster = await openBucket(nc, clusterSubjects.clusterBucket);
  const ownership = await openBucket(nc, clusterSubjects.ownershipBucket);
  let partitions = 0;
  const presence = new Map<string, number>();
  if (cluster !== null) {
    const settings = await cluster.get(clusterSubjects.settingsKey).catch(() => null);
    try {
      const p = settings?.json<{ partitions?: unknown }>().partitions;
      if (typeof p === 'number') partitions = p;
    } catch {
      // malformed settings: fall back on the nodes' answers
    }
    for await (const key of await cluster.keys('node.>')) {
      const e = await cluster.get(key).catch(() => null);
      if (e !== null && e.operation === 'PUT') presence.set(key.slice('node.'.length), Math.max(0, now - e.created.getTime()));
    }
  }
  await collecting;
  if (partitions === 0) partitions = answers.find((a) => a.readings.partitions > 0)?.readings.partitions ?? 0;
  const owners: (string | undefined)[] = Array.from({ length: partitions }, () => undefined);
  if (ownership !== null) {
    for (let p = 0; p < partitions; p++) {
      const e = await ownership.get(clusterSubjects.partitionKey(p)).catch(() => null);
      if (e === null || e.operation !== 'PUT') continue;
      try {
        const node = e.json<{ node?: unknown }>().node;
        owners[p] = typeof node === 'string' ? node : '!malformed';
      } catch {
        owners[p] = '!malformed';
      }
    }
  }
  const ids = new Set<string>([...presence.keys(), ...answers.map((a) => a.readings.nodeId)]);
  for (const o of owners) if (o !== undefined && !o.startsWith('!')) ids.add(o);
  const nodes = [...ids].sort().map((id) => ({
    id,
    lastSeenMs: presence.get(id),
    owned: owners.flatMap((o, p) => (o === id ? [p] : [])),
    answer: answers.find((a) => a.readings.nodeId === id),
  }));
  return { partitions, owners, nodes };
}

/** Partition numbers as ranges: 0-3,7,9-10. */
export function ranges(ps: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ps.length; ) {
    let j = i;
    while (j + 1 < ps.length && ps[j + 1] === ps[j] + 1) j++;
    out.push(i === j ? String(ps[i]) : `${ps[i]}-${ps[j]}`);
    i = j + 1;
  }
  return out.join(',') || '-';
}

/** The text `mtm cluster status` prints. */
export function formatClusterStatus(s: ClusterStatus): string {
  if (s.partitions === 0 && s.nodes.length === 0) return 'no mtm cluster found on this NATS (no ownership bucket, no node answered)\n';
  const unowned = s.owners.flatMap((o, p) => (o === undefined ? [p] : []));
  const malformed = s.owners.flatMap((o, p) => (o !== undefined && o.startsWith('!') ? [p] : []));
  const lines = [`cluster: ${s.nodes.length} node(s), ${s.partitions} partitions, ${unowned.length} unowned${malformed.length > 0 ? `, ${malformed.length} malformed` : ''}`, ''];
  const rows = [['node', 'seen', 'partitions', 'lag', 'owned (bucket)', 'note']];
  for (const n of s.nodes) {
    const a = n.answer;
    const lag = a === undefined ? '?' : String(a.lag.reduce((x, y) => x + y, 0));
    const notes: string[] = [];
    if (a === undefined) notes.push('did not answer');
    else if (ranges(a.owned) !== ranges(n.owned)) notes.push(`says it serves ${ranges(a.owned)}`);
    if (n.lastSeenMs === undefined) notes.push('no presence key');
    rows.push([n.id, n.lastSeenMs === undefined ? '-' : `${(n.lastSeenMs / 1000).toFixed(1)} s ago`, String(n.owned.length), lag, ranges(n.owned), notes.join('; ')]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) lines.push(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  lines.push('', `unowned: ${ranges(unowned)}`);
  if (malformed.length > 0) lines.push(`malformed ownership entries: ${ranges(malformed)}`);
  for (const n of s.nodes) {
    const a = n.answer;
    if (a === undefined || a.lag.every((l) => l === 0)) continue;
    lines.push(`lag of ${n.id} by partition: ${a.owned.map((p, i) => `${p}:${a.lag[i]}`).join(' ')}`);
  }
  return lines.join('\n') + '\n';
}
