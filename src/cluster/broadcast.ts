// Broadcast operations (docs/CLUSTER.md "Corporate actions and instruments"): a corporate action or an
// instrument definition touches the portfolios of every partition, so the node that receives it
// validates it once and publishes it to EVERY partition's command subject; each owner applies it to
// its own partition's portfolios at that point of the partition's stream (commandConsumer.ts), so a
// later owner replaying the stream applies it at the same point.
//
// The registry (KV bucket mtm_definitions) keeps each operation as first entered: a corporate action
// with its resolved times (a resend must publish the same action to the partitions the first attempt
// missed, not one re-resolved against a later clock), an instrument definition as in force. It makes
// "same id, other body" a refusal on every node, and it is what the corporate-action list reads.
//
// Steps: a step due by time is published by the partition's owner (publishStep, msg-id
// corporateStep:<action>:<step>:<partition>) and applied when consumed, never directly.

import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, fail, ok, type EngineError, type Result } from '../errors.js';
import { canonicalCorporateInput, resolveCorporateAction, validateCorporateInput, type CorporateActionInput } from '../domain/validateCorporate.js';
import { sameInstrument, validateInstrument } from '../domain/instruments.js';
import type { Instrument } from '../domain/types.js';
import type { CorporateActionView, CorporateAnswer, CorporateList, DueStep, InstrumentAnswer } from '../engine/api.js';
import { commandVersion, encodeCommand, type CommandOp } from './commandCodec.js';
import { clusterSubjects as names } from './subjects.js';

/** How long one publish of a broadcast may wait for the stream's ack. */
export const broadcastPublishTimeoutMs = 5_000;
/** How long the corporate-action list may read the registry before it answers partition_unavailable. */
export const registryReadTimeoutMs = 5_000;
/** Actions per page of the list (the engine's bound). */
export const listLimitMax = 1_000;

/** A corporate action as first entered (registry value). */
interface CorporateEntry {
  input: CorporateActionInput;
  canonical: string;
  announced_ts: number;
}

