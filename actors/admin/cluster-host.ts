/**
 * What every local cluster mode shares: CRANE_HOME, the embedded nats-server (or an existing bus),
 * the admin actor, the two socket bridges, cluster.json and an orderly stop. The mode supplies its
 * components: actors in this process (standalone) or child processes (pseudocluster).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { ActorSystem } from '../../bus/actor.js';
import { SocketBridge } from '../../bus/bridge.js';
import { connectBus, type BusAuth } from '../../bus/connect.js';
import { rootLogger } from '../../bus/logger.js';
import { EmbeddedNats } from '../../bus/nats-server.js';
import { subjects } from '../../bus/subjects.js';
import { userRoutes } from '../gateway/gateway.js';
import { hashPassword } from '../gateway/password.js';
import { CRANE_VERSION } from '../protocol.js';
import { adminRoutes, adminSpec, type AdminOptions, type ClusterInfo } from './admin.js';
import { homeLayout, prepareHome, removeQuietly, rootPassword, socketAnswers, writeInfo } from './local-cluster.js';

export interface HostOptions {
  mode: ClusterInfo['mode'];
  home: string;
  stateDir?: string;
  natsUrl?: string;
  cluster?: string;
  /** Install SIGINT/SIGTERM handlers (default true). */
  signals?: boolean;
  /** Also serve the user and admin API on TCP (bearer tokens required; admin routes need an admin). */
  listen?: { host: string; port: number };
  /** Sockets other than CRANE_HOME's (a member host serves the standard ones). */
  sockets?: { cli: string; adm: string };
  /** The nats-server configuration and bus credentials (a member host). */
  nats?: { config: string; auth: BusAuth; onLog?: (line: string) => void };
  /** A member host: admin subjects carry this name. */
  host?: string;
  /** What the admin actor does on `craneadm leave` (a member host). */
  leave?: AdminOptions['leave'];
  /** A member host's role and how it changes (`craneadm promote` / `demote`). */
  roles?: AdminOptions['roles'];
  moreStatus?: (nc: import('@nats-io/transport-node').NatsConnection) => Promise<Partial<ClusterInfo>>;
  /**
   * This host holds the cluster's root password (default true). Only the host that made the
   * cluster does: a host that joined gets an empty rootHash and writes no password file.
   */
  rootPassword?: boolean;
}

export interface HostContext {
  system: ActorSystem;
  busUrl: string;
  cluster: string;
  stateDir: string;
  /** scrypt hash of root's password (root-password in CRANE_HOME); '' on a host that joined. */
  rootHash: string;
  log: Logger;
  /** The user API socket this host serves: a job's AM reaches the cluster through it. */
  cliSocket: string;
}

export interface Components {
  /** Starts the components; resolves once the cluster can take requests. */
  start(ctx: HostContext): Promise<void>;
  /** Stops them (the bus is still up). */
  stop(): Promise<void>;
  /** What the mode adds to `craneadm status`. */
  info?(): Partial<ClusterInfo>;
}

export interface HostedCluster {
  info: ClusterInfo;
  stopped: Promise<void>;
  stop(): Promise<void>;
}

