// The locks on a data directory. In this process: one Store per directory (a second would hand out
// the same seqs), takeDataDir. Across processes: lockDataDir, which the engine takes before it opens
// the store, described below.
//
// One engine per data directory across processes, enforced by locks the kernel releases when their
// owner dies.
//
// Node has no flock(2). A listening unix-domain socket is the next best thing: the kernel closes
// every descriptor of a process when it exits, before the process becomes a zombie, so a dead
// owner stops answering at once, even while its parent has not reaped it yet, and a pid that was
// reused by an unrelated process (after a reboot, in a new container) means nothing here. Two
// sockets, because each covers what the other cannot:
//  - an abstract-namespace socket named after the directory's device and inode (`\0mtm-data:D:I`):
//    bind(2) is atomic, so of two engines starting at once exactly one gets it; it is released with
//    the process and leaves no file behind. It is per network namespace, hence
//  - `owner.sock` inside the directory: a second engine in another network namespace on the same
//    kernel (a container sharing the volume) connects to it; a live owner answers with its pid,
//    a dead one is ECONNREFUSED (then the stale file is replaced). Its path goes through
//    /proc/self/fd when the directory's path is too long for sun_path (108 bytes).
// owner.pid is still written, for people and the refusal message, and is never trusted.

import { closeSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { storeDefaults } from './limits.js';

export interface DataDirLock {
  /** Gives the directory up (idempotent). */
  release(): void;
}

/** Directories opened by this process; a second Store on one would hand out duplicate seqs. */
const openPaths = new Set<string>();

/** Refuses a directory already open in this process. */
export function checkNotOpenHere(path: string): Result<void> {
  if (openPaths.has(path)) return fail(ErrorCode.store_failed, `store '${path}' is already open in this process`, 'path');
  return ok(undefined);
}

/** Takes the directory once the environment is open (after both checks passed). */
export function takeDataDir(path: string): DataDirLock {
  openPaths.add(path);
  return {
    release: () => {
      openPaths.delete(path);
    },
  };
}

export const ownerSocketFile = 'owner.sock';
export const ownerPidFile = 'owner.pid';
/** How long a probe waits for the owner's answer before calling it dead. */
export const ownerProbeTimeoutMs = 1_000;
/**
 * How long a start waits for a silent owner's sockets to go. A multi-threaded process killed -9 shows
 * as a zombie as soon as its main thread is gone, but its descriptors close only once its other
 * threads (the shard workers) are gone too, a few milliseconds later.
 */
export const ownerDyingWaitMs = storeDefaults.ownerDyingWaitMs;
const ownerRetryMs = 20;
/** sun_path holds 108 bytes with its NUL; longer paths are reached through /proc/self/fd. */
const socketPathBytesMax = 100;

export interface OwnerLock {
  readonly path: string;
  /** Releases both sockets and owner.pid; idempotent. */
  release(): Promise<void>;
}

function listen(server: Server, path: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException) => resolve(err);
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      resolve(null);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The pid a live owner answers with; null when nobody listens (ECONNREFUSED, ENOENT, no answer). */
function probe(path: string): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    let text = '';
    const done = (pid: number | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(pid);
    };
    const timer = setTimeout(() => done(null), ownerProbeTimeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) done(Number(text.trim()) || -1);
    });
    // Connected and then closed without a pid: something listens there, but not an engine.
    socket.on('end', () => done(text === '' ? -1 : Number(text.trim()) || -1));
    socket.on('error', () => done(null));
  });
}

function answeringPid(server: Server): void {
  server.on('connection', (socket) => {
    socket.on('error', () => undefined);
    socket.end(`${process.pid}\n`);
  });
}

function busy(path: string, pid: number): Result<never> {
  const who = pid > 0 ? `process ${pid}` : 'another process';
  return fail(ErrorCode.store_failed, `data dir '${path}' is in use by ${who}; one engine per data dir`, 'path');
}

/**
 * Takes the data directory (created if missing) for this process, or refuses with store_failed
 * naming the live owner. A dead owner (crashed, killed, a zombie) never blocks.
 */
export async function lockDataDir(path: string, waitMs: number = ownerDyingWaitMs): Promise<Result<OwnerLock>> {
  const giveUpAt = Date.now() + waitMs;
  for (;;) {
    const { result, silent } = await tryLockDataDir(path);
    // A live owner answers with its pid: refused at once. A silent one is dying: try again shortly.
    if (!silent || Date.now() > giveUpAt) return result;
    await new Promise((res) => setTimeout(res, ownerRetryMs));
  }
}

/** silent: the name is taken but nobody answers (an owner dying), worth another try. */
async function tryLockDataDir(path: string): Promise<{ result: Result<OwnerLock>; silent: boolean }> {
  const once = (result: Result<OwnerLock>, silent = false) => ({ result, silent });
  let dirFd = -1;
  let ino: string;
  try {
    const st = statSync(path);
    if (!st.isDirectory()) return once(fail(ErrorCode.store_failed, `data dir '${path}' is not a directory`, 'path'));
    ino = `${st.dev}:${st.ino}`;
  } catch (err) {
    return once(fail(ErrorCode.store_failed, `cannot read data dir '${path}': ${(err as Error).message}`, 'path'));
  }
  const abstract = createServer();
  answeringPid(abstract);
  const taken = await listen(abstract, `\0mtm-data:${ino}`);
  if (taken !== null) {
    if (taken.code !== 'EADDRINUSE') return once(fail(ErrorCode.store_failed, `cannot lock data dir '${path}': ${taken.message}`, 'path'));
    const pid = await probe(`\0mtm-data:${ino}`);
    return once(busy(path, pid ?? -1), pid === null);
  }
  let socketPath = join(path, ownerSocketFile);
  if (Buffer.byteLength(socketPath) > socketPathBytesMax) {
    dirFd = openSync(path, 'r');
    socketPath = `/proc/self/fd/${dirFd}/${ownerSocketFile}`;
  }
  const inDir = createServer();
  answeringPid(inDir);
  const giveUp = async (result: Result<never>, silent = false) => {
    await close(abstract);
    if (dirFd >= 0) closeSync(dirFd);
    return once(result, silent);
  };
  let err = await listen(inDir, socketPath);
  if (err !== null && err.code === 'EADDRINUSE') {
    const pid = await probe(socketPath);
    if (pid !== null) return giveUp(busy(path, pid));
    // Nobody answers: the owner died (its descriptors closed with it). Replace the stale file.
    rmSync(join(path, ownerSocketFile), { force: true });
    err = await listen(inDir, socketPath);
  }
  if (err !== null) return giveUp(fail(ErrorCode.store_failed, `cannot lock data dir '${path}': ${err.message}`, 'path'), err.code === 'EADDRINUSE');
  // Nothing else of this process should keep the engine alive for these sockets.
  abstract.unref();
  inDir.unref();
  writeFileSync(join(path, ownerPidFile), String(process.pid));
  let released: Promise<void> | null = null;
  return once(ok({
    path,
    release: () => {
      released ??= (async () => {
        // The file first: once the socket stops listening another engine may take the directory.
        rmSync(join(path, ownerPidFile), { force: true });
        rmSync(join(path, ownerSocketFile), { force: true });
        await close(inDir);
        if (dirFd >= 0) closeSync(dirFd);
        await close(abstract);
      })();
      return released;
    },
  }));
}
