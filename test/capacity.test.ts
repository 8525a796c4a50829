// Proves the inputs of the capacity alerts (StoreMapFillingUp, MemoryFillingUp; issue 18 item 6):
// - the memory limit is the tightest cgroup v2 memory.max of the process's cgroup and its ancestors, read
//   from real files laid out like /proc/self/cgroup and /sys/fs/cgroup; "max" everywhere, cgroup v1 only,
//   or a limit above the host's memory give the host's total memory;
// - a real engine behind the real server exports mtm_store_map_size_bytes, mtm_store_map_used_bytes (LMDB's
//   map and the part in use, growing as events are committed) and mtm_memory_limit_bytes in its scrape.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type MtmEngine } from '../src/engine/engine.js';
import { memoryLimit, memoryLimitFrom, readOrNull } from '../src/metrics/memoryLimit.js';
import { startObservability, type Observability } from '../src/server/observability.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { loadUws } from '../src/server/uws.js';
import { ensureBuilt, tempDir } from './support/engine.js';

const GiB = 1024 ** 3;

describe('memory limit from cgroup v2', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'mtm-cgroup-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** Writes a fake /proc/self/cgroup and memory.max files under a fake /sys/fs/cgroup; returns the limit found. */
  function limitWith(name: string, procSelfCgroup: string, maxByPath: Record<string, string>, hostBytes = 16 * GiB) {
    const dir = join(root, name);
    mkdirSync(join(dir, 'cg'), { recursive: true });
    writeFileSync(join(dir, 'cgroup'), procSelfCgroup);
    for (const [path, value] of Object.entries(maxByPath)) {
      mkdirSync(join(dir, 'cg', path), { recursive: true });
      writeFileSync(join(dir, 'cg', path, 'memory.max'), value);
    }
    return memoryLimitFrom(readOrNull, hostBytes, join(dir, 'cg'), join(dir, 'cgroup'));
  }

  it('takes the tightest limit of the cgroup and its parents', () => {
    const l = limitWith('nested', '0::/kubepods/pod1/ctr\n', { kubepods: `${4 * GiB}\n`, 'kubepods/pod1': 'max\n', 'kubepods/pod1/ctr': `${8 * GiB}\n` });
    expect(l).toEqual({ bytes: 4 * GiB, source: 'cgroup' });
  });

  it("reads the container's own limit when it is the tightest (cgroup namespace: 0::/)", () => {
    expect(limitWith('root', '0::/\n', { '.': `${2 * GiB}\n` })).toEqual({ bytes: 2 * GiB, source: 'cgroup' });
  });

  it("falls back to the host's memory without a binding cgroup v2 limit", () => {
    expect(limitWith('unlimited', '0::/system.slice/mtm.service\n', { 'system.slice': 'max\n', 'system.slice/mtm.service': 'max\n' })).toEqual({ bytes: 16 * GiB, source: 'host' });
    expect(limitWith('v1-only', '4:memory:/docker/abc\n1:cpu:/docker/abc\n', {})).toEqual({ bytes: 16 * GiB, source: 'host' });
    expect(limitWith('above-host', '0::/big\n', { big: `${64 * GiB}\n` })).toEqual({ bytes: 16 * GiB, source: 'host' });
    expect(limitWith('garbage', '0::/odd\n', { odd: 'lots\n' })).toEqual({ bytes: 16 * GiB, source: 'host' });
    expect(memoryLimitFrom(() => null, 3 * GiB)).toEqual({ bytes: 3 * GiB, source: 'host' });
  });

  it('on this machine: a cgroup limit below the host memory, or the host memory', () => {
    const l = memoryLimit();
    expect(l.bytes).toBeGreaterThan(0);
    expect(l.bytes).toBeLessThanOrEqual(totalmem());
    if (l.source === 'host') expect(l.bytes).toBe(totalmem());
  });
});

describe('capacity metrics in a live scrape', () => {
  let dir: { path: string; remove(): void };
  let engine: MtmEngine;
  let obs: Observability;
  let server: RunningServer;
  beforeAll(async () => {
    ensureBuilt();
    dir = tempDir('mtm-capacity-');
    engine = await createEngine({ workers: 1, dataDir: dir.path, store: { mapSizeBytes: 4 * 1024 * 1024 } });
    obs = startObservability(engine, { uwsBinary: loadUws().binary, directTicks: 'inproc' });
    server = await startServer(engine, { port: 0, log: null, ...obs.serverOptions });
    obs.attachServer(server);
  });
  afterAll(async () => {
    await server?.close();
    obs?.close();
    await engine?.close();
    dir?.remove();
  });

  async function gauge(name: string): Promise<number> {
    const text = await (await fetch(server.url + '/metrics')).text();
    const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
    expect(m, `${name} in the scrape`).not.toBeNull();
    return Number(m![1]);
  }

  it('exports the LMDB map size and the bytes in use, which grow with committed events', async () => {
    const size = await gauge('mtm_store_map_size_bytes');
    const used = await gauge('mtm_store_map_used_bytes');
    expect(size).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThanOrEqual(size);
    expect(used % 4096).toBe(0);
    for (let i = 0; i < 200; i++) {
      const r = await engine.createPortfolio({ id: `p${i}`, cash: 1000 });
      expect(r.ok).toBe(true);
    }
    expect(await gauge('mtm_store_map_used_bytes')).toBeGreaterThan(used);
  });

  it('exports the memory limit the process runs under', async () => {
    expect(await gauge('mtm_memory_limit_bytes')).toBe(memoryLimit().bytes);
  });
});
