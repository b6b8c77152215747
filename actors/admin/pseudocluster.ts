import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterInfo } from './admin.js';
import { hostCluster, waitForGateway, waitForNodes, type HostedCluster } from './cluster-host.js';
import type { ComponentSpec } from './component-process.js';
import { ProcessSupervisor } from './process-supervisor.js';

export interface PseudoclusterOptions {
  home: string;
  nodes: number;
  gpusPerNode: number;
  stateDir?: string;
  natsUrl?: string;
  listen?: { host: string; port: number };
  hostJobs: boolean;
  cluster?: string;
  signals?: boolean;
  nodeTimeoutMs?: number;
  /** Cluster-manager candidates (default 1). */
  managers?: number;
  leaseTtlMs?: number;
  killGraceMs?: number;
  /** How long an AM has to give GPUs back when asked to shrink. */
  shrinkDeadlineMs?: number;
  tokenTtlMs?: number;
}

const ENTRY = join(dirname(fileURLToPath(import.meta.url)), 'component-process.js');

export const nodeNames = (n: number) => Array.from({ length: n }, (_, i) => `node-${i + 1}`);

/**
 * The gateway, the cluster manager and N node managers as separate OS processes on one embedded
 * bus; this process keeps the bus, the admin actor and the socket bridges, and restarts a
 * component process that dies. Process logs go to `$CRANE_HOME/logs/<process>.log`.
 */
export async function runPseudocluster(o: PseudoclusterOptions): Promise<HostedCluster> {
  let supervisor: ProcessSupervisor | undefined;
  return hostCluster(
    { mode: 'pseudocluster', home: o.home, stateDir: o.stateDir, natsUrl: o.natsUrl, cluster: o.cluster, signals: o.signals, listen: o.listen },
    {
      async start({ system, busUrl, cluster, stateDir, rootHash, log, cliSocket }) {
        const sup = (supervisor = new ProcessSupervisor(join(o.home, 'logs'), log));
        const run = (name: string, spec: ComponentSpec, env: NodeJS.ProcessEnv = {}) => sup.add(name, [ENTRY, JSON.stringify(spec)], env);
        // With --managers M > 1, M candidates: one holds the lease and is active, the others wait.
        const managers = o.managers ?? 1;
        for (let i = 1; i <= managers; i++) {
          const holder = managers === 1 ? 'cluster-manager' : `cluster-manager-${i}`;
          const cm: ComponentSpec = { role: 'cluster-manager', holder, busUrl, cluster, nodeTimeoutMs: o.nodeTimeoutMs, killGraceMs: o.killGraceMs, leaseTtlMs: o.leaseTtlMs, shrinkDeadlineMs: o.shrinkDeadlineMs };
          run(holder, cm, { CRANE_ROOT_HASH: rootHash });
        }
        run('gateway', { role: 'gateway', busUrl, cluster, tokenTtlMs: o.tokenTtlMs });
        const gpus = Array.from({ length: o.gpusPerNode }, (_, i) => i);
        for (const name of nodeNames(o.nodes)) {
          run(name, { role: 'node', busUrl, cluster, name, gpus, hostJobs: o.hostJobs, stateDir: join(stateDir, 'nodes', name), apiSocket: cliSocket });
        }
        // Starting N Node processes is CPU-bound (~0.3 s of CPU each): allow for it.
        await waitForNodes(system, cluster, nodeNames(o.nodes), 30_000 + o.nodes * 400);
        await waitForGateway(system, cluster);
      },
      async stop() {
        await supervisor?.stop();
      },
      info: (): Partial<ClusterInfo> => ({ processes: supervisor?.list() ?? [] }),
    },
  );
}
