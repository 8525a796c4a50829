// `mtm cluster status --nats URL [--wait-ms N]`: prints the cluster's nodes, the partitions each owns
// and their command-stream lag (src/cluster/status.ts). --nats falls back on MTM_NATS, like `mtm serve`.
// Exit 0 when it printed a status, 1 when NATS is unreachable, 2 on bad arguments.

import { connect } from '@nats-io/transport-node';
import { formatClusterStatus, readClusterStatus } from '../cluster/status.js';

/** How long the nodes' answers are collected, unless --wait-ms says otherwise. */
export const statusWaitMsDefault = 1_000;
const connectTimeoutMs = 5_000;

export const clusterUsage = 'usage: mtm cluster status --nats URL[,URL...] [--wait-ms N]   (or MTM_NATS=URL)';

export async function runCluster(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (args[0] !== 'status') {
    console.error(`mtm cluster: unknown subcommand ${JSON.stringify(args[0] ?? '')}\n${clusterUsage}`);
    return 2;
  }
  let nats = env.MTM_NATS;
  let waitMs = statusWaitMsDefault;
  for (let i = 1; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    const value = inline ?? args[++i];
    if (flag === '--nats' && value !== undefined && value !== '') nats = value;
    else if (flag === '--wait-ms' && value !== undefined && /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 60_000) waitMs = Number(value);
    else {
      console.error(`mtm cluster status: ${flag === '--wait-ms' ? `--wait-ms must be a whole number of ms in 1..60000, got ${JSON.stringify(value)}` : `unknown or incomplete option ${JSON.stringify(args[i - (inline === undefined ? 1 : 0)] ?? flag)}`}\n${clusterUsage}`);
      return 2;
    }
  }
  if (nats === undefined || nats === '') {
    console.error(`mtm cluster status: --nats is required\n${clusterUsage}`);
    return 2;
  }
  let nc;
  try {
    nc = await connect({ servers: nats.split(','), timeout: connectTimeoutMs, maxReconnectAttempts: 0, name: 'mtm-cluster-status' });
  } catch (e) {
    console.error(`mtm cluster status: cannot connect to NATS at ${nats}: ${(e as Error).message}`);
    return 1;
  }
  try {
    process.stdout.write(formatClusterStatus(await readClusterStatus(nc, waitMs)));
    return 0;
  } finally {
    await nc.close();
  }
}
