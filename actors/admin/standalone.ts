import { hostname } from 'node:os';
import { join } from 'node:path';
import { ActorSystem } from '../../bus/actor.js';
import { SocketBridge } from '../../bus/bridge.js';
import { connectBus } from '../../bus/connect.js';
import { rootLogger } from '../../bus/logger.js';
import { EmbeddedNats } from '../../bus/nats-server.js';
import { subjects } from '../../bus/subjects.js';
import { clusterManagerSpec } from '../cluster-manager/cluster-manager.js';
import { logStoreSpec } from '../cluster-manager/log-store.js';
import { ClusterState } from '../cluster-manager/state.js';
import { gatewaySpecs, userRoutes } from '../gateway/gateway.js';
import { hashPassword } from '../gateway/password.js';
import { DockerRuntime } from '../node-manager/docker-runtime.js';
import { detectGpus, parseGpuList } from '../node-manager/gpus.js';
import { nodeManagerSpec } from '../node-manager/node-manager.js';
import { CRANE_VERSION } from '../protocol.js';
import { adminRoutes, adminSpec, type ClusterInfo } from './admin.js';
import { homeLayout, prepareHome, removeQuietly, rootPassword, socketAnswers, writeInfo } from './local-cluster.js';

export interface StandaloneOptions {
  home: string;
  gpus?: string;
  stateDir?: string;
  natsUrl?: string;
  hostJobs: boolean;
  cluster?: string;
  /** Node name (default: this host's name). */
  nodeName?: string;
  /** Install SIGINT/SIGTERM handlers (default true). */
  signals?: boolean;
  nodeTimeoutMs?: number;
  killGraceMs?: number;
  /** How long a sign-in lasts (default 30 days). */
  tokenTtlMs?: number;
}

export type StandaloneInfo = ClusterInfo;

export interface Standalone {
  info: StandaloneInfo;
  stopped: Promise<void>;
  stop(): Promise<void>;
}

/** A whole cluster in this process: embedded nats-server, gateway, cluster manager, one node manager. */
export async function runStandalone(o: StandaloneOptions): Promise<Standalone> {
  const log = rootLogger().child({ actor: 'standalone' });
  const files = homeLayout(o.home);
  prepareHome(o.home);
  if (await socketAnswers(files.admSocket)) {
    throw new Error(`a cluster is already running in ${o.home} (craneadm status; craneadm stop)`);
  }
  const gpus = o.gpus ? parseGpuList(o.gpus) : detectGpus();
  const cluster = o.cluster ?? 'local';
  const nodeName = o.nodeName ?? (hostname().replace(/[^A-Za-z0-9_-]/g, '-') || 'node');

  const nats = o.natsUrl ? undefined : new EmbeddedNats({ stateDir: o.stateDir ?? files.state });
  const busUrl = o.natsUrl ?? (await nats!.start());
  const nc = await connectBus(busUrl, `crane-standalone-${cluster}`, subjects(cluster).inbox).catch(async (err) => {
    await nats?.stop();
    throw new Error(`cannot connect to the bus at ${busUrl}: ${err.message}`);
  });
  const system = new ActorSystem(nc, 'standalone');
  const state = new ClusterState();
  const rootPw = rootPassword(files.rootPassword);
  state.users.set('root', { id: '00000000-0000-0000-0000-000000000000', username: 'root', isAdmin: true, hash: await hashPassword(rootPw) });

  const info: StandaloneInfo = {
    mode: 'standalone',
    cluster,
    busUrl,
    pid: process.pid,
    home: o.home,
    sockets: { cli: files.cliSocket, adm: files.admSocket },
    startedAt: new Date().toISOString(),
    version: CRANE_VERSION,
  };

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let stopping: Promise<void> | undefined;
  const bridges: SocketBridge[] = [];
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping');
      for (const b of bridges) await b.close().catch(() => {});
      await system.stop().catch((err) => log.warn({ err: String(err) }, 'actor stop failed'));
      await nc.drain().catch(() => {});
      await nats?.stop();
      removeQuietly(files.cliSocket, files.admSocket, files.info);
      resolveStopped();
    })());

  try {
    const nodeDir = join(o.stateDir ?? files.state, 'nodes', nodeName);
    const docker = (await DockerRuntime.probe())
      ? new DockerRuntime({ node: nodeName, deviceRequests: !o.gpus && gpus.length > 0, owner: nodeDir })
      : undefined;
    await system.spawn(clusterManagerSpec({ cluster, state, nodeTimeoutMs: o.nodeTimeoutMs, killGraceMs: o.killGraceMs }));
    await system.spawn(logStoreSpec({ cluster }));
    for (const g of gatewaySpecs({ cluster, tokenTtlMs: o.tokenTtlMs })) await system.spawn(g);
    await system.spawn(adminSpec({ cluster, info: () => info, stop: () => void stop() }));
    await system.spawn(nodeManagerSpec({ cluster, name: nodeName, gpus, hostJobs: o.hostJobs, docker, stateDir: nodeDir }));
    await waitForNode(system, cluster, nodeName);

    const inbox = subjects(cluster).inbox;
    const cli = new SocketBridge(system, userRoutes(cluster), log.child({ actor: 'bridge.cli' }), inbox);
    const adm = new SocketBridge(system, adminRoutes(cluster), log.child({ actor: 'bridge.adm' }), inbox);
    bridges.push(cli, adm);
    await cli.listen({ socket: files.cliSocket, mode: 0o666 });
    await adm.listen({ socket: files.admSocket, mode: 0o600 });
    writeInfo(files.info, info);
  } catch (err) {
    await stop();
    throw err;
  }

  if (o.signals !== false) {
    const onSignal = () => void stop();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  log.info({ cluster, busUrl, gpus, node: nodeName, cli: files.cliSocket }, 'standalone cluster ready');
  return { info, stopped, stop };
}

/** Ready means the node manager has registered with the cluster manager. */
async function waitForNode(system: ActorSystem, cluster: string, node: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const { nodes } = await system.ask<{ nodes: { name: string }[] }>(subjects(cluster).cm('nodes'), 'nodes', {});
    if (nodes.some((n) => n.name === node)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`node ${node} did not register within 15 s`);
}
