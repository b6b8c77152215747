/**
 * The target host's side of `craneadm promote|demote` (actors/admin/admin.ts forwards it here):
 *   1. check again, on fresh facts (role-policy.ts): nothing changes if it is refused;
 *   2. the node leaves the cluster manager's view (its running jobs are requeued with --force,
 *      as `leave --force` does) and this host's component processes stop: its node manager,
 *      its gateway, its cluster-manager candidate (which gives the lease away if it held it);
 *   3. demote: the state bucket and the log stream move off this host's nats-server, down to
 *      one replica per remaining manager host, and the server leaves the JetStream meta group;
 *   4. the member file is rewritten; after the answer, crane-admind restarts this host's bus and
 *      components in the new role (member-host.ts). A promoted host's replicas are added by the
 *      active cluster manager once its node registers as a manager (keepReplicas).
 * Running containers: restarting the node manager would kill them, so a role change is refused
 * while jobs run on the host, and with --force they are requeued first.
 */
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { connectBus } from '../../bus/connect.js';
import { CraneError } from '../../bus/errors.js';
import { logStreamName } from '../cluster-manager/log-store.js';
import { StateStore } from '../cluster-manager/store.js';
import type { NodeInfo } from '../protocol.js';
import { jobsRunningOn, type RoleReply, type RoleRequest } from './admin.js';
import { moveStreamOff, removeServer, streamPeers } from './jetstream-peers.js';
import { defaultAdvertise, demoted, hostAddress, promoted, serverName, sysUser, type Member } from './membership.js';
import { replicasWithout, roleChangeRefusal } from './role-policy.js';

export interface RoleChangeContext {
  member: Member;
  /** Asks the cluster manager. */
  cm: <T>(verb: string, body: object) => Promise<T>;
  /** This host's bus connection and URL (its own nats-server). */
  nc: NatsConnection;
  busUrl: string;
  /** Stops this host's component processes (node manager, gateway, cluster-manager candidate). */
  stopComponents: () => Promise<void>;
  /** Writes the new member file. */
  save: (m: Member) => void;
  log: Logger;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function changeRole(c: RoleChangeContext, req: RoleRequest): Promise<RoleReply> {
  const m = c.member;
  const verb = req.to === 'manager' ? 'promote' : 'demote';
  const { nodes } = await c.cm<{ nodes: NodeInfo[] }>('nodes', {});
  const running = await jobsRunningOn(m.node, c.cm);
  const streams = [`KV_${StateStore.bucketName(m.cluster)}`, logStreamName(m.cluster)];
  const replicas = verb === 'demote' ? await fewestReplicas(c.nc, streams) : undefined;
  const why = roleChangeRefusal({ verb, node: m.node, nodes, ha: !!m.ha, force: !!req.force, running, replicas });
  if (why) throw new CraneError(why.code, why.message);
  if (m.role === req.to) throw new CraneError('invalid', `${m.node} is a ${m.role} host already`);
  const next = verb === 'promote'
    ? promoted(m, req.managers ?? [], { advertise: defaultAdvertise(), suffix: randomBytes(3).toString('hex') })
    : demoted(m, req.managers ?? []);

  // From here on this host changes.
  const t0 = Date.now();
  const ms = () => Date.now() - t0;
  c.log.info({ node: m.node, to: req.to, force: req.force }, `${verb}: this host becomes a ${req.to} host`);
  const { requeued } = await c.cm<{ requeued: string[] }>('node.leave', { name: m.node, force: !!req.force });
  await c.stopComponents();
  await leaveAgain(c);
  c.log.info({ ms: ms(), requeued }, `${verb}: the node left and this host's components stopped`);
  if (verb === 'demote') {
    const server = serverName(m);
    const want = replicasWithout(nodes, m.node);
    for (const stream of streams) {
      await moveStreamOff(c.nc, stream, server, want).then(() => c.log.info({ stream, ms: ms() }, 'demote: stream moved')).catch((err: Error) => {
        const jobs = requeued.length ? `; its jobs were requeued: ${requeued.join(', ')}` : '';
        throw new CraneError('unavailable', `cannot move ${stream} off ${m.node}: ${err.message} (${m.node} stays a manager host${jobs}; try again)`);
      });
    }
    const sys = await connectBus(c.busUrl, `crane-admind-${m.node}-sys`, undefined, { user: sysUser(m), pass: m.secret });
    try {
      await removeServer(sys, server);
      c.log.info({ server, ms: ms() }, 'demote: this server left the JetStream meta group');
    } catch (err) {
      // Its streams are elsewhere already: as a worker it runs no JetStream, so carry on.
      c.log.warn({ err: String(err), server }, 'could not take this server out of the JetStream meta group');
    } finally {
      await sys.close().catch(() => {});
    }
    c.log.info({ replicas: want, ms: ms() }, 'demote: the state and the logs moved off this host');
  }
  c.save(next);
  return { node: m.node, role: next.role, requeued, address: hostAddress(next) };
}

/** The fewest replicas among the streams; 0 if one is not there (the state is not in JetStream yet). */
async function fewestReplicas(nc: NatsConnection, streams: string[]): Promise<number> {
  let fewest = 3;
  for (const s of streams) fewest = Math.min(fewest, await streamPeers(nc, s).then((p) => p.replicas, () => 0));
  return fewest;
}

/**
 * The node left before its node manager stopped: a heartbeat in between may have registered it
 * again. The cluster manager may be moving meanwhile (this host held the lease): retry a while.
 */
async function leaveAgain(c: RoleChangeContext): Promise<void> {
  const end = Date.now() + 15_000;
  while (Date.now() < end) {
    try {
      await c.cm('node.leave', { name: c.member.node, force: true });
      return;
    } catch (err) {
      if ((err as CraneError).code === 'not-found') return;
      await sleep(300);
    }
  }
}
