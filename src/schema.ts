// One schema per message: the mechanism. A message is defined once, with TypeBox (JSON Schema 2020-12
// builders whose TypeScript types come with them); that one definition gives
//   - the TypeScript type:        type TradeInput = Static<typeof TradeInput>;
//   - the compiled validator:     new Validator('trade', TradeInput).validate(body) -> Result<TradeInput>;
//   - the OpenAPI 3.1 / AsyncAPI 3 schema: toJsonSchema(TradeInput) (named parts become $refs).
// A failure answers with a code of src/errors.ts and a message naming the field and the rule, both
// read from annotations on the schema (errorRule below), so the rule is written where the field is.
// Rules JSON Schema cannot say (exact 1e-8 quantities, overflow bounds of sums) stay code, next to
// the schema that names the field (see src/domain/validate.ts).
//
// How to add a message (see src/protocol/messages.ts for the wire ones, src/domain/schemas.ts for the
// domain's):
//   1. Define it with `Type.*`, annotate each field that answers with its own code with
//      `errorRule(code, rule?)`, wrap it in `named('Name', ...)` if documents should show it as a
//      component, and export `type Name = Static<typeof Name>`.
//   2. Validate it with a `Validator` (compiled on first use; `validate` returns Result).
//   3. Reference the schema object itself in openapi.ts (requestBody / responses) or asyncapi.ts
//      (messages): the documents are emitted from it by `toJsonSchema`, never written by hand.
//   4. test/schema.test.ts proves documents and validators share the definitions: add the message to
//      its table.
// This module and the schema modules are browser-safe (the SDK and web/ import them): no Node imports,
// and nothing is compiled until a validator is first used.

import type { Static, TSchema } from 'typebox';
import type { TLocalizedValidationError } from 'typebox/error';
import { Compile, Type } from './vendor/typebox.js';
import { ErrorCode, fail, ok, type EngineError, type Result } from './errors.js';

export { Type, type Static, type TSchema };

/** Keys of the annotations on a schema (JSON Schema allows unknown keywords; OpenAPI and AsyncAPI allow x-). */
const codeKey = 'x-error-code';
const ruleKey = 'x-error-rule';
const rulesKey = 'x-error-rules';
const codesKey = 'x-error-codes';
const componentKey = 'x-component';
const laterKey = 'x-checked-later';

type Json = Record<string, unknown>;

/**
 * Schema options saying how a failure of this field is answered: `code` (else the nearest annotated
 * ancestor's, else invalid_field); `rule`, the text after the field name whatever keyword failed (else
 * one made from the keyword: "must be > 0"); `rules` / `codes` per JSON Schema keyword
 * (`required`, `maxItems`, `additionalProperties`...).
 */
export function errorRule(code: ErrorCode, rule?: string, more: { rules?: Record<string, string>; codes?: Record<string, ErrorCode> } = {}): Json {
  const o: Json = { [codeKey]: code };
  if (rule !== undefined) o[ruleKey] = rule;
  if (more.rules !== undefined) o[rulesKey] = more.rules;
  if (more.codes !== undefined) o[codesKey] = more.codes;
  return o;
}

/** Marks a schema as a named component: documents show it once under components.schemas and $ref it. */
export function named<T extends TSchema>(name: string, schema: T): T {
  (schema as unknown as Json)[componentKey] = name;
  return schema;
}

export function componentName(schema: unknown): string | undefined {
  const n = (schema as Json | null)?.[componentKey];
  return typeof n === 'string' ? n : undefined;
}

/**
 * Marks a part of a message that is checked later, on its own, with its own answer (a WebSocket
 * trade op's `trade` answers with the trade's field after the access checks; a feed batch's ticks are
 * refused one by one by index). The message's validator then skips it, or checks only its type and
 * item counts with `keepType`; documents show the whole schema. Returns a marked copy: `schema`
 * itself (often a shared named one) is left as it is.
 */
export function checkedLater<T extends TSchema>(schema: T, options: { keepType?: boolean } = {}): T {
  return { ...(schema as object), [laterKey]: options.keepType === true ? 'shape' : 'skip' } as unknown as T;
}

