// Deterministic serialisers for the generated files: the committed files are compared byte for byte
// with a fresh generation, so output must depend on the content only, never on the order in which
// the SDK happens to set fields.

/** JSON with object keys sorted at every level, 2-space indent, trailing newline. */
export function stableJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2) + '\n';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

export type Yaml = string | number | boolean | null | readonly Yaml[] | { readonly [key: string]: Yaml | undefined };

/**
 * YAML for the subset the rule and provisioning files need: maps (keys in the order given, because
 * Prometheus files read best as record/alert, expr, for, labels, annotations), lists, scalars.
 * Strings are plain when plain YAML reads them back as the same string, otherwise single-quoted
 * (PromQL and Go templates are full of double quotes, which single quotes leave alone).
 */
export function toYaml(value: Yaml, header?: string): string {
  const lines: string[] = header ? header.split('\n').map((l) => (l ? `# ${l}` : '#')) : [];
  emit(value, 0, lines);
  return lines.join('\n') + '\n';
}

function emit(value: Yaml, indent: number, lines: string[]): void {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    for (const item of value as readonly Yaml[]) {
      if (isCollection(item) && !isEmpty(item)) {
        const sub: string[] = [];
        emit(item, indent + 2, sub);
        lines.push(`${pad}- ${sub[0].slice(indent + 2)}`, ...sub.slice(1));
      } else {
        lines.push(`${pad}- ${scalar(item)}`);
      }
    }
    return;
  }
  if (isMap(value)) {
    for (const [key, v] of Object.entries(value)) {
      if (v === undefined) continue;
      if (isCollection(v) && !isEmpty(v)) {
        lines.push(`${pad}${key}:`);
        // Lists under a key are indented too: the layout Prometheus' own examples use.
        emit(v, indent + 2, lines);
      } else {
        lines.push(`${pad}${key}: ${scalar(v)}`);
      }
    }
    return;
  }
  lines.push(`${pad}${scalar(value)}`);
}

function isMap(v: Yaml | undefined): v is { readonly [key: string]: Yaml | undefined } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
function isCollection(v: Yaml | undefined): boolean {
  return v !== null && typeof v === 'object';
}
function isEmpty(v: Yaml): boolean {
  return Array.isArray(v) ? v.length === 0 : isMap(v) && Object.keys(v).length === 0;
}

const plainSafe = /^[A-Za-z_/.][A-Za-z0-9_ ./-]*$/;
/** Prometheus durations (1m, 15s) read back as strings when plain. */
const duration = /^[0-9]+(ms|s|m|h|d|w|y)$/;
const yamlKeywords = /^(true|false|yes|no|on|off|null|y|n|~)$/i;

function scalar(v: Yaml | undefined): string {
  if (Array.isArray(v)) return '[]';
  if (isMap(v)) return '{}';
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = v as string;
  if (s.includes('\n')) throw new Error('multi-line YAML strings are not supported');
  if ((plainSafe.test(s) && !yamlKeywords.test(s) && !s.endsWith(' ')) || duration.test(s)) return s;
  return `'${s.replace(/'/g, "''")}'`;
}
