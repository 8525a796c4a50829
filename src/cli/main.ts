#!/usr/bin/env node
// `mtm serve`: the engine on the network, with the embedded demo when asked. Clean shutdown on
// SIGINT/SIGTERM: stop accepting, flush, snapshot, close workers, exit 0.

import { startEngine } from '../engine/engine.js';
import { showProgress } from './progress.js';
import { startMarketService } from '../market/service.js';
import { startServer } from '../server/server.js';
import { loadUws } from '../server/uws.js';
import { startObservability } from '../server/observability.js';
import { demoDefaults, initialPrices, runDemo, seedDemoBook, type RunningDemo } from '../demo/demo.js';
import { seeded } from '../sim/random.js';
import type { EngineOptions } from '../engine/api.js';
import type { MarketServiceLimits } from '../market/service.js';
import type { ServerLimits, ServerOptions } from '../server/options.js';
import type { StoreLimits } from '../store/store.js';
import { componentOptions, resolveConfig, valueOf, type Config } from './config.js';
import { configText, helpText } from './help.js';
import { startStatsLine } from './statsLine.js';
import { parseImportArgs, runImport } from './import.js';
import { runCluster } from './clusterStatus.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../projectRoot.js';
import { ClusterNode, ClusterStartError, type ClusterOptions } from '../cluster/node.js';

/** The positions page built by web/build.mjs (npm run build:web); null when it was not built. */
function webDir(): string | null {
  const dir = join(projectRoot(), 'dist', 'web');
  return existsSync(join(dir, 'index.html')) ? dir : null;
}

/** The options objects of the table's components; the table's keys are checked against them in test/config.test.ts. */
interface Components {
  engine: EngineOptions;
  server: Pick<ServerOptions, 'host' | 'port' | 'keysFile' | 'insecure' | 'transport'> & { limits: ServerLimits };
  market: { alertsFile?: string; limits: MarketServiceLimits };
  /** null: single node (no --nats). */
  cluster: ClusterOptions | null;
  dataDir: string;
  demo: boolean;
  statsIntervalMs: number;
}

function components(config: Config): Components {
  const engine = componentOptions(config, 'engine') as EngineOptions;
  return {
    engine: { ...engine, store: componentOptions(config, 'store') as StoreLimits },
    server: componentOptions(config, 'server') as Components['server'],
    market: componentOptions(config, 'market') as Components['market'],
    cluster: valueOf(config, 'nats') === null ? null : (componentOptions(config, 'cluster') as unknown as ClusterOptions),
    dataDir: engine.dataDir as string,
    demo: valueOf(config, 'demo') === true,
    statsIntervalMs: valueOf(config, 'stats-interval-ms') as number,
  };
}

async function serve(config: Config): Promise<void> {
  const args = components(config);
  // Recovery runs while the server already answers /health, and /ready with 503 and the progress.
  const engine = await startEngine(args.engine);
  const recovered = engine.ready;
  recovered.catch(() => undefined);
  // Bars and market alerts from every tick the engine accepts; market data lives in <data>/market.
  const market = await startMarketService(engine, { ...args.market, dataDir: args.dataDir, now: () => Date.now(), log: (line) => console.log(line) }).catch(async (e: unknown) => {
    await engine.close();
    throw e;
  });
  // Cluster: commands from this node's clients go through the command stream; the partitions this
  // node owns are applied here (docs/CLUSTER.md). Claims start once recovery is done.
  let cluster: ClusterNode | null = null;
  if (args.cluster !== null) {
    if (args.demo) throw new Error('--demo runs a single node: it cannot be combined with --nats');
    cluster = await ClusterNode.start(engine, args.cluster).catch(async (e: unknown) => {
      await market.close();
      await engine.close();
      throw e instanceof ClusterStartError ? new Error(`mtm: ${e.message}`) : e;
    });
  }
  const staticDir = webDir();
  // With --demo the simulated feed is the only caller that hands ticks to the engine directly.
  const observability = startObservability(engine, { uwsBinary: loadUws().binary, directTicks: args.demo ? 'demo' : 'inproc' });
  const server = await startServer(cluster === null ? engine : cluster.routed(engine), {
    ...args.server,
    ...(staticDir === null ? {} : { staticDir }),
    ...observability.serverOptions,
    market,
    log: null,
    ready: () => engine.isReady,
    progress: () => engine.progress.view(),
  });
  observability.attachServer(server);
  if (cluster !== null) observability.metrics.attachCluster(cluster);
  await showProgress(engine.progress, recovered);
  await recovered;
  if (cluster !== null) console.log(`cluster: node ${cluster.ownership.nodeId} joined ${args.cluster?.nats ?? ''} (${cluster.ownership.partitions} partitions)`);
  console.log(`mtm listening on ${server.url} (uWS ${server.uwsBinary}, kernel ${engine.kernel}, ${engine.workers} worker${engine.workers === 1 ? '' : 's'}, data ${args.dataDir})`);
  console.log(staticDir === null ? 'positions page not built (npm run build:web): only the API is served' : `positions page: ${server.url}/`);
  let demo: RunningDemo | null = null;
  if (args.demo) {
    const random = seeded(demoDefaults.seed);
    const prices = initialPrices(demoDefaults.symbols, random);
    await seedDemoBook(engine, demoDefaults, prices, random);
    demo = runDemo(engine, demoDefaults, prices, () => Date.now());
    console.log(`demo: ${demoDefaults.portfolios} portfolios x ${demoDefaults.positionsPerPortfolio} positions over ${demoDefaults.symbols} symbols, ~${demoDefaults.ticksPerSecond} ticks/s`);
    console.log(`open ${server.url}/ in a browser, or subscribe on ${server.url.replace('http', 'ws')}/ws`);
  }
  const stats = args.statsIntervalMs > 0 ? startStatsLine(engine, args.statsIntervalMs) : { stop: () => {} };
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: shutting down`);
    demo?.stop();
    stats.stop();
    await server.close();
    // Before the engine: the partitions are released (others take them at once) and no command is applied after.
    await cluster?.stop();
    // Before the engine: the metrics sampler asks the shard workers for their registries.
    observability.close();
    // Before the engine: its last tape is aggregated and the open bars are checkpointed.
    await market.close();
    await engine.close();
    console.log('stopped cleanly');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(helpText());
    return command === undefined ? 1 : 0;
  }
  if (command === 'import') {
    const parsed = parseImportArgs(rest);
    if (!parsed.ok) {
      console.error(parsed.message);
      return 2;
    }
    return runImport(parsed.args);
  }
  if (command === 'cluster') return runCluster(rest);
  if (command !== 'serve' && command !== 'config') {
    console.error(`unknown command '${command}'\n\n${helpText()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(helpText());
    return 0;
  }
  const resolved = resolveConfig({ argv: rest, env: process.env });
  if (!resolved.ok) {
    console.error(resolved.message);
    return 2;
  }
  if (command === 'serve') for (const w of resolved.config.warnings) console.error(`mtm: warning: ${w}`);
  if (command === 'config') {
    console.log(configText(resolved.config));
    return 0;
  }
  await serve(resolved.config);
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