export async function hostCluster(o: HostOptions, components: Components): Promise<HostedCluster> {
  const log = rootLogger().child({ actor: o.mode });
  for (const sock of Object.values(o.sockets ?? {})) mkdirSync(dirname(sock), { recursive: true, mode: 0o755 });
  const files = { ...homeLayout(o.home), ...(o.sockets ? { cliSocket: o.sockets.cli, admSocket: o.sockets.adm } : {}) };
  prepareHome(o.home);
  if (await socketAnswers(files.admSocket)) {
    throw new Error(`a cluster is already running in ${o.home} (craneadm status; craneadm stop)`);
  }
  const cluster = o.cluster ?? 'local';
  const stateDir = o.stateDir ?? files.state;
  const nats = o.natsUrl ? undefined : new EmbeddedNats({ stateDir, config: o.nats?.config, onLog: o.nats?.onLog });
  const busUrl = o.natsUrl ?? (await nats!.start());
  const nc = await connectBus(busUrl, `crane-${o.mode}-${cluster}`, subjects(cluster).inbox, o.nats?.auth).catch(async (err) => {
    await nats?.stop();
    throw new Error(`cannot connect to the bus at ${busUrl}: ${err.message}`);
  });
  const system = new ActorSystem(nc, o.mode);
  const base: ClusterInfo = {
    mode: o.mode,
    cluster,
    busUrl,
    pid: process.pid,
    home: o.home,
    sockets: { cli: files.cliSocket, adm: files.admSocket },
    startedAt: new Date().toISOString(),
    version: CRANE_VERSION,
  };
  const info = (): ClusterInfo => ({ ...base, ...components.info?.() });

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let stopping: Promise<void> | undefined;
  const bridges: SocketBridge[] = [];
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping');
      await components.stop().catch((err) => log.warn({ err: String(err) }, 'stopping the components failed'));
      await system.stop().catch((err) => log.warn({ err: String(err) }, 'actor stop failed'));
      await nc.drain().catch(() => {});
      await nats?.stop();
      // The sockets go last: `craneadm stop` waits until they stop answering, so a new cluster
      // started right after never has its sockets removed by this one.
      removeQuietly(files.cliSocket, files.admSocket, files.info);
      for (const b of bridges) await b.close().catch(() => {});
      resolveStopped();
    })());

  try {
    const rootHash = o.rootPassword === false ? '' : await hashPassword(rootPassword(files.rootPassword));
    await components.start({ system, busUrl, cluster, stateDir, rootHash, log, cliSocket: files.cliSocket });
    const more = o.moreStatus;
    await system.spawn(adminSpec({ cluster, host: o.host, info, stop: () => void stop(), leave: o.leave, roles: o.roles, moreStatus: more && (() => more(nc)) }));
    const inbox = subjects(cluster).inbox;
    const cli = new SocketBridge(system, userRoutes(cluster), log.child({ actor: 'bridge.cli' }), inbox);
    const adm = new SocketBridge(system, adminRoutes(cluster, o.host), log.child({ actor: 'bridge.adm' }), inbox);
    bridges.push(cli, adm);
    await cli.listen({ socket: files.cliSocket, mode: 0o666 });
    await adm.listen({ socket: files.admSocket, mode: 0o600 });
    if (o.listen) {
      const tcp = new SocketBridge(system, [...userRoutes(cluster), ...adminRoutes(cluster, o.host)], log.child({ actor: 'bridge.tcp' }), inbox, 'tcp');
      bridges.push(tcp);
      await tcp.listen(o.listen).catch((err: Error) => {
        throw new Error(`cannot listen on ${o.listen!.host}:${o.listen!.port}: ${err.message}`);
      });
      base.tcp = tcp.address();
    }
    writeInfo(files.info, info());
  } catch (err) {
    await stop();
    throw err;
  }

  if (o.signals !== false) {
    const onSignal = () => void stop();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  log.info({ cluster, busUrl, cli: files.cliSocket }, `${o.mode} cluster ready`);
  return { info: info(), stopped, stop };
}

/** Ready means every node manager has registered with the cluster manager. */
export async function waitForNodes(system: ActorSystem, cluster: string, names: string[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const nodes = await system
      .ask<{ nodes: { name: string; state: string }[] }>(subjects(cluster).cm('nodes'), 'nodes', {}, { timeout: 1_000 })
      .then((r) => r.nodes)
      .catch(() => []);
    const missing = names.filter((n) => !nodes.some((x) => x.name === n && x.state === 'READY'));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`node(s) ${missing.join(', ')} did not register within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Ready means a gateway answers (in another process it may still be starting). */
export async function waitForGateway(system: ActorSystem, cluster: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await system.ask(subjects(cluster).gateway('ping'), 'ping', { params: {}, query: {} }, { timeout: 1_000 }).then(
      () => true,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`no gateway answered within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
