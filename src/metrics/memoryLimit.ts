// The memory the process may use, for the capacity forecast (mtm_memory_limit_bytes): under cgroup v2
// (containers, systemd units) the tightest `memory.max` of the process's cgroup and its ancestors (a
// parent's limit binds its children too), else the host's total memory. Read at scrape time, as a
// container's limit can be changed while it runs.

import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

export interface MemoryLimit {
  bytes: number;
  /** cgroup: a memory.max bound it; host: no cgroup v2 limit found, the host's total memory. */
  source: 'cgroup' | 'host';
}

/**
 * The cgroup v2 path of the process from /proc/self/cgroup ("0::/some/path"), or null (cgroup v1 or
 * not Linux).
 */
export function cgroupPathOf(procSelfCgroup: string): string | null {
  const line = procSelfCgroup.split('\n').find((l) => l.startsWith('0::'));
  return line === undefined ? null : line.slice(3).trim() || '/';
}

/** A memory.max file's value: bytes, or null for "max" (no limit) and anything unreadable. */
export function parseMemoryMax(text: string): number | null {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/**
 * Pure core: the tightest limit among the cgroup and its ancestors. `read` returns a file's text or
 * null when it does not exist (the root cgroup has no memory.max).
 */
export function memoryLimitFrom(read: (path: string) => string | null, hostTotalBytes: number, cgroupRoot = '/sys/fs/cgroup', procSelfCgroup = '/proc/self/cgroup'): MemoryLimit {
  const self = read(procSelfCgroup);
  const path = self === null ? null : cgroupPathOf(self);
  let tightest: number | null = null;
  if (path !== null) {
    const parts = path.split('/').filter((p) => p.length > 0);
    for (let depth = parts.length; depth >= 0; depth--) {
      const dir = [cgroupRoot, ...parts.slice(0, depth)].join('/');
      const text = read(`${dir}/memory.max`);
      const limit = text === null ? null : parseMemoryMax(text);
      if (limit !== null && (tightest === null || limit < tightest)) tightest = limit;
    }
  }
  // A cgroup limit above the host's memory does not bind: the host runs out first.
  return tightest !== null && tightest < hostTotalBytes ? { bytes: tightest, source: 'cgroup' } : { bytes: hostTotalBytes, source: 'host' };
}

export function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export function memoryLimit(): MemoryLimit {
  return memoryLimitFrom(readOrNull, totalmem());
}
