/**
 * crane-admind: a member host of a multi-host cluster, run from its member file
 * (`$CRANE_STATE_DIR/member.json`, written by `craneadm init` / `join`). It runs this host's
 * nats-server (leaf-node hub on the manager, leaf node elsewhere), its component processes
 * (cluster manager on the manager host; gateway and node manager everywhere), and serves the
 * standard sockets (`$CRANE_RUN_DIR/crane-{cli,adm}.sock`). When `craneadm promote|demote`
 * changes the host's role it starts all of that again in the new role, in the same process.
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import type { Logger } from 'pino';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../bus/connect.js';
import { CraneError } from '../../bus/errors.js';
import { rootLogger } from '../../bus/logger.js';
import { natsSyncAlways } from '../../bus/nats-server.js';
import { logStreamName } from '../cluster-manager/log-store.js';
import { StateStore } from '../cluster-manager/store.js';
import { subjects } from '../../bus/subjects.js';
import type { NodeInfo } from '../protocol.js';
import type { ClusterInfo } from './admin.js';
import { hostCluster, waitForGateway, type HostedCluster } from './cluster-host.js';
import type { ComponentSpec } from './component-process.js';
import { writeInfo } from './local-cluster.js';
import { metaGroup } from './jetstream-peers.js';
import { keepLeadersOff } from './leader-placement.js';
import { hostAddress, joinCommand, natsConfig, serverName, sysUser, withManagerChange, type Member } from './membership.js';
import { ProcessSupervisor } from './process-supervisor.js';
import { changeRole } from './role-change.js';

export interface MemberPaths {
  /** Sockets: /var/run/crane by default. */
  runDir: string;
  /** member.json, root-password, state/, logs/: /var/lib/crane by default. */
  stateDir: string;
}

const ENTRY = join(dirname(fileURLToPath(import.meta.url)), 'component-process.js');
const READY_MS = 30_000;

export const memberFile = (p: MemberPaths) => join(p.stateDir, 'member.json');

export function readMember(p: MemberPaths): Member | undefined {
  const f = memberFile(p);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Member) : undefined;
}

export function writeMember(p: MemberPaths, m: Member): void {
  mkdirSync(p.stateDir, { recursive: true, mode: 0o700 });
  writeInfo(memberFile(p), m);
}

/** Forgets the membership; without `persist` also the host's cluster state and logs. */
export function forgetMember(p: MemberPaths, persist: boolean): void {
  rmSync(memberFile(p), { force: true });
  if (!persist) for (const d of ['state', 'logs', 'root-password', 'cluster.json']) rmSync(join(p.stateDir, d), { recursive: true, force: true });
}

/**
 * Runs this host's part of the cluster until it stops or leaves; a role change (promote /
 * demote) stops it and starts it again from the rewritten member file. `stopped` rejects if the
 * host cannot start again (after 3 attempts).
 */
