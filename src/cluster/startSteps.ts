// The steps of a node's start that ask JetStream for something (the account, the command stream, the
// buckets, the settings and presence keys, the watches), each retried while JetStream is only slow or
// not ready yet: a replicated stream or bucket created by three nodes at once on a freshly formed NATS
// cluster can take longer than one API request's timeout (CI: "b exited 1: timeout", the first
// start of test/cluster.natsFaults), and a node that gives up then is a node an operator restarts by
// hand. Every step is idempotent (create-or-bind, or checked before it writes), so a retry after an
// answer that was lost does what the first attempt did. Refusals (settings that disagree, a live node
// with the same id) are answers, not errors: they are returned, never retried.
//
// Bounded: the whole start gives up after --cluster-start-timeout-ms and names the step and the last
// error; attempts back off from startRetryFirstMs to startRetryMaxMs.

/** A start step's retry policy (the clock and the wait injected, so the tests need no real delay). */
export interface StartRetry {
  /** performance.now() deadline of the whole start. */
  deadline: number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  log: (line: string) => void;
}

/** The first wait between two attempts of one step, doubled up to startRetryMaxMs. */
export const startRetryFirstMs = 100;
export const startRetryMaxMs = 2_000;

/** Errors that mean "JetStream did not answer yet", worth another attempt; anything else is final. */
export function transientNatsError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'TimeoutError' || err.name === 'NoResponders') return true;
  if (err.name === 'RequestError' && (err.cause instanceof Error ? transientNatsError(err.cause) : false)) return true;
  if (err.name === 'JetStreamApiError') {
    // 503: JetStream or its meta leader temporarily unavailable; 10008: "JetStream system temporarily
    // unavailable"; 10074: "insufficient resources" while peers are still catching up.
    const e = err as Error & { status?: number; code?: number };
    return e.status === 503 || e.code === 10008 || e.code === 10074;
  }
  return /timeout|temporarily unavailable|no responders/i.test(err.message);
}

export class StartStepError extends Error {
  override name = 'StartStepError';
  constructor(
    readonly step: string,
    readonly attempts: number,
    readonly last: unknown,
  ) {
    super(`cluster: JetStream did not answer ${step} (${attempts} attempt${attempts === 1 ? '' : 's'} before --cluster-start-timeout-ms ran out; last error: ${last instanceof Error ? last.message : String(last)})`);
  }
}

/** How a station runs one of its start steps (ClusterNode.start binds startStep to the start's deadline). */
export type StartStepRunner = <T>(what: string, fn: () => Promise<T>) => Promise<T>;

/** Runs `fn` until it resolves, retrying transient errors until the deadline; other errors are thrown at once. */
export async function startStep<T>(step: string, fn: () => Promise<T>, r: StartRetry): Promise<T> {
  let wait = startRetryFirstMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!transientNatsError(err)) throw err;
      if (r.now() + wait > r.deadline) throw new StartStepError(step, attempt, err);
      r.log(`cluster: ${step}: ${err instanceof Error ? err.message : String(err)}; attempt ${attempt + 1} in ${wait} ms`);
      await r.sleep(wait);
      wait = Math.min(wait * 2, startRetryMaxMs);
    }
  }
}
