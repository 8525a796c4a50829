// The store tests' child processes run the compiled store (dist/): built here when dist/ is older than the
// source. Other files of the project may have type errors while they are being written; tsc still emits,
// and what matters is that the file the children load was emitted fresh.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

/** Compiles the project unless `compiled` (under root) is at least as new as `source`; asserts it is then. */
export function ensureBuilt(root: string, compiled: string, source: string): void {
  const fresh = (): boolean => existsSync(compiled) && statSync(compiled).mtimeMs >= statSync(source).mtimeMs;
  if (fresh()) return;
  spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'ignore' });
  expect(fresh(), `${compiled} must be built`).toBe(true);
}