/** `schema` or null; annotations (errorRule) go on the union, where the walk from the field finds them. */
export function nullable<T extends TSchema>(schema: T, options: Json = {}) {
  return Type.Union([schema, Type.Null()], options);
}

// ---- documents ---------------------------------------------------------------------------------

/**
 * The JSON Schema of `schema` for a document: named parts (other than the root) become
 * `{"$ref": refOf(name)}` and are collected into `into` (name -> their own JSON Schema), so a document
 * lists each once. Marker keys used only here are dropped; error annotations stay (they tell a client
 * which code a field answers with).
 */
export function toJsonSchema(schema: unknown, refOf: (name: string) => string, into?: Record<string, unknown>): unknown {
  return emit(schema, refOf, into, true);
}

function emit(node: unknown, refOf: (name: string) => string, into: Record<string, unknown> | undefined, root: boolean): unknown {
  if (Array.isArray(node)) return node.map((x) => emit(x, refOf, into, false));
  if (typeof node !== 'object' || node === null) return node;
  const name = componentName(node);
  if (name !== undefined && !root) {
    if (into !== undefined && !(name in into)) {
      into[name] = {}; // reserved first: a schema that reaches itself stops here
      into[name] = emit(node, refOf, into, true);
    }
    return { $ref: refOf(name) };
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === componentKey || k === laterKey) continue;
    // A record (any key): documents say it as additionalProperties, which every tool reads.
    if (k === 'patternProperties' && isAnyKey(v)) {
      out.additionalProperties = emit((v as Json)[anyKey], refOf, into, false);
      continue;
    }
    // properties / patternProperties / $defs hold names, not keywords: their values are schemas.
    out[k] = k === 'properties' || k === 'patternProperties' ? mapValues(v as Json, (s) => emit(s, refOf, into, false)) : emit(v, refOf, into, false);
  }
  return out;
}

const anyKey = '^.*$';
function isAnyKey(v: unknown): boolean {
  return typeof v === 'object' && v !== null && Object.keys(v).length === 1 && anyKey in v;
}

function mapValues(o: Json, f: (v: unknown) => unknown): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(o)) out[k] = f(v);
  return out;
}

/** Every named schema reachable from `roots`, as the document's components.schemas. */
export function componentsOf(roots: readonly unknown[], refOf: (name: string) => string): Record<string, unknown> {
  const into: Record<string, unknown> = {};
  for (const r of roots) {
    const name = componentName(r);
    if (name !== undefined) emit({ r }, refOf, into, true);
    else emit(r, refOf, into, true);
  }
  return into;
}

// ---- validators --------------------------------------------------------------------------------

/** The outer shape of a schema: parts marked checkedLater keep their type and counts, or nothing. */
function shallow(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(shallow);
  if (typeof node !== 'object' || node === null) return node;
  const n = node as Json;
  if (n[laterKey] === 'skip') return {};
  if (n[laterKey] === 'shape') {
    const out: Json = {};
    for (const k of ['type', 'minItems', 'maxItems', codeKey, ruleKey, rulesKey, codesKey]) if (k in n) out[k] = n[k];
    return out;
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(n)) out[k] = k === 'properties' || k === 'patternProperties' ? mapValues(v as Json, shallow) : shallow(v);
  // A property checked later is not required here either: its absence is answered when it is checked.
  if (Array.isArray(n.required) && typeof n.properties === 'object' && n.properties !== null) {
    const props = n.properties as Json;
    out.required = (n.required as string[]).filter((k) => (props[k] as Json | undefined)?.[laterKey] !== 'skip');
  }
  return out;
}

type Checker = { Check(value: unknown): boolean; Errors(value: unknown): TLocalizedValidationError[] };
interface FieldCheck {
  key: string;
  check: Checker;
  required: boolean;
  code: ErrorCode | null;
}

/**
 * A compiled validator of one message. `name` is how an answer names the whole value ("trade must be
 * an object"); `prefix`, when set, goes before every field (`limits.max_loss`).
 */
