// The stations around the cluster core, composed for one node (docs/CLUSTER.md): the tick bus, the RPC
// server and router, and the update relay (owner and relaying sides), over one NATS connection, one
// engine and the node's ownership view. The node facade starts it after ownership and closes it before
// the engine; its methods are what the server calls in cluster mode (ingestTick(s), subscribe, snapshot,
// snapshotAt, queryEvents with a portfolio, lots), and its counters feed /metrics.

import type { NatsConnection } from '@nats-io/transport-node';
import { clusterReadings, type ClusterCounters, type ClusterReadings } from './counters.js';
import { RpcRouter, RpcServer, newRpcCounters, type RpcCounters, type RpcEngine, type RpcOptions } from './rpc.js';
import { TickBus, type TickBusEngine, type TickBusOptions } from './tickBus.js';
import type { OwnershipView } from './types.js';
import { UpdatePublisher, UpdateRelay, newRelayCounters, type RelayCounters, type RelayEngine, type RelayOptions } from './updateRelay.js';

export type EdgeEngine = TickBusEngine & RpcEngine & RelayEngine;

export interface EdgeOptions {
  ticks: Partial<TickBusOptions>;
  rpc: Partial<RpcOptions>;
  relay: Partial<RelayOptions>;
  log: (line: string) => void;
}

export interface EdgeCounters {
  rpc: RpcCounters;
  relay: RelayCounters;
}

export class EdgeStations {
  readonly counters: EdgeCounters = { rpc: newRpcCounters(), relay: newRelayCounters() };
  readonly ticks: TickBus;
  readonly rpcServer: RpcServer;
  readonly router: RpcRouter;
  readonly publisher: UpdatePublisher;
  readonly relay: UpdateRelay;

  constructor(nc: NatsConnection, engine: EdgeEngine, private readonly ownership: OwnershipView, options: Partial<EdgeOptions> = {}) {
    const log = options.log ?? (() => undefined);
    this.ticks = new TickBus(nc, engine, ownership, { log, ...options.ticks });
    this.publisher = new UpdatePublisher(nc, engine, ownership, this.counters.relay, { log, ...options.relay });
    this.rpcServer = new RpcServer(
      nc,
      engine,
      ownership,
      (id, partition, snapshot) => this.publisher.watch(id, partition, snapshot),
      this.counters.rpc,
      { log, ...options.rpc },
    );
    this.router = new RpcRouter(nc, ownership, this.rpcServer, this.counters.rpc, { log, ...options.rpc });
    this.relay = new UpdateRelay(nc, engine, ownership, this.router, this.counters.relay, { log, ...options.relay });
  }

  /** The node's cluster readings with these stations' own counts added (refused input, relayed updates). */
  readings(cluster: ClusterCounters): ClusterReadings {
    const r = clusterReadings(this.ownership, cluster);
    const { rpc, relay } = this.counters;
    return {
      ...r,
      badInput: { ...r.badInput, ticks: r.badInput.ticks + this.ticks.counters.badFrames, updates: r.badInput.updates + relay.badMessages, rpc: r.badInput.rpc + rpc.badRequests },
      updatesRelayed: r.updatesRelayed + relay.recordsRelayed,
    };
  }

  start(): void {
    this.rpcServer.start();
    this.publisher.start();
    this.relay.start();
    this.ticks.start();
  }

  async close(): Promise<void> {
    await this.ticks.close();
    this.relay.close();
    this.publisher.close();
    this.rpcServer.close();
  }
}
