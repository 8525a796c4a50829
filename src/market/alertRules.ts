// Market alert rules and the facts they produce. Rules are configuration: validated once, each
// failure naming the offending field (rules[2].move_pct), unknown fields refused.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { dayMs, weekMs } from './timeframe.js';
import { integerIn, isPlainObject, positiveUpTo, unknownKey } from './validate.js';

export type AlertKind = 'move' | 'zscore' | 'silence';

interface RuleBase {
  id: string;
  name: string;
  /** After a firing, the same (rule, symbol) stays quiet this long: one move raises one alert. */
  cooldown_ms: number;
}

/** Fires when the price moves more than move_pct percent from the window's low or high within window_ms. */
export interface MoveRule extends RuleBase {
  kind: 'move';
  move_pct: number;
  window_ms: number;
}

/** Fires when a tick's log return is more than z standard deviations from the mean of the last `returns` returns. */
export interface ZScoreRule extends RuleBase {
  kind: 'zscore';
  z: number;
  returns: number;
}

/** Fires when a symbol has not ticked for more than silent_ms while other symbols tick. */
export interface SilenceRule extends RuleBase {
  kind: 'silence';
  silent_ms: number;
}

export type AlertRule = MoveRule | ZScoreRule | SilenceRule;

export interface AlertRuleRef {
  readonly id: string;
  readonly name: string;
}

interface AlertBase {
  rule: AlertRuleRef;
  symbol: string;
  /** The tick ts (move, zscore) or the check's now (silence) at which it fired. */
  ts: number;
}

export interface MoveAlert extends AlertBase {
  kind: 'move';
  /** Signed: positive from the window's low, negative from its high. */
  move_pct: number;
  threshold_pct: number;
  window_ms: number;
  price: number;
  ref_price: number;
  ref_ts: number;
}

export interface ZScoreAlert extends AlertBase {
  kind: 'zscore';
  z: number;
  threshold_z: number;
  /** The tick's log return and the mean and standard deviation of the returns before it. */
  ret: number;
  mean: number;
  sigma: number;
  returns: number;
  price: number;
  prev_price: number;
}

export interface SilenceAlert extends AlertBase {
  kind: 'silence';
  silent_ms: number;
  threshold_ms: number;
  last_ts: number;
}

export type MarketAlert = MoveAlert | ZScoreAlert | SilenceAlert;

export const alertRulesMaxDefault = 64;
export const cooldownMsDefault = 60_000;
const ruleIdPattern = /^[A-Za-z0-9._:-]{1,64}$/;
const ruleNameLengthMax = 128;
const commonKeys = ['id', 'name', 'kind', 'cooldown_ms'];
const keysByKind: Record<AlertKind, readonly string[]> = {
  move: [...commonKeys, 'move_pct', 'window_ms'],
  zscore: [...commonKeys, 'z', 'returns'],
  silence: [...commonKeys, 'silent_ms'],
};

export function validateAlertRules(input: unknown, rulesMax = alertRulesMaxDefault): Result<AlertRule[]> {
  if (!Array.isArray(input)) return fail(ErrorCode.invalid_field, 'rules must be an array', 'rules');
  if (input.length > rulesMax) return fail(ErrorCode.limit_exceeded, `rules holds at most ${rulesMax} rules`, 'rules');
  const rules: AlertRule[] = [];
  const ids = new Set<string>();
  for (let i = 0; i < input.length; i++) {
    const rule = validateAlertRule(input[i], `rules[${i}]`);
    if (!rule.ok) return rule;
    if (ids.has(rule.value.id)) return fail(ErrorCode.invalid_id, `rules[${i}].id '${rule.value.id}' is used twice`, `rules[${i}].id`);
    ids.add(rule.value.id);
    rules.push(rule.value);
  }
  return ok(rules);
}

export function validateAlertRule(input: unknown, field = 'rule'): Result<AlertRule> {
  if (!isPlainObject(input)) return fail(ErrorCode.invalid_field, `${field} must be an object`, field);
  const { id, name, kind } = input;
  if (typeof id !== 'string' || !ruleIdPattern.test(id)) return fail(ErrorCode.invalid_id, `${field}.id must match [A-Za-z0-9._:-]{1,64}`, `${field}.id`);
  if (name !== undefined && (typeof name !== 'string' || name.length > ruleNameLengthMax)) {
    return fail(ErrorCode.invalid_field, `${field}.name must be a string of at most ${ruleNameLengthMax} characters`, `${field}.name`);
  }
  if (kind !== 'move' && kind !== 'zscore' && kind !== 'silence') {
    return fail(ErrorCode.invalid_field, `${field}.kind must be one of move, zscore, silence`, `${field}.kind`);
  }
  const unknown = unknownKey(input, keysByKind[kind]);
  if (unknown !== null) return fail(ErrorCode.invalid_field, `${field}.${unknown} is not a field of a ${kind} rule`, `${field}.${unknown}`);
  const cooldown = integerIn(input.cooldown_ms ?? cooldownMsDefault, `${field}.cooldown_ms`, 0, weekMs, ErrorCode.invalid_field);
  if (!cooldown.ok) return cooldown;
  const base = { id, name: name ?? id, cooldown_ms: cooldown.value };
  if (kind === 'move') return moveRule(input, field, base);
  if (kind === 'zscore') return zScoreRule(input, field, base);
  return silenceRule(input, field, base);
}

function moveRule(input: Record<string, unknown>, field: string, base: RuleBase): Result<AlertRule> {
  const movePct = positiveUpTo(input.move_pct, `${field}.move_pct`, 1000);
  if (!movePct.ok) return movePct;
  const windowMs = integerIn(input.window_ms, `${field}.window_ms`, 1, dayMs, ErrorCode.invalid_field);
  if (!windowMs.ok) return windowMs;
  return ok({ ...base, kind: 'move', move_pct: movePct.value, window_ms: windowMs.value });
}

function zScoreRule(input: Record<string, unknown>, field: string, base: RuleBase): Result<AlertRule> {
  const z = positiveUpTo(input.z, `${field}.z`, 100);
  if (!z.ok) return z;
  const returns = integerIn(input.returns, `${field}.returns`, 2, 10_000, ErrorCode.invalid_field);
  if (!returns.ok) return returns;
  return ok({ ...base, kind: 'zscore', z: z.value, returns: returns.value });
}

function silenceRule(input: Record<string, unknown>, field: string, base: RuleBase): Result<AlertRule> {
  const silentMs = integerIn(input.silent_ms, `${field}.silent_ms`, 1, weekMs, ErrorCode.invalid_field);
  if (!silentMs.ok) return silentMs;
  return ok({ ...base, kind: 'silence', silent_ms: silentMs.value });
}
