// The door: authentication and rate limits for every HTTP request and WebSocket upgrade. Owns the
// key ring and the per-key (or per-address) token buckets, swept every 10 s.

import { ErrorCode } from '../errors.js';
import { KeyRing, anonymousPrincipal, type Principal } from './auth.js';
import type { CommandLimiter } from './hub.js';
import { errorResult, type HttpResult } from './http.js';
import type { ResolvedOptions } from './options.js';
import { BucketMap } from './rateLimit.js';
import type { StatsCollector } from './stats.js';

export class Door {
  readonly keyRing: KeyRing | null;
  readonly commandBuckets: BucketMap;
  readonly connectBuckets: BucketMap;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    opts: ResolvedOptions,
    private readonly stats: StatsCollector,
  ) {
    const { limits, now } = opts;
    this.keyRing = opts.keys === null ? null : new KeyRing(opts.keys);
    const commandBuckets = new BucketMap(limits.commandsPerSecond, limits.commandsPerSecond * 2, limits.rateLimitBucketsMax);
    const connectBuckets = new BucketMap(limits.connectsPerSecond, limits.connectsPerSecond * 2, limits.rateLimitBucketsMax);
    this.commandBuckets = commandBuckets;
    this.connectBuckets = connectBuckets;
    this.sweeper = setInterval(() => {
      const t = now();
      commandBuckets.sweep(t);
      connectBuckets.sweep(t);
    }, 10_000);
    this.sweeper.unref();
  }

  authenticate(token: string | null): Principal | null {
    return this.keyRing === null ? anonymousPrincipal : this.keyRing.authenticate(token);
  }

  unauthorized(): HttpResult {
    return errorResult({ code: ErrorCode.unauthorized, message: 'a valid API key is required: Authorization: Bearer <key>' }, { 'WWW-Authenticate': 'Bearer realm="mtm"' });
  }

  rateLimited(waitMs: number, what: string): HttpResult {
    this.stats.rateLimited++;
    return errorResult({ code: ErrorCode.rate_limited, message: `too many ${what}: retry in ${waitMs} ms` }, { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) });
  }

  /** A key's connections share the key's bucket (with its HTTP requests). */
  keyCommands(bucket: string): CommandLimiter {
    return { take: (t: number) => this.commandBuckets.take(bucket, t) };
  }

  /** For the listening log line. */
  describe(): string {
    return this.keyRing === null ? 'none (loopback only unless insecure)' : `${this.keyRing.size} keys`;
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
