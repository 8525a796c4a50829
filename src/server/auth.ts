// API keys, scopes and how a request proves which key it holds.
// Keys file: JSON [{"key", "name", "scopes": ["read:<glob>", "trade:<glob>", "feed", "admin"]}].
// A key is compared in constant time: every configured key's SHA-256 is compared with timingSafeEqual,
// all of them, whatever matched first. Keys travel in `Authorization: Bearer <key>` or, for browsers'
// WebSockets, as a Sec-WebSocket-Protocol entry `mtm.bearer.<key>`; never in the URL.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { BEARER_PROTOCOL_PREFIX } from '../protocol/messages.js';

export interface ApiKey {
  key: string;
  name: string;
  scopes: string[];
}

/** What an authenticated request may do. */
export interface Principal {
  /** Key name, or 'anonymous' when the server runs without keys. */
  readonly name: string;
  readonly admin: boolean;
  /** May publish ticks (scope feed, or admin). */
  readonly feed: boolean;
  readonly read: readonly RegExp[];
  readonly trade: readonly RegExp[];
  /** Rate-limit bucket id: the key name, or null without keys (the caller buckets per connection). */
  readonly bucket: string | null;
}

/** Keys may only hold characters valid in an HTTP token (so they fit Sec-WebSocket-Protocol) and no '/' or '='. */
export const keyPattern = /^[A-Za-z0-9._~-]{16,256}$/;
const scopePattern = /^(read|trade):([A-Za-z0-9._:*?-]{1,64})$/;
const keysMax = 10_000;

/** Glob over portfolio ids: `*` any run of characters, `?` one character, everything else literal. */
export function globToRegExp(glob: string): RegExp {
  let src = '^';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[.\\+^$(){}[\]|-]/g, '\\$&');
  }
  return new RegExp(src + '$');
}

export function parseKeys(input: unknown): Result<ApiKey[]> {
  if (!Array.isArray(input)) return fail(ErrorCode.invalid_field, 'keys file must hold a JSON array', 'keys');
  if (input.length === 0) return fail(ErrorCode.invalid_field, 'keys file holds no key', 'keys');
  if (input.length > keysMax) return fail(ErrorCode.invalid_field, `keys file holds more than ${keysMax} keys`, 'keys');
  const seenKeys = new Set<string>();
  const seenNames = new Set<string>();
  const out: ApiKey[] = [];
  for (let i = 0; i < input.length; i++) {
    const entry: unknown = input[i];
    const field = `keys[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return fail(ErrorCode.invalid_field, `${field} must be an object`, field);
    const { key, name, scopes } = entry as Record<string, unknown>;
    if (typeof key !== 'string' || !keyPattern.test(key)) {
      return fail(ErrorCode.invalid_field, `${field}.key must match [A-Za-z0-9._~-]{16,256}`, `${field}.key`);
    }
    if (typeof name !== 'string' || name.length < 1 || name.length > 128) {
      return fail(ErrorCode.invalid_field, `${field}.name must be a string of 1 to 128 characters`, `${field}.name`);
    }
    if (!Array.isArray(scopes) || scopes.length === 0 || scopes.length > 1000) {
      return fail(ErrorCode.invalid_field, `${field}.scopes must be a non-empty array`, `${field}.scopes`);
    }
    for (let j = 0; j < scopes.length; j++) {
      const s: unknown = scopes[j];
      if (typeof s !== 'string' || (s !== 'feed' && s !== 'admin' && !scopePattern.test(s))) {
        return fail(ErrorCode.invalid_field, `${field}.scopes[${j}] must be read:<glob>, trade:<glob>, feed or admin`, `${field}.scopes[${j}]`);
      }
    }
    if (seenKeys.has(key)) return fail(ErrorCode.invalid_field, `${field}.key is used twice`, `${field}.key`);
    if (seenNames.has(name)) return fail(ErrorCode.invalid_field, `${field}.name is used twice`, `${field}.name`);
    seenKeys.add(key);
    seenNames.add(name);
    out.push({ key, name, scopes: [...(scopes as string[])] });
  }
  return ok(out);
}

export async function loadKeysFile(path: string): Promise<Result<ApiKey[]>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return fail(ErrorCode.invalid_field, `cannot read keys file ${path}: ${(e as Error).message}`, 'keys');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(ErrorCode.invalid_json, `keys file ${path} is not JSON: ${(e as Error).message}`, 'keys');
  }
  return parseKeys(json);
}

export function principalOf(key: ApiKey): Principal {
  const read: RegExp[] = [];
  const trade: RegExp[] = [];
  let admin = false;
  let feed = false;
  for (const s of key.scopes) {
    if (s === 'admin') admin = true;
    else if (s === 'feed') feed = true;
    else {
      const m = scopePattern.exec(s);
      if (m === null) continue;
      (m[1] === 'read' ? read : trade).push(globToRegExp(m[2]));
    }
  }
  return { name: key.name, admin, feed: feed || admin, read, trade, bucket: key.name };
}

/** Without a keys file (loopback only, or insecure): everything is allowed. */
export const anonymousPrincipal: Principal = Object.freeze({
  name: 'anonymous',
  admin: true,
  feed: true,
  read: [/^/],
  trade: [/^/],
  bucket: null,
});

const matches = (globs: readonly RegExp[], id: string): boolean => globs.some((g) => g.test(id));

/** May read the portfolio (snapshots, subscriptions, events). */
export function canRead(p: Principal, id: string): boolean {
  return p.admin || matches(p.read, id);
}
/** May change the portfolio (trades, cash, pause, resume, limits). */
export function canTrade(p: Principal, id: string): boolean {
  return p.admin || matches(p.trade, id);
}
/** Knows the portfolio exists: any read or trade scope covers it. Outside it, the portfolio "does not exist". */
export function canSee(p: Principal, id: string): boolean {
  return canRead(p, id) || canTrade(p, id);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export class KeyRing {
  private readonly entries: { hash: Buffer; principal: Principal }[];

  constructor(keys: readonly ApiKey[]) {
    this.entries = keys.map((k) => ({ hash: digest(k.key), principal: principalOf(k) }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The key's principal, or null. Takes the same time whichever key (if any) matches. */
  authenticate(token: string | null): Principal | null {
    if (token === null || token.length > 512) return null;
    const h = digest(token);
    let found: Principal | null = null;
    for (const e of this.entries) {
      if (timingSafeEqual(e.hash, h) && found === null) found = e.principal;
    }
    return found;
  }
}

/** The token of `Authorization: Bearer <token>`, or null. */
export function bearerFromAuthorization(header: string): string | null {
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return m === null ? null : m[1];
}

export interface OfferedProtocols {
  /** The key carried as `mtm.bearer.<key>`, or null. */
  token: string | null;
  /** The offered protocols other than the bearer one. */
  others: string[];
}

export function parseWebSocketProtocols(header: string): OfferedProtocols {
  let token: string | null = null;
  const others: string[] = [];
  if (header.length > 4096) return { token, others };
  for (const raw of header.split(',')) {
    const p = raw.trim();
    if (p.length === 0) continue;
    if (p.startsWith(BEARER_PROTOCOL_PREFIX)) {
      if (token === null) token = p.slice(BEARER_PROTOCOL_PREFIX.length);
    } else if (others.length < 16) {
      others.push(p);
    }
  }
  return { token, others };
}

const loopbackHosts = new Set(['127.0.0.1', '::1', 'localhost', '[::1]']);
export function isLoopbackHost(host: string): boolean {
  return loopbackHosts.has(host.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
