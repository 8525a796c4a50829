// A real OwnershipView (src/cluster/types.ts) that holds an assignment given by the test instead of one
// read from the KV bucket: the tick bus, update relay and RPC router are tested against it, and a test
// moves a partition with move() to see what each station does on 'gained' and 'lost'. Every node of a
// test shares one Assignment, so they agree on owners the way nodes agree through the bucket.

import type { OwnershipChange, OwnershipView } from '../../src/cluster/types.js';

export class Assignment {
  private readonly owners: (string | undefined)[];
  private readonly views = new Set<FixedOwnership>();

  constructor(readonly partitions: number, owner: (partition: number) => string | undefined) {
    this.owners = Array.from({ length: partitions }, (_, p) => owner(p));
  }

  ownerOf(partition: number): string | undefined {
    return this.owners[partition];
  }

  view(nodeId: string): FixedOwnership {
    const v = new FixedOwnership(nodeId, this);
    this.views.add(v);
    return v;
  }

  /** Hands the partition to `owner` (undefined: nobody); the old and new owners' listeners hear it. */
  move(partition: number, owner: string | undefined): void {
    const before = this.owners[partition];
    if (before === owner) return;
    this.owners[partition] = owner;
    for (const v of this.views) {
      if (v.nodeId === before) v.emit({ partition, kind: 'lost', owner });
      if (v.nodeId === owner) v.emit({ partition, kind: 'gained', owner });
    }
  }
}

export class FixedOwnership implements OwnershipView {
  private readonly listeners = new Set<(change: OwnershipChange) => void>();

  constructor(readonly nodeId: string, private readonly assignment: Assignment) {}

  get partitions(): number {
    return this.assignment.partitions;
  }

  ownerOf(partition: number): string | undefined {
    return this.assignment.ownerOf(partition);
  }

  owns(partition: number): boolean {
    return this.assignment.ownerOf(partition) === this.nodeId;
  }

  onChange(listener: (change: OwnershipChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change: OwnershipChange): void {
    for (const l of this.listeners) l(change);
  }
}
