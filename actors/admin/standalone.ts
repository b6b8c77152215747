import { hostname } from 'node:os';
import { join } from 'node:path';
import { clusterManagerSpec } from '../cluster-manager/cluster-manager.js';
import { logStoreSpec } from '../cluster-manager/log-store.js';
import { ClusterState } from '../cluster-manager/state.js';
import { StateStore } from '../cluster-manager/store.js';
import { gatewaySpecs } from '../gateway/gateway.js';
import { LazyDockerRuntime, probeDocker } from '../node-manager/lazy-docker.js';
import { detectGpus, detectsGpus, parseGpuList } from '../node-manager/gpus.js';
import { nodeManagerSpec } from '../node-manager/node-manager.js';
import type { ClusterInfo } from './admin.js';
import { hostCluster, waitForNodes, type HostedCluster } from './cluster-host.js';

export interface StandaloneOptions {
  home: string;
  gpus?: string;
  stateDir?: string;
  natsUrl?: string;
  listen?: { host: string; port: number };
  hostJobs: boolean;
  cluster?: string;
  /** Node name (default: this host's name). */
  nodeName?: string;
  /** Install SIGINT/SIGTERM handlers (default true). */
  signals?: boolean;
  nodeTimeoutMs?: number;
  killGraceMs?: number;
  /** How long an AM has to give GPUs back when asked to shrink. */
  shrinkDeadlineMs?: number;
  /** How long a sign-in lasts (default 30 days). */
  tokenTtlMs?: number;
}

export type StandaloneInfo = ClusterInfo;
export type Standalone = HostedCluster;

/** This host's name as a node name (subject-safe). */
export function hostNodeName(): string {
  return hostname().replace(/[^A-Za-z0-9_-]/g, '-') || 'node';
}

/** A whole cluster in this process: embedded nats-server, gateway, cluster manager, one node manager. */
export async function runStandalone(o: StandaloneOptions): Promise<Standalone> {
  const gpus = o.gpus ? parseGpuList(o.gpus) : detectGpus();
  const nodeName = o.nodeName ?? hostNodeName();
  return hostCluster(
    { mode: 'standalone', home: o.home, stateDir: o.stateDir, natsUrl: o.natsUrl, cluster: o.cluster, signals: o.signals, listen: o.listen },
    {
      async start({ system, cluster, stateDir, rootHash, log, cliSocket }) {
        const nodeDir = join(stateDir, 'nodes', nodeName);
        const docker = (await probeDocker())
          ? new LazyDockerRuntime({ node: nodeName, deviceRequests: !o.gpus && gpus.length > 0, owner: nodeDir })
          : undefined;
        // In memory unless --state-dir was given (then it outlives a restart, as a pseudocluster's).
        const store = o.stateDir ? await StateStore.open(system.nc, cluster) : undefined;
        const state = ClusterState.withRoot(rootHash, store, await store?.load());
        await system.spawn(clusterManagerSpec({ cluster, state, nodeTimeoutMs: o.nodeTimeoutMs, killGraceMs: o.killGraceMs, shrinkDeadlineMs: o.shrinkDeadlineMs }));
        await system.spawn(logStoreSpec({ cluster, persist: o.stateDir ? { nc: system.nc } : undefined }));
        for (const g of gatewaySpecs({ cluster, tokenTtlMs: o.tokenTtlMs })) await system.spawn(g);
        await system.spawn(nodeManagerSpec({ cluster, name: nodeName, gpus, hostJobs: o.hostJobs, docker, stateDir: nodeDir, apiSocket: cliSocket, gpusDetected: detectsGpus(o.gpus) }));
        await waitForNodes(system, cluster, [nodeName]);
        log.info({ gpus, node: nodeName, docker: !!docker }, 'node ready');
      },
      // The actors stop with the host's actor system.
      async stop() {},
    },
  );
}
