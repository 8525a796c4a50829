// Stable portfolio -> shard placement: FNV-1a over the id's UTF-16 code units. Stable across
// restarts and machines, so a portfolio's snapshot and events always land on the same shard index.

export function hashOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function shardOf(id: string, shards: number): number {
  return hashOf(id) % shards;
}