export class Validator<T extends TSchema> {
  private compiled: Checker | null = null;
  /** Top-level lists with a maxItems: their lengths are checked before the compiled check reads their items. */
  private bounds: { key: string; max: number }[] = [];
  /** Each field's own compiled check, for errorsOf (compiled on the first invalid value). */
  private fields: FieldCheck[] | null = null;
  private hasFields = false;

  constructor(
    readonly name: string,
    readonly schema: T,
    private readonly prefix: string | null = null,
  ) {}

  private checker(): Checker {
    if (this.compiled === null) {
      this.compiled = Compile(shallow(this.schema) as TSchema) as unknown as Checker;
      this.bounds = listBounds(this.schema);
      this.hasFields = (this.schema as unknown as Json).properties !== undefined;
    }
    return this.compiled;
  }

  /** The compiled check alone: no allocation when the value is valid. */
  check(value: unknown): value is Static<T> {
    return this.checker().Check(value);
  }

  /** `prefix` (else the validator's own) goes before every field named: `rules[2]` -> `rules[2].move_pct`. */
  validate(value: unknown, prefix: string | null = this.prefix): Result<Static<T>> {
    const checker = this.checker();
    if (this.bounds.length > 0 && typeof value === 'object' && value !== null) {
      for (const b of this.bounds) {
        const list = (value as Json)[b.key];
        if (Array.isArray(list) && list.length > b.max) {
          const error = { keyword: 'maxItems', schemaPath: '', instancePath: `/${b.key}`, params: { limit: b.max }, message: '' } as TLocalizedValidationError;
          return { ok: false, error: explain(this.schema, [error], this.name, prefix) };
        }
      }
    }
    if (checker.Check(value)) return ok(value as Static<T>);
    return { ok: false, error: this.errorOf(value, prefix) };
  }

  /** The answer for an invalid value: the first failing field in declaration order, its code and rule. */
  errorOf(value: unknown, prefix: string | null = this.prefix): EngineError {
    return explain(this.schema, this.errorsOf(value), this.name, prefix);
  }

  /**
   * Only the code of the answer, without building it: a field's code is read from its annotations
   * unless it has codes per keyword. For hot refusals (ticks answered by index with a code).
   */
  codeOf(value: unknown): ErrorCode {
    this.checker();
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !this.hasFields) return this.errorOf(value).code;
    const f = this.firstBadField(value as Json);
    if (f === null || f.code === null) return this.errorOf(value).code;
    return f.code;
  }

  /**
   * Each field's own compiled check and what its answer needs, read once into plain data (reading the
   * schema objects themselves on every refusal cost ~2 us a tick).
   */
  private fieldChecks(): FieldCheck[] {
    if (this.fields === null) {
      const s = this.schema as unknown as Json;
      const props = s.properties as Json;
      const required = new Set((s.required as string[] | undefined) ?? []);
      const rootCode = (s[codeKey] as ErrorCode | undefined) ?? ErrorCode.invalid_field;
      this.fields = Object.entries(props).map(([key, schema]) => ({
        key,
        check: Compile(shallow(schema) as TSchema) as unknown as Checker,
        required: required.has(key) && (schema as Json)[laterKey] !== 'skip',
        // null: the code depends on the keyword (codes per keyword), so the full answer decides it.
        code: own(schema, codesKey) !== undefined ? null : ((own(schema, codeKey) as ErrorCode | undefined) ?? rootCode),
      }));
    }
    return this.fields;
  }

  /** The first field, in declaration order, that is missing while required or fails its own check. */
  private firstBadField(v: Json): FieldCheck | null {
    const fields = this.fieldChecks();
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      const x = v[f.key];
      // undefined is absent, as the compiled check of the whole object sees it.
      if (x === undefined) {
        if (f.required) return f;
        continue;
      }
      if (!f.check.Check(x)) return f;
    }
    return null;
  }

  /**
   * The errors that decide the answer. For an object, only those of its first failing field in
   * declaration order: each field is checked alone by its own compiled check, and only that one
   * field's errors are collected (the interpreted error walk costs ~30x a check: a feed of bad ticks
   * must not pay it for every field of every tick).
   */
  private errorsOf(value: unknown): TLocalizedValidationError[] {
    const checker = this.checker();
    const s = this.schema as unknown as Json;
    if (s.properties === undefined || typeof value !== 'object' || value === null || Array.isArray(value)) return checker.Errors(value);
    const f = this.firstBadField(value as Json);
    if (f !== null) {
      if ((value as Json)[f.key] === undefined) return [{ keyword: 'required', schemaPath: '#', instancePath: '', params: { requiredProperties: [f.key] }, message: '' } as TLocalizedValidationError];
      return f.check.Errors((value as Json)[f.key]).map((e) => ({ ...e, instancePath: `/${escapePointer(f.key)}${e.instancePath}` }));
    }
    return checker.Errors(value);
  }
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function listBounds(schema: unknown): { key: string; max: number }[] {
  const out: { key: string; max: number }[] = [];
  const props = (schema as Json | null)?.properties as Json | undefined;
  for (const [key, p] of Object.entries(props ?? {})) {
    const candidates = [p, ...(((p as Json).anyOf as unknown[] | undefined) ?? [])] as Json[];
    for (const c of candidates) if (c.type === 'array' && typeof c.maxItems === 'number') out.push({ key, max: c.maxItems });
  }
  return out;
}

