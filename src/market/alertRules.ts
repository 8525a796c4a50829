// Market alert rules and the facts they produce. Rules are configuration: validated once, each
// failure naming the offending field (rules[2].move_pct), unknown fields refused.

import { ErrorCode, fail, ok, type Result } from '../errors.js';
import { Type, Validator, errorRule, named, nullable } from '../schema.js';
import { dayMs, weekMs } from './timeframe.js';

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

// ---- the rules' one definition (documents: PUT/GET /api/v1/market/alerts) ----

const integerIn = (min: number, max: number) => Type.Integer({ minimum: min, maximum: max, ...errorRule(ErrorCode.invalid_field, `must be an integer in [${min}, ${max}]`) });
/** A number in (0, max]: thresholds where 0 would fire on everything. */
const positiveUpTo = (max: number) => Type.Number({ exclusiveMinimum: 0, maximum: max, ...errorRule(ErrorCode.invalid_field, `must be a finite number in (0, ${max}]`) });
const ruleHead = {
  id: Type.String({ pattern: ruleIdPattern.source, ...errorRule(ErrorCode.invalid_id, 'must match [A-Za-z0-9._:-]{1,64}') }),
  name: Type.Optional(Type.String({ maxLength: ruleNameLengthMax, description: 'Default: the id', ...errorRule(ErrorCode.invalid_field, `must be a string of at most ${ruleNameLengthMax} characters`) })),
};
const cooldown = Type.Optional(nullable(integerIn(0, weekMs), { description: `The same rule and symbol stay quiet this long after a firing; default ${cooldownMsDefault}` }));
const closed = (kind: AlertKind) => ({ additionalProperties: false, ...errorRule(ErrorCode.invalid_field, undefined, { rules: { additionalProperties: `is not a field of a ${kind} rule` } }) });

export const MoveRuleSchema = named(
  'MoveRule',
  Type.Object({ ...ruleHead, kind: Type.Literal('move'), cooldown_ms: cooldown, move_pct: positiveUpTo(1000), window_ms: integerIn(1, dayMs) }, closed('move')),
);
export const ZScoreRuleSchema = named(
  'ZScoreRule',
  Type.Object({ ...ruleHead, kind: Type.Literal('zscore'), cooldown_ms: cooldown, z: positiveUpTo(100), returns: integerIn(2, 10_000) }, closed('zscore')),
);
export const SilenceRuleSchema = named('SilenceRule', Type.Object({ ...ruleHead, kind: Type.Literal('silence'), cooldown_ms: cooldown, silent_ms: integerIn(1, weekMs) }, closed('silence')));
export const AlertRuleSchema = named('AlertRule', Type.Union([MoveRuleSchema, ZScoreRuleSchema, SilenceRuleSchema]));
/** The body of PUT /api/v1/market/alerts and the answer of both routes; `max` is alertRulesMax. */
export const AlertRulesSchema = (max = alertRulesMaxDefault) =>
  named(
    'AlertRules',
    Type.Object({
      rules: Type.Array(AlertRuleSchema, {
        maxItems: max,
        ...errorRule(ErrorCode.invalid_field, undefined, { rules: { type: 'must be an array', maxItems: `holds at most ${max} rules` }, codes: { maxItems: ErrorCode.limit_exceeded } }),
      }),
    }),
  );

/** The head first, so a bad id or an unknown kind is named before the fields the kind would have. */
const headValidator = new Validator('rule', Type.Object({ ...ruleHead, kind: Type.Enum(['move', 'zscore', 'silence'], errorRule(ErrorCode.invalid_field)) }));
export const ruleValidators = {
  move: new Validator('rule', MoveRuleSchema),
  zscore: new Validator('rule', ZScoreRuleSchema),
  silence: new Validator('rule', SilenceRuleSchema),
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
  const head = headValidator.validate(input, field);
  if (!head.ok) return head;
  const v = ruleValidators[head.value.kind].validate(input, field);
  if (!v.ok) return v;
  const r = v.value;
  const base = { id: r.id, name: r.name ?? r.id, cooldown_ms: r.cooldown_ms ?? cooldownMsDefault };
  if (r.kind === 'move') return ok({ ...base, kind: 'move', move_pct: r.move_pct, window_ms: r.window_ms });
  if (r.kind === 'zscore') return ok({ ...base, kind: 'zscore', z: r.z, returns: r.returns });
  return ok({ ...base, kind: 'silence', silent_ms: r.silent_ms });
}
