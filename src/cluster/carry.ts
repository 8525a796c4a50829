// The carry segment of a shipped snapshot (docs/CLUSTER.md, "Shipped snapshots"): what the partition's
// stream below the snapshot held besides the books, which a replayer needs once that stream is purged:
//   - the partition's scoped corporate actions (engine.corporateCarryIn: each action announced on the
//     partition, its record, the steps applied, its outcome once done), so a new owner continues them
//     at the next step and knows the done ones' ids;
//   - the instrument definitions of the node (engine.listInstruments): the stream below may hold the
//     definition a later trade of the partition books at.
// UTF-8 JSON ({v: 1, actions, instruments}): read once per take-over, written once per ship, far from
// the hot path; its shape is checked on decode, and a segment that does not pass refuses the snapshot.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import type { CarriedAction } from '../engine/api.js';
import type { Instrument } from '../domain/types.js';

export const carryVersion = 1;

export interface Carry {
  actions: CarriedAction[];
  instruments: Instrument[];
}

export function encodeCarry(carry: Carry): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: carryVersion, actions: carry.actions, instruments: carry.instruments }));
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown): boolean => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function stepsOk(x: unknown): boolean {
  return Array.isArray(x) && x.every((d) => isObject(d) && typeof d.step === 'string' && isCount(d.applied_ts) && isCount(d.holders));
}

function actionOk(x: unknown): boolean {
  if (!isObject(x) || !isObject(x.record) || !stepsOk(x.steps)) return false;
  const r = x.record;
  if (typeof r.input !== 'string' || !isCount(r.announced_ts) || !isObject(r.action) || typeof r.action.action_id !== 'string' || typeof r.action.type !== 'string') return false;
  if (x.outcome === null) return true;
  return isObject(x.outcome) && (x.outcome.status === 'applied' || x.outcome.status === 'failed') && stepsOk(x.outcome.steps);
}

/** The carried state, or an error naming what is wrong with the segment. */
export function decodeCarry(bytes: Uint8Array): Result<Carry> {
  const bad = (rule: string): Result<never> => fail(ErrorCode.invalid_field, `snapshot carry segment: ${rule}`, 'carry');
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    return bad(`must be UTF-8 JSON: ${(err as Error).message}`);
  }
  if (!isObject(body) || body.v !== carryVersion) return bad(`must be an object with v = ${carryVersion}`);
  if (!Array.isArray(body.actions)) return bad('actions must be an array');
  const wrong = body.actions.findIndex((a) => !actionOk(a));
  if (wrong >= 0) return bad(`actions[${wrong}] must be {record: {input, action, announced_ts}, steps, outcome}`);
  if (!Array.isArray(body.instruments)) return bad('instruments must be an array');
  const strange = body.instruments.findIndex((i) => !isObject(i) || typeof i.symbol !== 'string');
  if (strange >= 0) return bad(`instruments[${strange}] must be an instrument with a symbol`);
  return ok({ actions: body.actions as CarriedAction[], instruments: body.instruments as Instrument[] });
}
