// Proves the source tree's imports run one way: no import circle among the TypeScript files of src/,
// actors/ and dashboards/src (type-only imports and import('...') types count: a circle of types is
// still a circle a newcomer must untangle), and none of the upward arrows below. The walk is
// test/support/moduleGraph.ts; its own checks come first so a broken walk cannot pass vacuously.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importCircles, moduleGraph, type ModuleGraph } from './support/moduleGraph.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const graph = moduleGraph(root, ['src', 'actors', 'dashboards/src']);

/** Arrows that would point up the flow of ARCHITECTURE.md ("Never does"): `from` may import none of `to`. */
const forbidden: readonly { from: string; to: readonly string[]; why: string }[] = [
  {
    from: 'src/domain/',
    to: ['src/engine/', 'src/server/', 'src/store/', 'src/shard/', 'src/market/', 'src/metrics/', 'src/kernel/', 'src/client/', 'src/cli/', 'actors/', 'dashboards/'],
    why: 'the domain is vocabulary and pure accounting, below everything',
  },
  { from: 'actors/', to: ['src/engine/', 'src/server/', 'src/store/', 'src/metrics/', 'src/cli/'], why: 'actors see commands only, inside a shard' },
  { from: 'src/kernel/', to: ['src/engine/', 'src/server/', 'src/store/', 'src/shard/', 'src/cli/'], why: 'the kernel only computes over its columns' },
  { from: 'src/shard/', to: ['src/store/', 'src/server/', 'src/client/', 'src/cli/'], why: 'a shard never touches LMDB or sockets; it encodes with the shared wire protocol (src/protocol/)' },
  { from: 'src/store/', to: ['src/engine/', 'src/server/', 'src/shard/', 'src/metrics/', 'src/market/', 'src/cli/'], why: 'the store knows no workers or sockets; the engine uses it' },
  { from: 'src/market/', to: ['src/engine/', 'src/server/', 'src/cli/'], why: 'market data is fed by the engine and served by the server' },
  { from: 'src/engine/', to: ['src/server/', 'src/client/', 'src/cli/', 'src/demo/', 'src/cluster/'], why: 'the server embeds the engine, not the reverse; the wire layout comes from src/protocol/, not the SDK' },
  { from: 'src/metrics/', to: ['src/server/', 'src/cli/', 'dashboards/'], why: 'metrics read counters; the server serves them' },
  { from: 'src/server/', to: ['dashboards/', 'src/cli/'], why: 'thresholds shared with the alert rules live below both (src/metrics/)' },
  { from: 'src/server/', to: ['src/client/'], why: 'the server takes its wire protocol (messages, binary and delta layouts, the view a delta applies to) from src/protocol/, shared with the SDK, never from the SDK' },
  { from: 'dashboards/', to: ['src/server/', 'src/engine/', 'src/cli/'], why: 'dashboards are generated from the metric catalog' },
  { from: 'src/client/', to: ['src/engine/', 'src/store/', 'src/shard/', 'src/server/', 'src/metrics/', 'src/cli/'], why: 'the SDK talks to the server over the wire only' },
  { from: 'src/workers/', to: ['src/engine/', 'src/server/', 'src/store/', 'src/market/', 'src/shard/', 'src/cli/'], why: 'the supervision pattern knows no particular worker' },
  { from: 'src/cluster/', to: ['src/server/', 'src/client/', 'src/cli/', 'src/demo/', 'dashboards/'], why: 'a cluster node wraps one engine and talks NATS; the server embeds it, not the reverse' },
  { from: 'src/protocol/', to: ['src/server/', 'src/engine/', 'src/store/', 'src/client/', 'src/cli/'], why: 'the wire protocol sits below the server and the SDK that share it' },
];

function upwardArrows(g: ModuleGraph): string[] {
  const out: string[] = [];
  for (const [file, targets] of g) {
    for (const rule of forbidden) {
      if (!file.startsWith(rule.from)) continue;
      for (const t of targets) if (rule.to.some((up) => t.startsWith(up))) out.push(`${file} -> ${t} (${rule.why})`);
    }
  }
  return out;
}

describe('the module graph walk', () => {
  it('sees every kind of import the sources use', () => {
    expect(graph.size).toBeGreaterThan(100);
    // A value import, a type-only import, a re-export and an import('...') type, one of each.
    expect(graph.get('src/engine/engine.ts')).toContain('src/store/store.ts');
    expect(graph.get('src/engine/api.ts')).toContain('src/store/store.ts');
    expect(graph.get('src/store/store.ts')).toContain('src/store/limits.ts');
    expect(graph.get('src/server/index.ts')).toContain('src/server/server.ts');
    expect(graph.get('src/metrics/engineMetrics.ts')).toContain('src/market/alertRules.ts');
  });

  it('finds a circle, and none in a graph without one', () => {
    const circle: ModuleGraph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts', 'd.ts']],
      ['d.ts', []],
    ]);
    expect(importCircles(circle)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
    const tree: ModuleGraph = new Map([
      ['a.ts', ['b.ts', 'c.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', []],
    ]);
    expect(importCircles(tree)).toEqual([]);
  });

  it('names an upward arrow with its rule', () => {
    const g: ModuleGraph = new Map([['src/metrics/x.ts', ['src/server/y.ts']]]);
    expect(upwardArrows(g)).toEqual(['src/metrics/x.ts -> src/server/y.ts (metrics read counters; the server serves them)']);
  });
});

describe('imports run one way', () => {
  it('has no import circle in src/, actors/ or dashboards/src', () => {
    expect(importCircles(graph).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('has no upward arrow', () => {
    expect(upwardArrows(graph)).toEqual([]);
  });
});
