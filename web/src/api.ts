// REST calls of the page (docs/PROTOCOL.md "HTTP API"). The key, when the server needs one, goes in
// the Authorization header only: never in a URL, so it stays out of access logs and history.
// Paths are relative to the page so it also works behind a reverse proxy under a path prefix.

import type { PortfolioStatus, StoredEvent } from '../../src/domain/types.js';

export interface PortfolioSummary {
  id: string;
  name: string;
  state: PortfolioStatus;
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const KEY_STORAGE = 'mtm.apiKey';

/** sessionStorage: the key lives as long as the tab, not on disk across browser restarts. */
export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null; // storage disabled (privacy mode): the user is asked again on reload
  }
}

export function storeKey(key: string | null): void {
  try {
    if (key === null) sessionStorage.removeItem(KEY_STORAGE);
    else sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    /* storage disabled: the key still works for this page's lifetime */
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function getJson<T>(path: string, key: string | null, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  // 429 (rate limit) and 503 (shutting down, recovering) are transient: a few waits of Retry-After.
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(path, { headers, cache: 'no-store', credentials: 'omit', ...(signal ? { signal } : {}) });
    if (r.ok) return (await r.json()) as T;
    let code = `http_${r.status}`;
    let message = `${r.status} ${r.statusText}`;
    try {
      const body = (await r.json()) as { error?: { code?: string; message?: string } };
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      /* not JSON: keep the status line */
    }
    if ((r.status === 429 || r.status === 503) && attempt < 3) {
      const after = Number(r.headers.get('Retry-After'));
      await sleep(Math.min(5_000, Number.isFinite(after) && after > 0 ? after * 1000 : 500 * (attempt + 1)));
      continue;
    }
    throw new ApiError(r.status, code, message);
  }
}

/** The server's largest page (limits.pageLimitMax default). A smaller server cap just means more pages. */
const pageSize = 1000;
/** 200 pages = 200,000 portfolios: beyond that the list is cut rather than the page hanging on load. */
const pagesMax = 200;

/** Every portfolio the key can see, following `next` (ids ascending). */
export async function listPortfolios(key: string | null, signal?: AbortSignal): Promise<{ portfolios: PortfolioSummary[]; truncated: boolean }> {
  const all: PortfolioSummary[] = [];
  let after: string | null = null;
  for (let page = 0; page < pagesMax; page++) {
    const q: string = `api/v1/portfolios?limit=${pageSize}` + (after === null ? '' : `&after=${encodeURIComponent(after)}`);
    const r: { portfolios: PortfolioSummary[]; next: string | null } = await getJson(q, key, signal);
    for (const p of r.portfolios) all.push(p);
    if (r.next === null) return { portfolios: all, truncated: false };
    after = r.next;
  }
  return { portfolios: all, truncated: true };
}

const eventsPath = (id: string) => `api/v1/portfolios/${encodeURIComponent(id)}/events`;

/**
 * The latest `count` events of a portfolio. The endpoint pages in ascending order only, so this looks
 * in growing time windows (10 min, 1 day, everything) and pages forward a bounded number of times,
 * keeping the tail. A busy portfolio is served by the first window in one or two requests.
 */
export async function latestEvents(id: string, key: string | null, count: number, signal?: AbortSignal): Promise<StoredEvent[]> {
  const windowsMs = [10 * 60_000, 24 * 3_600_000, Infinity];
  let kept: StoredEvent[] = [];
  for (const w of windowsMs) {
    kept = [];
    let afterSeq: number | null = null;
    const from = w === Infinity ? '' : `&from=${Date.now() - w}`;
    for (let page = 0; page < 20; page++) {
      const q: string = `${eventsPath(id)}?limit=${pageSize}${from}` + (afterSeq === null ? '' : `&after_seq=${afterSeq}`);
      const r: { events: StoredEvent[]; next_after_seq: number | null } = await getJson(q, key, signal);
      kept = kept.concat(r.events).slice(-count);
      if (r.next_after_seq === null) break;
      afterSeq = r.next_after_seq;
    }
    if (kept.length >= count) break;
  }
  return kept;
}

/** Events after `afterSeq` (catching up after a reconnect); at most `count`, the newest kept. */
export async function eventsAfter(id: string, key: string | null, afterSeq: number, count: number, signal?: AbortSignal): Promise<StoredEvent[]> {
  let kept: StoredEvent[] = [];
  let cursor = afterSeq;
  for (let page = 0; page < 20; page++) {
    const r: { events: StoredEvent[]; next_after_seq: number | null } = await getJson(`${eventsPath(id)}?limit=${pageSize}&after_seq=${cursor}`, key, signal);
    kept = kept.concat(r.events).slice(-count);
    if (r.next_after_seq === null) break;
    cursor = r.next_after_seq;
  }
  return kept;
}
