// Fixed-rate steps on one system, for diagnosing the streaming harness: the feed at each given rate
// for stepMs (the first second not measured), reported as the max scenario measures a step (latency,
// its split at the server's stamp, updates/s, server and load-generator CPU, the subscribers' longest
// event-loop stall), no ramp and no judging. --dist runs another build's harness and systems (e.g. a
// baseline built in another worktree) so two builds are compared side by side in one sitting.
// Run: node dist/bench/rateSteps.js [--system limit|mtm|peer] [--rates 1000,10000] [--step-ms 3000] [--workload W2|W1] [--dist DIR]
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const dist = resolve(arg('--dist', new URL('..', import.meta.url).pathname));
const system = arg('--system', 'limit');
const rates = arg('--rates', '10,100,1000,10000,100000').split(',').map(Number).filter((r) => r > 0);
const stepMs = Math.max(2_000, Number(arg('--step-ms', '3000')));
const settleMs = 1_000;
const workloadName = arg('--workload', 'W2');

// Everything from the chosen build's dist, so a baseline runs with its own harness and servers.
const load = (rel: string) => import(pathToFileURL(`${dist}/bench/${rel}`).href);
const { StreamRun } = await load('scenarios/stream.js');
const { startSystem } = await load('scenarios/systems.js');
const { fullScale } = await load('scenarios/config.js');
const { nowMs } = await load('loadgen/common.js');
const { installCleanup, killAll, makeTempDir, removeTempDir } = await load('scenarios/children.js');

installCleanup(() => {});
const scale = fullScale();
const setup = scale.streams[workloadName];
if (setup === undefined) throw new Error(`unknown workload ${workloadName}`);
const dataDir = system === 'mtm' ? makeTempDir('mtm-bench-steps-') : undefined;
const load0 = loadavg()[0];
try {
  const sys = await startSystem(system, { workload: setup.workload, dataDir, readyTimeoutMs: scale.serverReadyTimeoutMs });
  const run = new StreamRun(sys, setup);
  await run.start();
  // The max scenario's warm-up: every popular symbol seen once, code paths compiled.
  run.setRate(scale.max.warmupRate);
  await run.hold(scale.max.warmupMs);
  await run.drain();
  for (const rate of rates) {
    run.setRate(rate);
    const start = nowMs();
    await run.hold(stepMs);
    await run.settled(start + stepMs);
    const st = run.phase(start + settleMs, start + stepMs, rate);
    console.log(
      JSON.stringify({
        system,
        dist,
        rate,
        load: Math.round(loadavg()[0] * 100) / 100,
        ticksSentPerSecond: st.ticksSentPerSecond,
        updatesPerSecond: st.updatesPerSecond,
        latency: st.latency,
        hops: st.hops,
        clientLoopDelayMaxMs: st.clientLoopDelayMaxMs,
        serverCpuCores: st.serverCpuCores,
        clientCpuMaxCores: st.clientCpuMaxCores,
        publisherCpuMaxCores: st.publisherCpuMaxCores,
        updatesLost: st.updatesLost,
        tickLoss: st.tickLoss,
        loadgenBound: st.loadgenBound,
      }),
    );
  }
  await run.drain();
  await run.finish();
  await sys.stop(1_000);
} finally {
  if (dataDir !== undefined) removeTempDir(dataDir);
  killAll();
}
console.error(`load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`);
process.exit(0);
