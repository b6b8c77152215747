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
// Each role imports only its own code (below): a pseudocluster of 50 nodes starts 50 of these.

export type ComponentSpec = { busUrl: string; cluster: string } & (
  | { role: 'cluster-manager'; holder: string; nodeTimeoutMs?: number; killGraceMs?: number; leaseTtlMs?: number; shrinkDeadlineMs?: number; ha?: boolean; first?: boolean }
  | { role: 'gateway'; tokenTtlMs?: number }
  | { role: 'node'; name: string; gpus: number[]; hostJobs: boolean; stateDir: string; manager?: boolean; apiSocket?: string; gpusDetected?: boolean }
);

async function specsFor(c: ComponentSpec, system: ActorSystem, onStop: (() => Promise<void>)[]): Promise<ActorSpec[]> {
  switch (c.role) {
    case 'cluster-manager': {
      const rootHash = process.env.CRANE_ROOT_HASH;
      // Empty on a manager host that joined: root comes from the stored state.
      if (rootHash === undefined) throw new Error('CRANE_ROOT_HASH is not set');
      const log = rootLogger().child({ actor: `process.${c.holder}` });
      // Spawns the actors itself once it holds the lease (a standby waits here).
      const { runManagerCandidate } = await import('../cluster-manager/active-manager.js');
      const lease = await runManagerCandidate(system, { ...c, rootHash, log, onLost: () => process.exit(75) });
      onStop.push(() => lease.stop());
      return [];
    }
    case 'gateway': {
      const { gatewaySpecs } = await import('../gateway/gateway.js');
      return gatewaySpecs({ cluster: c.cluster, tokenTtlMs: c.tokenTtlMs });
    }
    case 'node': {
      const { nodeManagerSpec } = await import('../node-manager/node-manager.js');
      // dockerode is loaded only once a container runs (lazy-docker.ts): most nodes of a pseudocluster never do.
      const { LazyDockerRuntime, probeDocker } = await import('../node-manager/lazy-docker.js');
      // GPUs by device request only where they were detected (real GPUs), not declared.
      const docker = (await probeDocker()) ? new LazyDockerRuntime({ node: c.name, deviceRequests: !!c.gpusDetected, owner: c.stateDir }) : undefined;
      return [nodeManagerSpec({ cluster: c.cluster, name: c.name, gpus: c.gpus, hostJobs: c.hostJobs, docker, stateDir: c.stateDir, manager: c.manager, apiSocket: c.apiSocket, gpusDetected: c.gpusDetected })];
    }
  }
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? '') as ComponentSpec;
  const name = c.role === 'node' ? `node.${c.name}` : c.role === 'cluster-manager' ? c.holder : c.role;
  const log = rootLogger().child({ actor: `process.${name}` });
  const nc = await connectBus(c.busUrl, `crane-${name}`, subjects(c.cluster).inbox);
  const system = new ActorSystem(nc, name);
  const onStop: (() => Promise<void>)[] = [];
  const stop = async () => {
    log.info('stopping');
    for (const f of onStop) await f().catch(() => {});
    await system.stop().catch((err) => log.warn({ err: String(err) }, 'actor stop failed'));
    await nc.drain().catch(() => {});
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  // If the pseudocluster process dies without stopping us, do not linger as an orphan.
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && void stop(), 1_000).unref();
  for (const spec of await specsFor(c, system, onStop)) await system.spawn(spec);
  log.info({ pid: process.pid }, 'component running');
}

main().catch((err) => {
  process.stderr.write(`component failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
