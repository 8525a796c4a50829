// A small JSON Schema (2020-12 subset) validator for checking real server answers against the
// OpenAPI/AsyncAPI documents: type (incl. arrays of types, integer, null), properties, required,
// additionalProperties, items, enum, const, allOf/anyOf/oneOf, $ref (local JSON pointers),
// minimum/maximum/exclusiveMinimum/exclusiveMaximum, minLength/maxLength, pattern, minItems/maxItems.
// Unknown keywords (description, format, default...) are ignored. Returns the list of violations.

type Schema = Record<string, any> | boolean;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function matchesType(v: unknown, t: string): boolean {
  switch (t) {
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'object':
      return typeOf(v) === 'object';
    default:
      return typeOf(v) === t;
  }
}

function resolvePointer(root: unknown, ref: string): Schema {
  if (!ref.startsWith('#/')) throw new Error(`only local $ref supported: ${ref}`);
  let cur: any = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    cur = cur?.[key];
    if (cur === undefined) throw new Error(`unresolvable $ref ${ref}`);
  }
  return cur as Schema;
}

export function validate(root: unknown, schema: Schema, value: unknown, path = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: no value allowed`];
  const errors: string[] = [];
  const s = schema;
  if (typeof s.$ref === 'string') errors.push(...validate(root, resolvePointer(root, s.$ref), value, path));
  if (s.type !== undefined) {
    const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((t) => matchesType(value, t))) {
      errors.push(`${path}: expected ${types.join('|')}, got ${typeOf(value)}`);
      return errors;
    }
  }
  if (s.const !== undefined && JSON.stringify(s.const) !== JSON.stringify(value)) errors.push(`${path}: expected const ${JSON.stringify(s.const)}`);
  if (Array.isArray(s.enum) && !s.enum.some((e: unknown) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push(`${path}: ${JSON.stringify(value)} not in enum`);
  }
  if (typeof value === 'number') {
    if (typeof s.minimum === 'number' && value < s.minimum) errors.push(`${path}: ${value} < minimum ${s.minimum}`);
    if (typeof s.maximum === 'number' && value > s.maximum) errors.push(`${path}: ${value} > maximum ${s.maximum}`);
    if (typeof s.exclusiveMinimum === 'number' && value <= s.exclusiveMinimum) errors.push(`${path}: ${value} <= exclusiveMinimum ${s.exclusiveMinimum}`);
    if (typeof s.exclusiveMaximum === 'number' && value >= s.exclusiveMaximum) errors.push(`${path}: ${value} >= exclusiveMaximum ${s.exclusiveMaximum}`);
  }
  if (typeof value === 'string') {
    if (typeof s.minLength === 'number' && value.length < s.minLength) errors.push(`${path}: shorter than ${s.minLength}`);
    if (typeof s.maxLength === 'number' && value.length > s.maxLength) errors.push(`${path}: longer than ${s.maxLength}`);
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(value)) errors.push(`${path}: does not match ${s.pattern}`);
  }
  if (Array.isArray(value)) {
    if (typeof s.minItems === 'number' && value.length < s.minItems) errors.push(`${path}: fewer than ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && value.length > s.maxItems) errors.push(`${path}: more than ${s.maxItems} items`);
    if (s.items !== undefined) value.forEach((item, i) => errors.push(...validate(root, s.items, item, `${path}[${i}]`)));
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    if (Array.isArray(s.required)) for (const k of s.required) if (!(k in obj)) errors.push(`${path}: missing required '${k}'`);
    const props: Record<string, Schema> = s.properties ?? {};
    for (const [k, v] of Object.entries(obj)) {
      if (k in props) errors.push(...validate(root, props[k], v, `${path}.${k}`));
      else if (s.additionalProperties !== undefined && s.additionalProperties !== true) {
        errors.push(...validate(root, s.additionalProperties, v, `${path}.${k}`));
      }
    }
  }
  if (Array.isArray(s.allOf)) for (const sub of s.allOf) errors.push(...validate(root, sub, value, path));
  if (Array.isArray(s.anyOf) && !s.anyOf.some((sub: Schema) => validate(root, sub, value, path).length === 0)) errors.push(`${path}: matches no anyOf branch`);
  if (Array.isArray(s.oneOf)) {
    const n = s.oneOf.filter((sub: Schema) => validate(root, sub, value, path).length === 0).length;
    if (n !== 1) errors.push(`${path}: matches ${n} oneOf branches, expected 1`);
  }
  return errors;
}
