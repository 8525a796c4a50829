// The effective configuration of `mtm serve` / `mtm config`: every option of the table (options.ts)
// with its value and where that value came from. Precedence, lowest first:
//   default < config file (--config FILE or MTM_CONFIG) < environment (MTM_*) < flag (--name).
// Every value is checked against its option's kind and bounds, and the server's cross-field rules run
// too, so a bad configuration is refused before anything opens, naming the option, where it came
// from and the rule. An unknown flag or config file key is refused (with the nearest known name);
// environment variables that name no option are ignored (MTM_KEY is the SDK's, for one), with a warning
// when one is a typo away from an option's variable.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { resolveOptions as resolveServerOptions } from '../server/options.js';
import { envName, optionEntry, optionTable, type Component, type OptionEntry, type OptionValue } from './options.js';

export type Source = { from: 'default' } | { from: 'file'; path: string } | { from: 'env'; name: string } | { from: 'flag'; name: string };

export interface Setting {
  option: OptionEntry;
  value: OptionValue | null;
  source: Source;
}

export interface Config {
  /** Every option of the table, in table order. */
  settings: readonly Setting[];
  /** The config file read, if any (absolute). */
  file: string | null;
  /** MTM_* variables that name no option but nearly do (a typo): ignored, and said so. */
  warnings: readonly string[];
}

export type Resolved = { ok: true; config: Config } | { ok: false; message: string };

/** The meta option naming the file; not part of the table (a file cannot name another file). */
export const configFlag = 'config';
export const configEnv = envName(configFlag);

/** Where a value came from, as `mtm config` prints it. */
export function sourceText(s: Source): string {
  switch (s.from) {
    case 'default':
      return 'default';
    case 'file':
      return `file ${s.path}`;
    case 'env':
      return `env ${s.name}`;
    case 'flag':
      return `flag --${s.name}`;
  }
}

function describeRule(o: OptionEntry): string {
  const k = o.kind;
  switch (k.type) {
    case 'int': {
      const range = k.max >= Number.MAX_SAFE_INTEGER ? `>= ${k.min}` : `from ${k.min} to ${k.max}`;
      return `a whole number${o.unit === '' ? '' : ` of ${o.unit}`} ${range}${k.rule === undefined ? '' : `, ${k.rule.text}`}`;
    }
    case 'number':
      return `a number${o.unit === '' ? '' : ` (${o.unit})`} ${k.max >= Number.MAX_SAFE_INTEGER ? `>= ${k.min}` : `from ${k.min} to ${k.max}`}`;
    case 'bool':
      return 'true or false (1 or 0)';
    case 'enum':
      return k.values.length === 2 ? `${k.values[0]} or ${k.values[1]}` : `one of ${k.values.join(', ')}`;
    case 'string':
      return `a non-empty string of at most ${k.lengthMax} characters`;
    case 'path':
      return 'a non-empty path';
  }
}

/** The refusal of a bad value: the option, the rule, and what was given. */
function refusal(o: OptionEntry, given: unknown): string {
  return `--${o.name} must be ${describeRule(o)}, got ${typeof given === 'string' ? `'${given}'` : JSON.stringify(given)}`;
}

function checkNumber(o: OptionEntry, n: number): boolean {
  const k = o.kind;
  if (k.type === 'int') return Number.isSafeInteger(n) && n >= k.min && n <= k.max && (k.rule === undefined || k.rule.test(n));
  if (k.type === 'number') return Number.isFinite(n) && n >= k.min && n <= k.max;
  return false;
}

/** A value from a flag or the environment (text). */
function fromText(o: OptionEntry, raw: string): OptionValue | Error {
  const k = o.kind;
  switch (k.type) {
    case 'int':
    case 'number': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      return checkNumber(o, n) ? n : new Error(refusal(o, raw));
    }
    case 'bool':
      if (raw === '' || raw === '1' || raw === 'true') return true;
      if (raw === '0' || raw === 'false') return false;
      return new Error(refusal(o, raw));
    case 'enum':
      return k.values.includes(raw) ? raw : new Error(refusal(o, raw));
    case 'string':
      return raw.length > 0 && raw.length <= k.lengthMax ? raw : new Error(refusal(o, raw));
    case 'path':
      return raw.length > 0 ? raw : new Error(refusal(o, raw));
  }
}

