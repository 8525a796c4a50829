// The cluster's NATS names, in one table: every subject, stream, bucket and key a node uses is built
// here, so docs/CLUSTER.md and the code cannot disagree. Subjects carry a partition number or an
// encoded symbol as a token; a symbol may hold '.', which NATS reads as a token separator, so it is
// carried hex-encoded (symbolToken).

export const clusterSubjects = {
  /** JetStream stream holding every command, one subject per partition. */
  commandStream: 'MTM_COMMANDS',
  commandsAll: 'mtm.cmd.>',
  command: (partition: number): string => `mtm.cmd.${partition}`,
  /** Ticks for one symbol: the binary frame layout of /ws/feed. */
  ticksAll: 'mtm.ticks.>',
  ticks: (symbol: string): string => `mtm.ticks.${symbolToken(symbol)}`,
  /** An owner's already-encoded update bytes, once per batch, for nodes relaying to their clients. */
  updates: (partition: number): string => `mtm.updates.${partition}`,
  /** Request-reply to a partition's owner: snapshot, time travel, events and lots queries. */
  rpc: (partition: number, verb: string): string => `mtm.rpc.${partition}.${verb}`,
  /** What a partition's owner subscribes to answer every verb of the partition. */
  rpcPartition: (partition: number): string => `mtm.rpc.${partition}.*`,
  /** Every node answers a request here with its status (mtm cluster status: src/cluster/status.ts). */
  status: 'mtm.status',
  /** KV bucket of partition ownership: key partitionKey(p), value {node, epoch}; CAS on its revision. */
  ownershipBucket: 'mtm_partitions',
  partitionKey: (partition: number): string => `p${partition}`,
  /** KV bucket of cluster-wide settings (the partition count) and node presence. */
  clusterBucket: 'mtm_cluster',
  settingsKey: 'settings',
  nodeKey: (nodeId: string): string => `node.${nodeId}`,
  /**
   * KV bucket of the operations broadcast to every partition (broadcast.ts): key corporateKey(id)
   * holds a corporate action as first entered (its resolved times), instrumentKey(symbol) the
   * instrument definition in force. Keys carry the id or symbol hex-encoded (':' and '/' are not key
   * characters).
   */
  definitionsBucket: 'mtm_definitions',
  corporateKey: (actionId: string): string => `corporate.${symbolToken(actionId)}`,
  corporateKeys: 'corporate.>',
  instrumentKey: (symbol: string): string => `instrument.${symbolToken(symbol)}`,
  /** The portfolio field of broadcast stream messages (they name no portfolio). */
  corporateStreamPortfolio: '_corporate',
  instrumentsStreamPortfolio: '_instruments',
  /** Object store of per-partition snapshots shipped for handover. */
  snapshotStore: 'mtm_snapshots',
  snapshotName: (partition: number): string => `p${partition}`,
} as const;

export function symbolToken(symbol: string): string {
  return Buffer.from(symbol, 'utf8').toString('hex');
}

export function symbolOfToken(token: string): string {
  return Buffer.from(token, 'hex').toString('utf8');
}
