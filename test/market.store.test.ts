// Proves the market store's failure path on the shared write queue (src/store/writeQueue.ts), with a
// real LMDB whose disk refuses a commit (the child runs under a file-size limit), no mocks: the
// failed commit does not crash the process (exit 0, no unhandled rejection), the store reports it
// failed, logs it once, refuses later writes instead of leaving a hole, keeps serving the bars it
// holds, and idle() still settles afterwards. Regression: before the market store wrote through the
// shared queue, its failed commit left lmdb-js's commitError promise rejected and unhandled, and the
// child died with exit 1 ('Input/output error') instead of reporting the failure.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const child = join(root, 'test/fixtures/market-store-fill-child.mjs');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('market store on the shared write queue', () => {
  it('survives a commit the disk refuses: failed, logged once, later writes refused, bars still readable', () => {
    expect(existsSync(join(root, 'dist/src/market/store.js')), 'dist is built (npm test builds first)').toBe(true);
    const path = mkdtempSync(join(tmpdir(), 'mtm-market-full-'));
    dirs.push(path);
    // ulimit -f counts 512-byte blocks in POSIX sh: 4 MB of data file, then writes fail (EFBIG).
    const p = spawnSync('/bin/sh', ['-c', 'ulimit -f 8192 && exec "$0" "$@"', process.execPath, child, path], { encoding: 'utf8', timeout: 60_000 });
    expect(p.status, p.stderr).toBe(0);
    const line = p.stdout.split('\n').find((l) => l.startsWith('failed')) ?? '';
    expect(line, p.stdout + p.stderr).toMatch(/^failed true logged 1 refused true readable true /);
    expect(line).toContain('mtm market: store commit failed, market data is no longer persisted');
  });
});
