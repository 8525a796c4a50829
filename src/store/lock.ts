// The process lock on a data directory: one Store per directory in this process (a second would hand
// out the same seqs), and none while owner.pid names another live process. Kept behind this small
// interface so its mechanism can change without touching the tables.

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, fail, ok, type Result } from '../errors.js';

export interface DataDirLock {
  /** Gives the directory up (idempotent). */
  release(): void;
}

/** Directories opened by this process; a second Store on one would hand out duplicate seqs. */
const openPaths = new Set<string>();

const ownerFile = 'owner.pid';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Refuses a directory already open in this process. */
export function checkNotOpenHere(path: string): Result<void> {
  if (openPaths.has(path)) return fail(ErrorCode.store_failed, `store '${path}' is already open in this process`, 'path');
  return ok(undefined);
}

/** Refuses a directory whose owner.pid names another live process (the directory exists). */
export function checkNoOtherOwner(path: string): Result<void> {
  try {
    const pid = Number(readFileSync(join(path, ownerFile), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
      return fail(ErrorCode.store_failed, `data dir '${path}' is in use by process ${pid}; one engine per data dir`, 'path');
    }
  } catch {
    // no owner file: free
  }
  return ok(undefined);
}

/** Takes the directory once the environment is open (after both checks passed). */
export function takeDataDir(path: string): DataDirLock {
  writeFileSync(join(path, ownerFile), String(process.pid));
  openPaths.add(path);
  return {
    release: () => {
      openPaths.delete(path);
      try {
        if (readFileSync(join(path, ownerFile), 'utf8').trim() === String(process.pid)) rmSync(join(path, ownerFile), { force: true });
      } catch {
        // already gone
      }
    },
  };
}