// ---- errors -> codes and messages --------------------------------------------------------------

interface Located {
  error: TLocalizedValidationError;
  segments: string[];
  rank: number;
  order: number;
}

function pointerSegments(p: string): string[] {
  if (p === '') return [];
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function propertyOrder(schema: unknown): string[] {
  const props = (schema as Json | null)?.properties;
  return typeof props === 'object' && props !== null ? Object.keys(props) : [];
}

/** The schema a path of instance segments leads to (through unions, arrays and records). */
function walk(schema: unknown, segments: readonly string[]): unknown[] {
  const chain: unknown[] = [schema];
  let node: unknown = schema;
  for (const seg of segments) {
    node = descend(node, seg);
    if (node === undefined) break;
    chain.push(node);
  }
  return chain;
}

function descend(node: unknown, seg: string): unknown {
  if (typeof node !== 'object' || node === null) return undefined;
  const n = node as Json;
  const props = n.properties as Json | undefined;
  if (props !== undefined && seg in props) return props[seg];
  if (n.items !== undefined && /^\d+$/.test(seg)) return n.items;
  if (typeof n.additionalProperties === 'object' && n.additionalProperties !== null) return n.additionalProperties;
  const pattern = n.patternProperties as Json | undefined;
  if (pattern !== undefined) return Object.values(pattern)[0];
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const branches = n[key];
    if (!Array.isArray(branches)) continue;
    for (const b of branches) {
      const d = descend(b, seg);
      if (d !== undefined) return d;
    }
  }
  return undefined;
}

/** An annotation of the node, or of a union's branch (a nullable field's annotations may sit inside). */
function own(node: unknown, key: string): unknown {
  if (typeof node !== 'object' || node === null) return undefined;
  const n = node as Json;
  if (n[key] !== undefined) return n[key];
  for (const k of ['anyOf', 'oneOf', 'allOf']) {
    const branches = n[k];
    if (!Array.isArray(branches)) continue;
    for (const b of branches) {
      const v = (b as Json | null)?.[key];
      if (v !== undefined) return v;
    }
  }
  return undefined;
}

function annotation(chain: readonly unknown[], key: string): unknown {
  for (let i = chain.length - 1; i >= 0; i--) {
    const v = own(chain[i], key);
    if (v !== undefined) return v;
  }
  return undefined;
}

function fieldName(segments: readonly string[], rootName: string, prefix: string | null): string {
  if (segments.length === 0) return prefix ?? rootName;
  let out = prefix ?? '';
  for (const s of segments) out += /^\d+$/.test(s) ? `[${s}]` : out === '' ? s : `.${s}`;
  return out;
}

const typeRules: Record<string, string> = {
  number: 'must be a finite number',
  integer: 'must be an integer',
  string: 'must be a string',
  boolean: 'must be a boolean',
  array: 'must be an array',
  object: 'must be an object',
  null: 'must be null',
};

