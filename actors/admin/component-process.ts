/**
 * One component of a pseudocluster as its own OS process:
 *   node component-process.js '<ComponentSpec as JSON>'
 * with CRANE_ROOT_HASH in the environment for the cluster manager (not on the command line, which
 * every local user can read). It connects to the bus, spawns its actors, and drains on SIGTERM.
 */
import { ActorSystem, type ActorSpec } from '../../bus/actor.js';
import { connectBus } from '../../bus/connect.js';
import { rootLogger } from '../../bus/logger.js';
import { subjects } from '../../bus/subjects.js';
import { clusterManagerSpec } from '../cluster-manager/cluster-manager.js';
import { logStoreSpec } from '../cluster-manager/log-store.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadClusterState } from '../cluster-manager/store.js';
import { gatewaySpecs } from '../gateway/gateway.js';
import { DockerRuntime } from '../node-manager/docker-runtime.js';
import { nodeManagerSpec } from '../node-manager/node-manager.js';

export type ComponentSpec = { busUrl: string; cluster: string } & (
  | { role: 'cluster-manager'; nodeTimeoutMs?: number; killGraceMs?: number }
  | { role: 'gateway'; tokenTtlMs?: number }
  | { role: 'node'; name: string; gpus: number[]; hostJobs: boolean; stateDir: string }
);

async function specsFor(c: ComponentSpec, nc: NatsConnection): Promise<ActorSpec[]> {
  switch (c.role) {
    case 'cluster-manager': {
      const rootHash = process.env.CRANE_ROOT_HASH;
      if (!rootHash) throw new Error('CRANE_ROOT_HASH is not set');
      const state = await loadClusterState(nc, c.cluster, rootHash);
      return [clusterManagerSpec({ cluster: c.cluster, state, nodeTimeoutMs: c.nodeTimeoutMs, killGraceMs: c.killGraceMs }), logStoreSpec({ cluster: c.cluster, persist: { nc } })];
    }
    case 'gateway':
      return gatewaySpecs({ cluster: c.cluster, tokenTtlMs: c.tokenTtlMs });
    case 'node': {
      const docker = (await DockerRuntime.probe()) ? new DockerRuntime({ node: c.name, deviceRequests: false, owner: c.stateDir }) : undefined;
      return [nodeManagerSpec({ cluster: c.cluster, name: c.name, gpus: c.gpus, hostJobs: c.hostJobs, docker, stateDir: c.stateDir })];
    }
  }
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? '') as ComponentSpec;
  const name = c.role === 'node' ? `node.${c.name}` : c.role;
  const log = rootLogger().child({ actor: `process.${name}` });
  const nc = await connectBus(c.busUrl, `crane-${name}`, subjects(c.cluster).inbox);
  const system = new ActorSystem(nc, name);
  for (const spec of await specsFor(c, nc)) await system.spawn(spec);
  log.info({ pid: process.pid }, 'component running');
  const stop = async () => {
    log.info('stopping');
    await system.stop().catch((err) => log.warn({ err: String(err) }, 'actor stop failed'));
    await nc.drain().catch(() => {});
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  // If the pseudocluster process dies without stopping us, do not linger as an orphan.
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && void stop(), 1_000).unref();
}

main().catch((err) => {
  process.stderr.write(`component failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
