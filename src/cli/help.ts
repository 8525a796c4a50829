// What the operator reads: `mtm --help` (every option of the table with its environment variable,
// default and unit) and `mtm config` (the effective value of every option and where it came from).

import { sourceText, configEnv, type Config } from './config.js';
import { defaultShown, envName, optionTable, type Component, type OptionEntry } from './options.js';

const sections: readonly { component: Component; title: string }[] = [
  { component: 'server', title: 'Server (network, security, per-connection limits)' },
  { component: 'engine', title: 'Engine (shards, marks, engine limits)' },
  { component: 'store', title: 'Store (LMDB event log, snapshots, prices)' },
  { component: 'market', title: 'Market data (bars, gaps, market alerts)' },
  { component: 'cluster', title: 'Cluster (NATS JetStream, docs/CLUSTER.md)' },
  { component: 'cli', title: 'Command line' },
];

function valueHint(o: OptionEntry): string {
  switch (o.kind.type) {
    case 'bool':
      return '';
    case 'enum':
      return ` <${o.kind.values.join('|')}>`;
    case 'path':
      return ' <file>';
    case 'string':
      return ' <text>';
    default:
      return o.unit === 'ms' || o.unit === 'bytes' || o.unit === 's' || o.unit === 'MB' ? ` <${o.unit}>` : ' <n>';
  }
}

function optionLines(o: OptionEntry): string[] {
  return [`  --${o.name}${valueHint(o)}`.padEnd(48) + ` ${envName(o.name)}`, `      ${o.help} (default: ${defaultShown(o)})`];
}

export function helpText(): string {
  return [
    'mtm: real-time mark-to-market engine',
    '',
    'Usage: mtm serve [--config FILE] [options]   run the engine, its HTTP/WebSocket server and market data',
    '       mtm config [--config FILE] [options]  print the effective configuration and where each value came from',
    '       mtm import FILE --url URL [--key KEY] [--format ndjson|csv]  bulk trades (NDJSON, or CSV with a header row)',
    '       mtm cluster status --nats URL [--wait-ms N]  a cluster\'s nodes, the partitions each owns and their lag',
    '       mtm --help | mtm serve --help',
    '',
    'Each option is a flag (--name value, --name=value; a switch alone means on), an environment variable',
    `(shown after it) and a key of the JSON config file (--config FILE or ${configEnv}; e.g. {"port": 8080,`,
    '"data": "./data"}; relative paths in it are resolved against its directory).',
    'Precedence: flag > environment > config file > default. Unknown flags and keys and bad values are',
    'refused at start, naming the option and the rule.',
    ...sections.flatMap(({ component, title }) => ['', `${title}:`, ...optionTable.filter((o) => o.component === component).flatMap(optionLines)]),
    '',
    'npm start runs `mtm serve --demo`.',
  ].join('\n');
}

/** `mtm config`: one line per option, name, value and source, in aligned columns. */
export function configText(config: Config): string {
  const shown = (s: Config['settings'][number]) => (s.value === null ? defaultShown(s.option) : s.option.unit === '' ? String(s.value) : `${String(s.value)} ${s.option.unit}`);
  const rows = config.settings.map((s) => [s.option.name, shown(s), sourceText(s.source)] as const);
  const width0 = Math.max(...rows.map((r) => r[0].length));
  const width1 = Math.max(...rows.map((r) => r[1].length));
  return [
    `# effective configuration${config.file === null ? ' (no config file)' : ` (config file ${config.file})`}; precedence: flag > env > file > default`,
    ...config.warnings.map((w) => `# warning: ${w}`),
    ...rows.map(([name, value, source]) => `${name.padEnd(width0)}  ${value.padEnd(width1)}  ${source}`),
  ].join('\n');
}