/** A value from the JSON file: JSON types, no coercion from text; relative paths against the file's directory. */
function fromJson(o: OptionEntry, v: unknown, fileDir: string): OptionValue | Error {
  const k = o.kind;
  switch (k.type) {
    case 'int':
    case 'number':
      return typeof v === 'number' && checkNumber(o, v) ? v : new Error(refusal(o, v));
    case 'bool':
      return typeof v === 'boolean' ? v : new Error(refusal(o, v));
    case 'enum':
      return typeof v === 'string' && k.values.includes(v) ? v : new Error(refusal(o, v));
    case 'string':
      return typeof v === 'string' && v.length > 0 && v.length <= k.lengthMax ? v : new Error(refusal(o, v));
    case 'path':
      return typeof v === 'string' && v.length > 0 ? resolve(fileDir, v) : new Error(refusal(o, v));
  }
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** The known name within a typo (edit distance 2) of an unknown one, or null. */
function nearest(unknown: string, names: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const name of names) {
    const d = editDistance(unknown, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

/** " (did you mean --port?)" when a known name is within a typo of the unknown one. */
function suggestion(unknown: string, prefix: string): string {
  const best = nearest(unknown, optionTable.map((o) => o.name));
  return best === null ? '' : ` (did you mean ${prefix}${best}?)`;
}

/** MTM_* variables that are not options but a typo away from one. */
function environmentTypos(env: NodeJS.ProcessEnv): string[] {
  const known = [configEnv, ...optionTable.map((o) => envName(o.name))];
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('MTM_') || known.includes(name)) continue;
    const best = nearest(name, known);
    if (best !== null) out.push(`${name} is not an mtm option and is ignored (did you mean ${best}?)`);
  }
  return out;
}

interface FlagValue {
  name: string;
  raw: string;
}

/** Splits argv into --name value pairs; only the shape is checked here. */
function readFlags(argv: readonly string[]): { ok: true; flags: FlagValue[] } | { ok: false; message: string } {
  const flags: FlagValue[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? arg.slice(2, eq < 0 ? undefined : eq) : '';
    const o = optionEntry(name);
    if (name !== configFlag && o === undefined) return { ok: false, message: `unknown option '${arg}'${arg.startsWith('--') ? suggestion(name, '--') : ''} (see mtm --help)` };
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    // A value that looks like the next flag is a forgotten value, not a value.
    const next = argv[i + 1]?.startsWith('--') === true ? undefined : argv[i + 1];
    if (o?.kind.type !== 'bool' && inline === undefined && next !== undefined) i++;
    const raw = o?.kind.type === 'bool' ? (inline ?? '') : (inline ?? next);
    if (raw === undefined) return { ok: false, message: `--${name} needs a value` };
    flags.push({ name, raw });
  }
  return { ok: true, flags };
}

function readConfigFile(file: string, readFile: (path: string) => string): { ok: true; values: Map<string, unknown> } | { ok: false; message: string } {
  let text: string;
  try {
    text = readFile(file);
  } catch (e) {
    return { ok: false, message: `config file ${file}: cannot be read (${e instanceof Error ? e.message : String(e)})` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { ok: false, message: `config file ${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, message: `config file ${file}: must be a JSON object whose keys are long option names, e.g. {"port": 8080, "data": "./data"}` };
  }
  const values = new Map<string, unknown>();
  for (const [key, value] of Object.entries(parsed)) {
    if (optionEntry(key) === undefined) return { ok: false, message: `config file ${file}: unknown key "${key}"${suggestion(key, '')} (keys are the long option names of mtm --help)` };
    values.set(key, value);
  }
  return { ok: true, values };
}

export interface ResolveInput {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Reads the config file; default readFileSync. */
  readFile?: (path: string) => string;
  /** Resolves a relative --config path; default process.cwd(). */
  cwd?: string;
}

export function resolveConfig(input: ResolveInput): Resolved {
  const read = readFlags(input.argv);
  if (!read.ok) return read;
  const fileFlag = read.flags.filter((f) => f.name === configFlag).at(-1);
  const fileRaw = fileFlag?.raw ?? input.env[configEnv];
  if (fileRaw !== undefined && fileRaw.length === 0) return { ok: false, message: `${fileFlag === undefined ? configEnv : '--config'} must name a JSON file` };
  const file = fileRaw === undefined ? null : resolve(input.cwd ?? process.cwd(), fileRaw);
  let fileValues = new Map<string, unknown>();
  if (file !== null) {
    const loaded = readConfigFile(file, input.readFile ?? ((p) => readFileSync(p, 'utf8')));
    if (!loaded.ok) return loaded;
    fileValues = loaded.values;
  }
  const settings: Setting[] = [];
  for (const option of optionTable) {
    let setting: Setting = { option, value: option.default, source: { from: 'default' } };
    if (fileValues.has(option.name)) {
      const v = fromJson(option, fileValues.get(option.name), dirname(file as string));
      if (v instanceof Error) return { ok: false, message: `config file ${file as string}: "${option.name}": ${v.message}` };
      setting = { option, value: v, source: { from: 'file', path: file as string } };
    }
    const env = envName(option.name);
    const rawEnv = input.env[env];
    if (rawEnv !== undefined) {
      const v = fromText(option, rawEnv);
      if (v instanceof Error) return { ok: false, message: `${env}: ${v.message}` };
      setting = { option, value: v, source: { from: 'env', name: env } };
    }
    const flag = read.flags.filter((f) => f.name === option.name).at(-1);
    if (flag !== undefined) {
      const v = fromText(option, flag.raw);
      if (v instanceof Error) return { ok: false, message: v.message };
      setting = { option, value: v, source: { from: 'flag', name: option.name } };
    }
    settings.push(setting);
  }
  const config: Config = { settings, file, warnings: environmentTypos(input.env) };
  const crossField = serverRules(config);
  return crossField === null ? { ok: true, config } : { ok: false, message: crossField };
}

/** The server's own resolver on the configured limits, its field names turned into option names. */
function serverRules(config: Config): string | null {
  const limits = componentOptions(config, 'server').limits as Record<string, number>;
  const r = resolveServerOptions({ port: 0, limits });
  if (r.ok) return null;
  let message = r.error.message;
  for (const o of optionTable) if (o.component === 'server') message = message.replace(new RegExp(`\\b${o.key.replace('.', '\\.')}\\b`, 'g'), `--${o.name}`);
  const setting = config.settings.find((s) => s.option.component === 'server' && s.option.key === r.error.field);
  return setting === undefined ? message : `${message} (--${setting.option.name} from ${sourceText(setting.source)}: ${String(setting.value)})`;
}

/** One setting's value (null: none). */
export function valueOf(config: Config, name: string): OptionValue | null {
  const s = config.settings.find((x) => x.option.name === name);
  if (s === undefined) throw new Error(`no option --${name} in the table`);
  return s.value;
}

/** The options object of one component: each set value at its key path (nested), none for null. */
export function componentOptions(config: Config, component: Component): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { option, value } of config.settings) {
    if (option.component !== component || value === null) continue;
    const parts = option.key.split('.');
    let node = out;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[parts[parts.length - 1]] = value;
  }
  return out;
}
