// What the cluster tests read of JetStream after a ship: the shipped snapshot's sequence and what the
// command stream still holds on a partition's subject (the purge rule: everything from the shipped
// sequence on). One copy for cluster.takeover and cluster.carry.

import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { clusterSubjects as names } from '../../src/cluster/subjects.js';
import { streamSeqKey } from '../../src/cluster/snapshotShipper.js';

/** The shipped object's sequence (0: none), from its info only (no blob read). */
export async function shippedSeq(nc: NatsConnection, p: number): Promise<number> {
  const store = await new Objm(nc).open(names.snapshotStore);
  const info = await store.info(names.snapshotName(p));
  return info === null ? 0 : Number(info.metadata?.[streamSeqKey]);
}

/** Messages the command stream holds on the partition's subject, and the last one's sequence. */
export async function subjectState(nc: NatsConnection, p: number): Promise<{ messages: number; last: number }> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(names.commandStream, { subjects_filter: names.command(p) });
  const last = await jsm.streams.getMessage(names.commandStream, { last_by_subj: names.command(p) }).catch(() => null);
  return { messages: info.state.subjects?.[names.command(p)] ?? 0, last: last?.seq ?? 0 };
}
