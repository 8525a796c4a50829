// The contract between the cluster's stations (docs/CLUSTER.md): the ownership table says who owns
// each partition; the command path, the tick bus, the update relay and the RPC router read it. One
// interface so each station can be built and tested against a real ownership table of its own.

export interface OwnershipView {
  readonly nodeId: string;
  readonly partitions: number;
  /** The node that owns the partition now, as this node last saw it in the KV bucket. */
  ownerOf(partition: number): string | undefined;
  /** True while this node holds the partition's latest revision (false as soon as it is fenced). */
  owns(partition: number): boolean;
  /** Called after this node gains a partition (loaded and ready to serve) or loses it (fenced or released). */
  onChange(listener: (change: OwnershipChange) => void): () => void;
}

export interface OwnershipChange {
  readonly partition: number;
  readonly kind: 'gained' | 'lost';
  readonly owner: string | undefined;
}