export class Broadcaster {
  published = 0;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly kv: KV,
    private readonly partitions: number,
  ) {}

  static async open(nc: NatsConnection, replicas: number, partitions: number): Promise<Broadcaster> {
    const kv = await new Kvm(jetstream(nc)).create(names.definitionsBucket, { history: 1, replicas });
    return new Broadcaster(jetstream(nc), kv, partitions);
  }

  /**
   * Validates, registers (first entry wins: a resend reuses its resolved times), publishes to every
   * partition. Accepted once every partition's publish is acked; a partial publish is 503
   * partition_unavailable, and a resend of the same action completes it (the partitions that have it
   * dedup it: Nats-Msg-Id within the window, the owner's record of the action id after it).
   * view: the action as this node's partitions applied it, if they know it yet.
   */
  async corporate(raw: unknown, now: number, view: (actionId: string) => CorporateActionView | null): Promise<Result<CorporateAnswer>> {
    const v = validateCorporateInput(raw);
    if (!v.ok) return v;
    const input = v.value;
    if (input.type === 'contract_adjustment') {
      return fail(ErrorCode.cluster_unsupported, 'type: contract_adjustment is not run in cluster mode: it changes the multiplier every node books trades at, which no single point of the partitions\' streams can order (docs/CLUSTER.md); run it on a single node', 'type');
    }
    // Holdings as of a past ex-date are rebuilt from a node's log, whose event times differ between
    // the owners replaying a partition: a past ex-date would not apply the same everywhere.
    if (input.type === 'dividend' && input.ex_ts < now) return fail(ErrorCode.invalid_timestamp, `ex_ts: in cluster mode a dividend's ex_ts must not be in the past (now ${now})`, 'ex_ts');
    const canonical = canonicalCorporateInput(input);
    const key = names.corporateKey(input.action_id);
    const entry: CorporateEntry = { input, canonical, announced_ts: now };
    let created = true;
    let first = entry;
    try {
      await this.kv.create(key, JSON.stringify(entry));
    } catch {
      const stored = await this.kv.get(key).catch(() => null);
      const parsed = stored === null || stored.operation !== 'PUT' ? null : parseEntry(stored.string());
      if (parsed === null) return fail(ErrorCode.partition_unavailable, `action_id: the registry did not take or give '${input.action_id}'; retry`, 'action_id', true);
      if (parsed.canonical !== canonical) return fail(ErrorCode.invalid_field, `action_id: '${input.action_id}' was already used for a different corporate action`, 'action_id');
      created = false;
      first = parsed;
    }
    const published = await this.toEveryPartition('corporate', names.corporateStreamPortfolio, { input: first.input, announced_ts: first.announced_ts }, (p) => `corporate\u001f${input.action_id}\u001f${p}`);
    if (!published.ok) return published;
    const resolved = resolveCorporateAction(first.input, first.announced_ts);
    if (!resolved.ok) return resolved;
    const action = view(input.action_id) ?? { ...resolved.value, status: 'pending' as const, announced_ts: first.announced_ts, steps: [], error: null };
    return ok({ created, action });
  }

  /**
   * An instrument definition for every partition. The same definition again is answered changed:
   * false (and published again, which completes a partial publish); a new multiplier or currency of
   * a defined instrument is refused (cluster_unsupported); other fields change with a compare-and-set
   * on the registry's revision.
   */
  async instrument(symbol: unknown, raw: unknown): Promise<Result<InstrumentAnswer>> {
    const v = validateInstrument(symbol, raw);
    if (!v.ok) return v;
    const next = v.value;
    const key = names.instrumentKey(next.symbol);
    const stored = await this.kv.get(key).catch(() => null);
    const before = stored === null || stored.operation !== 'PUT' ? null : parseInstrument(stored.string());
    let changed = true;
    let revision: number;
    try {
      if (before === null) revision = await this.kv.create(key, JSON.stringify(next));
      else if (sameInstrument(before, next)) {
        changed = false;
        revision = (stored as { revision: number }).revision;
      } else if (before.multiplier !== next.multiplier || before.currency !== next.currency) {
        const what = before.multiplier !== next.multiplier ? 'multiplier' : 'currency';
        return fail(
          ErrorCode.cluster_unsupported,
          `${what}: ${next.symbol} is defined with ${what} ${String(before[what])}; in cluster mode a defined instrument's ${what} does not change (its holders are spread over the partitions, docs/CLUSTER.md)`,
          what,
        );
      } else revision = await this.kv.update(key, JSON.stringify(next), (stored as { revision: number }).revision);
    } catch (err) {
      return fail(ErrorCode.partition_unavailable, `symbol: the registry did not take the definition of ${next.symbol} (${String(err)}); retry`, 'symbol', true);
    }
    const published = await this.toEveryPartition('instrument', names.instrumentsStreamPortfolio, { symbol: next.symbol, input: raw }, (p) => `instrument\u001f${next.symbol}\u001f${revision}\u001f${p}`);
    if (!published.ok) return published;
    return ok({ changed, instrument: next });
  }

  /** A step due on a partition this node owns: published once per (action, step, partition) within the dedup window. */
  async publishStep(partition: number, due: DueStep): Promise<void> {
    const body = encodeCommand({ v: commandVersion, op: 'corporateStep', portfolio: names.corporateStreamPortfolio, args: due });
    await this.js.publish(names.command(partition), body, { msgID: `corporateStep\u001f${due.action_id}\u001f${due.step}\u001f${partition}`, timeout: broadcastPublishTimeoutMs });
  }

  /**
   * The registry's actions in the order they were first entered (its revision is after_seq), each as
   * this node's partitions applied it (view), else pending. Bounded by registryReadTimeoutMs: a KV key
   * listing was seen to wait without end while JetStream restarted (status.ts).
   */
  async listCorporate(query: { after_seq?: number; limit?: number }, view: (actionId: string) => CorporateActionView | null): Promise<Result<CorporateList>> {
    const limit = Number.isInteger(query.limit) ? Math.min(Math.max(1, query.limit as number), listLimitMax) : 100;
    const after = Number.isSafeInteger(query.after_seq) ? (query.after_seq as number) : 0;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), registryReadTimeoutMs);
    });
    try {
      const rows = await Promise.race([this.readCorporate(after), late]);
      if (rows === null) return fail(ErrorCode.partition_unavailable, `the corporate-action registry did not answer within ${registryReadTimeoutMs} ms; retry`, undefined, true);
      rows.sort((a, b) => a.revision - b.revision);
      const page = rows.slice(0, limit);
      const actions: CorporateActionView[] = [];
      for (const r of page) {
        const resolved = resolveCorporateAction(r.entry.input, r.entry.announced_ts);
        if (!resolved.ok) continue;
        actions.push(view(r.entry.input.action_id) ?? { ...resolved.value, status: 'pending', announced_ts: r.entry.announced_ts, steps: [], error: null });
      }
      return ok({ actions, next_after_seq: rows.length > limit ? page[page.length - 1].revision : null });
    } finally {
      clearTimeout(timer);
    }
  }

  private async readCorporate(after: number): Promise<{ revision: number; entry: CorporateEntry }[]> {
    const out: { revision: number; entry: CorporateEntry }[] = [];
    // A listing whose consumer was recreated under it (NATS restarted) can name a key twice.
    const seen = new Set<string>();
    for await (const key of await this.kv.keys(names.corporateKeys)) {
      if (seen.has(key)) continue;
      seen.add(key);
      const e = await this.kv.get(key).catch(() => null);
      if (e === null || e.operation !== 'PUT' || e.revision <= after) continue;
      const entry = parseEntry(e.string());
      if (entry !== null) out.push({ revision: e.revision, entry });
    }
    return out;
  }

  private async toEveryPartition(op: CommandOp, portfolio: string, args: unknown, msgId: (partition: number) => string): Promise<Result<void>> {
    const body = encodeCommand({ v: commandVersion, op, portfolio, args });
    const acks = await Promise.allSettled(Array.from({ length: this.partitions }, (_, p) => this.js.publish(names.command(p), body, { msgID: msgId(p), timeout: broadcastPublishTimeoutMs })));
    const missed = acks.flatMap((a, p) => (a.status === 'rejected' ? [p] : []));
    this.published += acks.length - missed.length;
    if (missed.length === 0) return ok(undefined);
    const error: EngineError = {
      code: ErrorCode.partition_unavailable,
      message: `cluster: published to ${this.partitions - missed.length} of ${this.partitions} partitions (missed ${missed.slice(0, 8).join(', ')}${missed.length > 8 ? ', ...' : ''}); send the same request again to complete it: the partitions that have it apply it once`,
      retryable: true,
    };
    return { ok: false, error };
  }
}

function parseEntry(text: string): CorporateEntry | null {
  try {
    const e = JSON.parse(text) as Partial<CorporateEntry>;
    const v = validateCorporateInput(e.input);
    if (!v.ok || typeof e.announced_ts !== 'number' || typeof e.canonical !== 'string' || e.canonical !== canonicalCorporateInput(v.value)) return null;
    return { input: v.value, canonical: e.canonical, announced_ts: e.announced_ts };
  } catch {
    return null;
  }
}

function parseInstrument(text: string): Instrument | null {
  try {
    const i = JSON.parse(text) as Instrument & Record<string, unknown>;
    const { symbol, ...rest } = i;
    const v = validateInstrument(symbol, rest);
    return v.ok ? v.value : null;
  } catch {
    return null;
  }
}
