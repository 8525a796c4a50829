// Command-line and MTM_* environment options for `mtm serve`. Flags win over the environment.

import { staleAfterMsDefault, suspectMovePctDefault } from '../engine/options.js';

export interface ServeArgs {
  host: string;
  port: number;
  data: string;
  workers: number | undefined;
  kernel: 'wasm' | 'js';
  keys: string | undefined;
  alerts: string | undefined;
  sync: boolean;
  demo: boolean;
  insecure: boolean;
  staleAfterMs: number;
  suspectMovePct: number;
  statsIntervalMs: number;
}

interface OptionSpec {
  /** The command-line name (--flag). */
  flag: string;
  /** The ServeArgs field it sets; the flag itself when omitted. */
  key?: keyof ServeArgs;
  env: string;
  kind: 'string' | 'int' | 'bool' | 'kernel' | 'ms' | 'pct';
  help: string;
}

const keyOf = (spec: OptionSpec): keyof ServeArgs => spec.key ?? (spec.flag as keyof ServeArgs);

export const optionSpecs: OptionSpec[] = [
  { flag: 'host', env: 'MTM_HOST', kind: 'string', help: 'interface to bind (default 127.0.0.1; non-loopback needs --keys or --insecure)' },
  { flag: 'port', env: 'MTM_PORT', kind: 'int', help: 'HTTP/WebSocket port (default 8080; 0 = any free port)' },
  { flag: 'data', env: 'MTM_DATA', kind: 'string', help: 'LMDB data directory (default ./data)' },
  { flag: 'workers', env: 'MTM_WORKERS', kind: 'int', help: 'shard worker threads (default: cores - 1, at least 1)' },
  { flag: 'kernel', env: 'MTM_KERNEL', kind: 'kernel', help: 'revaluation kernel: wasm (default) or js' },
  { flag: 'keys', env: 'MTM_KEYS', kind: 'string', help: 'API keys file (JSON); without it only loopback is served' },
  { flag: 'alerts', env: 'MTM_ALERTS', kind: 'string', help: 'market alert rules file (JSON); replaces the rules set by PUT /api/v1/market/alerts' },
  { flag: 'sync', env: 'MTM_SYNC', kind: 'bool', help: 'flush to disk before acknowledging trades (survives power loss)' },
  { flag: 'demo', env: 'MTM_DEMO', kind: 'bool', help: 'seed demo portfolios and run a simulated feed' },
  { flag: 'insecure', env: 'MTM_INSECURE', kind: 'bool', help: 'allow a non-loopback host without a keys file' },
  { flag: 'stale-after-ms', key: 'staleAfterMs', env: 'MTM_STALE_AFTER_MS', kind: 'ms', help: 'a mark older than this is reported stale (default 60000)' },
  {
    flag: 'suspect-move-pct',
    key: 'suspectMovePct',
    env: 'MTM_SUSPECT_MOVE_PCT',
    kind: 'pct',
    help: 'hold a tick moving its price more than this % until the next tick or an admin confirms it (default 50; 0 = off)',
  },
];

export const defaults: ServeArgs = {
  host: '127.0.0.1',
  port: 8080,
  data: './data',
  workers: undefined,
  kernel: 'wasm',
  keys: undefined,
  alerts: undefined,
  sync: false,
  demo: false,
  insecure: false,
  staleAfterMs: staleAfterMsDefault,
  suspectMovePct: suspectMovePctDefault,
  statsIntervalMs: 1000,
};

export type Parsed = { ok: true; args: ServeArgs } | { ok: false; message: string };

function convert(spec: OptionSpec, raw: string): string | number | boolean | Error {
  switch (spec.kind) {
    case 'int': {
      const n = Number(raw);
      return Number.isInteger(n) && n >= 0 && n <= 65535 * 16 ? n : new Error(`--${spec.flag} must be a whole number, got '${raw}'`);
    }
    case 'bool':
      return raw === '' || raw === '1' || raw === 'true';
    case 'kernel':
      return raw === 'wasm' || raw === 'js' ? raw : new Error(`--kernel must be wasm or js, got '${raw}'`);
    case 'ms': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      return Number.isSafeInteger(n) && n >= 0 ? n : new Error(`--${spec.flag} must be a whole number of milliseconds >= 0, got '${raw}'`);
    }
    case 'pct': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      return Number.isFinite(n) && n >= 0 ? n : new Error(`--${spec.flag} must be a number >= 0 (0 = off), got '${raw}'`);
    }
    default:
      return raw;
  }
}

export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv): Parsed {
  const args: Record<string, unknown> = { ...defaults };
  for (const spec of optionSpecs) {
    const raw = env[spec.env];
    if (raw === undefined) continue;
    const v = convert(spec, raw);
    if (v instanceof Error) return { ok: false, message: `${spec.env}: ${v.message}` };
    args[keyOf(spec)] = v;
  }
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].replace(/^--/, '').split('=', 2) as [string, string | undefined];
    const spec = optionSpecs.find((s) => s.flag === name);
    if (spec === undefined || !argv[i].startsWith('--')) return { ok: false, message: `unknown option '${argv[i]}' (see mtm --help)` };
    const raw = spec.kind === 'bool' ? (inline ?? '') : (inline ?? argv[++i]);
    if (raw === undefined) return { ok: false, message: `--${name} needs a value` };
    const v = convert(spec, raw);
    if (v instanceof Error) return { ok: false, message: v.message };
    args[keyOf(spec)] = v;
  }
  return { ok: true, args: args as unknown as ServeArgs };
}

export function helpText(): string {
  const lines = optionSpecs.map((s) => `  --${(s.flag + (s.kind === 'bool' ? '' : ' <value>')).padEnd(24)} ${s.env.padEnd(20)} ${s.help}`);
  return [
    'mtm: real-time mark-to-market engine',
    '',
    'Usage: mtm serve [options]',
    '       mtm import FILE --url URL [--key KEY] [--format ndjson|csv]   (bulk trades: NDJSON, or CSV with a header row)',
    '       mtm --help',
    '',
    'Options (flag, environment variable, meaning):',
    ...lines,
    '',
    'npm start runs `mtm serve --demo`.',
  ].join('\n');
}
