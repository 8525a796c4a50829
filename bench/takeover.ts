// `npm run bench:takeover -- [--portfolios N] [--positions K] [--partitions P] [--workers W]`: how long
// a node takes to rebuild partitions it never held from their shipped snapshots (docs/CLUSTER.md,
// "Take-over"). One nats-server -js (test/support/nats.ts), two engines in this process on loopback:
// node A owns every partition, N portfolios with K positions each are created and traded through the
// command stream, A ships every partition and stops cleanly (releasing them); node B, with an empty
// data directory, starts and claims them: each take reads the object (bounded), loads the books into
// the running shards and writes them with the stream cursor as one store generation. Reported: per
// partition the read+load+write time from the node's log, and start -> every partition owned.
// Prints one JSON line with the load average before and after (the machine is shared: quote both).

import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createEngine } from '../src/engine/engine.js';
import { ClusterNode } from '../src/cluster/node.js';
import { NatsHarness, natsServerInstalled, waitUntil } from '../test/support/nats.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be an integer >= 1`);
  return v;
}

const portfolios = arg('portfolios', 1_000);
const positions = arg('positions', 4);
const partitions = arg('partitions', 4);
const workers = arg('workers', 2);
/** Commands in flight while setting up (each waits for its owner's answer through the stream). */
const setupInFlightMax = 32;

async function main(): Promise<void> {
  if (!natsServerInstalled) throw new Error('nats-server is not installed (apt-get install nats-server)');
  const load0 = loadavg().map((x) => Number(x.toFixed(2)));
  const harness = new NatsHarness('bench-takeover');
  const nats = await harness.startServer();
  const cluster = { nats: nats.url, partitions, heartbeatMs: 200, ownerTimeoutMs: 1_500, snapshotShipIntervalMs: 0, log: () => undefined };
  try {
    const engineA = await createEngine({ workers, snapshotIntervalMs: 3_600_000 });
    const a = await ClusterNode.start(engineA, { ...cluster, nodeId: 'bench-a' });
    await waitUntil('bench-a owns every partition', () => a.stats().owned === partitions, 30_000);
    const api = a.routed(engineA);
    const setupStarted = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < portfolios; i = next++) {
        const id = `tk-${i}`;
        const created = await api.createPortfolio({ id, cash: 1_000_000 });
        if (!created.ok) throw new Error(`${id}: ${created.error.message}`);
        for (let k = 0; k < positions; k++) {
          const r = await api.trade(id, { trade_id: `t-${i}-${k}`, symbol: `S${String((i + k) % 50).padStart(3, '0')}`, side: 'buy', quantity: 1 + ((i * 7 + k) % 90), price: 10 + ((i + 3 * k) % 400) / 4 });
          if (!r.ok) throw new Error(`${id} trade ${k}: ${r.error.message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: setupInFlightMax }, worker));
    const setupMs = performance.now() - setupStarted;
    await a.shipOwned();
    const shippedBytes = a.shipper.counts.bytes;
    await a.stop();
    await engineA.close();

    const lines: string[] = [];
    const engineB = await createEngine({ workers, snapshotIntervalMs: 3_600_000 });
    const started = performance.now();
    const b = await ClusterNode.start(engineB, { ...cluster, nodeId: 'bench-b', log: (l) => lines.push(l) });
    await waitUntil('bench-b owns every partition', () => b.stats().owned === partitions, 60_000);
    const ownedMs = performance.now() - started;
    const loads = lines.flatMap((l) => {
      const m = /partition (\d+) .*from the shipped snapshot at stream seq \d+ \((\d+) portfolios loaded in ([\d.]+) ms\)/.exec(l);
      return m === null ? [] : [{ partition: Number(m[1]), portfolios: Number(m[2]), ms: Number(m[3]) }];
    });
    const loaded = engineB.stats().portfolios;
    await b.stop();
    await engineB.close();
    if (loaded !== portfolios) throw new Error(`bench-b holds ${loaded} portfolios, expected ${portfolios}`);
    console.log(
      JSON.stringify({
        scenario: 'takeover',
        portfolios,
        positionsPerPortfolio: positions,
        partitions,
        workers,
        setupMs: Number(setupMs.toFixed(1)),
        shippedBytes,
        takeoverPerPartition: loads,
        startToEveryPartitionOwnedMs: Number(ownedMs.toFixed(1)),
        loadavgBefore: load0,
        loadavgAfter: loadavg().map((x) => Number(x.toFixed(2))),
      }),
    );
  } finally {
    await harness.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