function autoRule(e: TLocalizedValidationError, node: unknown): string {
  const p = e.params as Record<string, any>;
  switch (e.keyword) {
    case 'type':
      return typeRules[String(p.type)] ?? `must be ${String(p.type)}`;
    case 'minimum':
      return `must be >= ${p.limit}`;
    case 'exclusiveMinimum':
      return `must be > ${p.limit}`;
    case 'maximum':
      return `must be <= ${p.limit}`;
    case 'exclusiveMaximum':
      return `must be < ${p.limit}`;
    case 'minLength':
      return `must be at least ${p.limit} characters`;
    case 'maxLength':
      return `must be at most ${p.limit} characters`;
    case 'pattern':
      return `must match ${String(p.pattern).replace(/^\^/, '').replace(/\$$/, '')}`;
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'minItems':
      return p.limit === 1 ? 'must not be empty' : `must hold at least ${p.limit} items`;
    case 'maxItems':
      return `may hold at most ${p.limit} entries`;
    case 'uniqueItems':
      return 'must not repeat an item';
    case 'additionalProperties':
      return 'is not a known field';
    case 'required': {
      const t = (node as Json | null)?.type;
      return typeof t === 'string' && typeRules[t] !== undefined ? `is required and ${typeRules[t]}` : 'is required';
    }
    default:
      return e.message;
  }
}

/** Errors that only restate another at the same place: a union's summary, a nullable field's "must be null". */
function isEcho(e: TLocalizedValidationError): boolean {
  return e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'boolean' || (e.keyword === 'type' && (e.params as { type?: unknown }).type === 'null');
}

function explain(schema: unknown, errors: readonly TLocalizedValidationError[], rootName: string, prefix: string | null): EngineError {
  const order = propertyOrder(schema);
  const located: Located[] = [];
  errors.forEach((error, i) => {
    let segments = pointerSegments(error.instancePath);
    // A missing property or an unknown one is reported on the object; the answer names the property.
    if (error.keyword === 'required') {
      const parent = walk(schema, segments).at(-1);
      const missing = [...((error.params as { requiredProperties?: string[] }).requiredProperties ?? [])];
      const po = propertyOrder(parent);
      missing.sort((a, b) => po.indexOf(a) - po.indexOf(b));
      if (missing.length > 0) segments = [...segments, missing[0]];
    } else if (error.keyword === 'additionalProperties') {
      const extra = (error.params as { additionalProperties?: string[] }).additionalProperties ?? [];
      if (extra.length > 0) segments = [...segments, extra[0]];
    }
    const top = segments.length === 0 ? -1 : order.indexOf(segments[0]);
    located.push({ error, segments, rank: top < 0 ? (segments.length === 0 ? -1 : order.length) : top, order: i });
  });
  // The first field in declaration order; within it a real failure before a union's echo, then the
  // outer rule before an element's (a list too long is answered as such before its items are read).
  located.sort((a, b) => a.rank - b.rank || Number(isEcho(a.error)) - Number(isEcho(b.error)) || a.segments.length - b.segments.length || a.order - b.order);
  const first = located[0];
  if (first === undefined) return { code: ErrorCode.invalid_field, message: `${prefix ?? rootName} is invalid`, field: prefix ?? rootName };
  const { error, segments } = first;
  // additionalProperties is the parent's rule about its keys: read the parent's annotations.
  const chain = walk(schema, error.keyword === 'additionalProperties' ? segments.slice(0, -1) : segments);
  const node = chain.at(-1);
  const codes = own(node, codesKey) as Record<string, ErrorCode> | undefined;
  const rules = own(node, rulesKey) as Record<string, string> | undefined;
  const code = (codes?.[error.keyword] ?? annotation(chain, codeKey) ?? ErrorCode.invalid_field) as ErrorCode;
  const rule = rules?.[error.keyword] ?? (own(node, ruleKey) as string | undefined) ?? autoRule(error, node);
  const field = fieldName(segments, rootName, prefix);
  return fail(code, `${field} ${rule}`, field).error;
}

/** A Result of the first error, for callers that build values after the schema check. */
export function refuse<T>(e: EngineError): Result<T> {
  return { ok: false, error: e };
}