export async function runMember(p: MemberPaths, o: { signals?: boolean } = {}): Promise<HostedCluster> {
  const log = rootLogger().child({ actor: 'crane-admind' });
  let host: HostedCluster;
  let restarting: Promise<void> | undefined;
  let done!: (err?: Error) => void;
  const stopped = new Promise<void>((res, rej) => (done = (err) => (err ? rej(err) : res())));
  const start = async () => {
    const h = await startMember(p, () => void restart());
    host = h;
    void h.stopped.then(() => !restarting && host === h && done());
  };
  const restart = () =>
    (restarting ??= (async () => {
      await host.stop();
      for (let attempt = 1; ; attempt++) {
        try {
          await start();
          log.info({ role: host.info.role }, 'this host runs in its new role');
          return;
        } catch (err) {
          log.error({ err: String(err), attempt }, 'this host could not start again');
          if (attempt === 3) return done(err as Error);
          await new Promise((r) => setTimeout(r, 2_000 * attempt));
        }
      }
    })().finally(() => (restarting = undefined)));
  await start();
  const stop = async () => {
    await restarting;
    await host.stop();
  };
  if (o.signals !== false) {
    const onSignal = () => void stop();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { info: host!.info, stopped, stop };
}

/** This host's part of the cluster in the role its member file names. */
async function startMember(p: MemberPaths, onRoleChanged: () => void): Promise<HostedCluster> {
  const m = readMember(p);
  if (!m) throw new Error('this host is not a member of a cluster: run craneadm init, or craneadm join TOKEN HOST:PORT');
  const manager = m.role === 'manager';
  // A worker keeps no JetStream data (a demoted manager's is replicated elsewhere and stale here).
  if (!manager) rmSync(join(p.stateDir, 'state', 'jetstream'), { recursive: true, force: true });
  let componentsStopped = false;
  let log: Logger | undefined;
  let nc: NatsConnection | undefined;
  let busUrl = '';
  let refused: string | undefined;
  let connectErrors = 0;
  let connectedOnce = false;
  let supervisor: ProcessSupervisor | undefined;
  const auth = { user: m.user, pass: m.secret };
  mkdirSync(join(p.stateDir, 'logs'), { recursive: true, mode: 0o700 });
  const natsLog = createWriteStream(join(p.stateDir, 'logs', 'nats-server.log'), { flags: 'a', mode: 0o600 });
  const sub = subjects(m.cluster);
  let cm: (<T>(verb: string, body: object) => Promise<T>) | undefined;
  let placement: { stop(): void } | undefined;
  // A system-account connection, made when first needed (the meta group answers only that).
  let sys: Promise<NatsConnection> | undefined;
  const systemAccount = () =>
    (sys ??= connectBus(busUrl, `crane-admind-${m.node}-sys`, undefined, { user: sysUser(m), pass: m.secret }).catch((err) => {
      sys = undefined; // try again next time
      throw err;
    }));

  const hosted = hostCluster(
    {
      mode: 'member',
      home: p.stateDir,
      stateDir: join(p.stateDir, 'state'),
      cluster: m.cluster,
      host: m.node,
      signals: false,
      sockets: { cli: join(p.runDir, 'crane-cli.sock'), adm: join(p.runDir, 'crane-adm.sock') },
      // Root's password is the init host's; a joined host must not make up another one.
      rootPassword: manager && !m.seedRoute,
      nats: {
        config: natsConfig(m, { jetstreamDir: join(p.stateDir, 'state', 'jetstream'), syncAlways: natsSyncAlways() }),
        auth,
        onLog: (line) => {
          if (!natsLog.writableEnded) natsLog.write(`${line}\n`);
          const seed = manager ? m.seedRoute : m.seed;
          if (/leafnode|route/i.test(line) && /authorization violation/i.test(line)) refused = `the cluster at ${seed} refused this host: the join token is wrong or stale`;
          if (/Error trying to connect (as leafnode|to route)/i.test(line) && ++connectErrors >= 5 && !connectedOnce) {
            refused = `cannot reach the cluster at ${seed} (is it up, and port ${seed?.split(':').pop()} open?)`;
          }
          if (/(Leafnode|Route) connection created/i.test(line)) connectedOnce = true;
        },
      },
      moreStatus: m.ha
        ? async (nc) => {
            // The state bucket's replicas, or the log stream's if it has fewer (moving along).
            const jsm = await jetstreamManager(nc, { timeout: 1_000 });
            const info = await jsm.streams.info(`KV_${StateStore.bucketName(m.cluster)}`);
            const logs = await jsm.streams.info(logStreamName(m.cluster)).catch(() => undefined);
            const meta = await metaGroup(await systemAccount()).catch(() => undefined);
            return {
              stateReplicas: Math.min(info.config.num_replicas, logs?.config.num_replicas ?? info.config.num_replicas),
              leaders: { state: info.cluster?.leader, meta: meta?.leader },
            };
          }
        : undefined,
      leave: async ({ force, persist }) => {
        if (manager && m.ha) {
          // Another manager host would be left with this one's JetStream peer in its quorum.
          const { nodes } = await cm!<{ nodes: NodeInfo[] }>('nodes', {});
          if (nodes.some((n) => n.manager && n.state === 'READY' && n.name !== m.node)) {
            throw new CraneError('conflict', `this host is one of the cluster's manager hosts: craneadm demote ${m.node} first, then leave`);
          }
        }
        if (manager && !force) {
          throw new CraneError('conflict', 'this host runs the cluster manager: leaving stops the cluster for every host; use --force');
        }
        const r = await cm!<{ requeued: string[] }>('node.leave', { name: m.node, force });
        forgetMember(p, persist);
        return r;
      },
      roles: {
        ha: !!m.ha,
        address: () => hostAddress(m),
        note: (change) => {
          const now = readMember(p);
          if (now) writeMember(p, withManagerChange(now, change));
        },
        change: async (req) => {
          const stopComponents = async () => {
            componentsStopped = true;
            await supervisor?.stop();
          };
          try {
            const reply = await changeRole({ member: readMember(p) ?? m, cm: cm!, nc: nc!, busUrl, stopComponents, save: (next) => writeMember(p, next), log: log! }, req);
            setTimeout(onRoleChanged, 20);
            return reply;
          } catch (err) {
            // Refused before anything changed, or failed half way: start again as before.
            if (componentsStopped) setTimeout(onRoleChanged, 20);
            throw err;
          }
        },
      },
    },
    {
      async start(ctx) {
        const { system, cluster, stateDir, rootHash, cliSocket } = ctx;
        ({ busUrl, log } = ctx);
        nc = system.nc;
        cm = (verb, body) => system.ask(sub.cm(verb), verb, body, { timeout: 5_000 });
        const sup = (supervisor = new ProcessSupervisor(join(p.stateDir, 'logs'), log));
        const env = { CRANE_BUS_USER: m.user, CRANE_BUS_PASS: m.secret };
        const run = (name: string, spec: ComponentSpec, extra: NodeJS.ProcessEnv = {}) => sup.add(name, [ENTRY, JSON.stringify(spec)], { ...env, ...extra });
        // The first manager of an HA cluster starts before JetStream can (it needs two servers).
        const first = !m.seedRoute;
        if (manager) run('cluster-manager', { role: 'cluster-manager', holder: `${m.node}/cluster-manager`, busUrl, cluster, ha: m.ha, first }, { CRANE_ROOT_HASH: rootHash });
        run('gateway', { role: 'gateway', busUrl, cluster });
        run(m.node, { role: 'node', busUrl, cluster, name: m.node, gpus: m.gpus, gpusDetected: m.gpusDetected, hostJobs: m.hostJobs, manager, stateDir: join(stateDir, 'nodes', m.node), apiSocket: cliSocket });
        // Ready once this host's node manager is READY at the cluster manager (across the leaf link).
        const deadline = Date.now() + READY_MS;
        for (;;) {
          if (refused) throw new Error(refused);
          const nodes = await cm<{ nodes: { name: string; state: string }[] }>('nodes', {}).then((r) => r.nodes, () => []);
          if (nodes.some((n) => n.name === m.node && n.state === 'READY')) break;
          if (Date.now() > deadline) throw new Error(manager && !m.seedRoute ? `the cluster manager did not start within ${READY_MS / 1000} s` : `cannot reach the cluster at ${manager ? m.seedRoute : m.seed} (is it up, and its port open?)`);
          await new Promise((r) => setTimeout(r, 100));
        }
        await waitForGateway(system, cluster);
        if (manager && m.ha) {
          placement = keepLeadersOff({
            nc: system.nc,
            sys: systemAccount,
            server: serverName(m),
            streams: [`KV_${StateStore.bucketName(m.cluster)}`],
            activeHere: async () => (await cm!<{ manager?: string }>('nodes', {})).manager === `${m.node}/cluster-manager`,
            log,
          });
        }
      },
      async stop() {
        placement?.stop();
        await sys?.then((c) => c.close()).catch(() => {});
        await supervisor?.stop();
      },
      info: (): Partial<ClusterInfo> => ({
        processes: supervisor?.list() ?? [],
        role: m.role,
        node: m.node,
        ...(manager ? { join: joinCommand(m) } : { seed: m.seed }),
      }),
    },
  );
  return hosted.then(
    (h) => (void h.stopped.then(() => natsLog.end()), h),
    (err) => {
      natsLog.end();
      throw err;
    },
  );
}
