import type { Actor, ActorContext, ActorSpec, Envelope } from '../../bus/actor.js';
import type { BridgeRequest, Route } from '../../bus/bridge.js';
import { CraneError } from '../../bus/errors.js';
import { subjects, type Subjects } from '../../bus/subjects.js';
import type { NodeInfo, UserInfo } from '../protocol.js';
import type { ProcessInfo } from './process-supervisor.js';
import { generatePassword, hashPassword } from '../gateway/password.js';
import { usageWindow } from '../cluster-manager/usage-views.js';

export interface ClusterInfo {
  mode: 'standalone' | 'pseudocluster' | 'member';
  cluster: string;
  busUrl: string;
  pid: number;
  home: string;
  sockets: { cli: string; adm: string };
  startedAt: string;
  version: string;
  /** The TCP endpoint (IP:PORT), if the cluster serves one. */
  tcp?: string;
  /** A member host: its role, node name, and the join command (manager) or its manager (worker). */
  role?: 'manager' | 'worker';
  node?: string;
  join?: string;
  seed?: string;
  /** An HA cluster: replicas of the state bucket (up to 3, one per manager host). */
  stateReplicas?: number;
  /** pseudocluster: the component processes. */
  processes?: ProcessInfo[];
}

export interface AdminOptions {
  cluster: string;
  /** A member host's admin: its subjects carry the host's name. */
  host?: string;
  info: () => ClusterInfo;
  /** Shuts the cluster down; called after the stop request is answered. */
  stop: () => void;
  /**
   * A member host: leave the cluster (requeue or refuse the jobs running here); the host stops
   * after the answer.
   */
  leave?: (o: { force: boolean; persist: boolean }) => Promise<unknown>;
  /** More for `craneadm status` that takes asking (an HA cluster: the state's replicas). */
  moreStatus?: () => Promise<Partial<ClusterInfo>>;
}

/**
 * The admin daemon's actor (crane-adm.sock): cluster status, user management and shutdown. The
 * socket is the caller's credential (mode 0600), so requests carry no token.
 */
class Admin implements Actor {
  private readonly sub: Subjects;
  constructor(private readonly o: AdminOptions) {
    this.sub = subjects(o.cluster);
  }

  async receive(msg: Envelope<BridgeRequest>, ctx: ActorContext): Promise<unknown> {
    const req = msg.body;
    const cm = <T>(type: string, body: object) => ctx.ask<T>(this.sub.cm(type), type, body, { cause: msg });
    if (req.via === 'tcp' && msg.type !== 'ping') await checkAdmin(req.token, cm);
    switch (msg.type) {
      case 'ping':
        return { ok: true };
      case 'status': {
        const { nodes, manager } = await cm<{ nodes: NodeInfo[]; manager?: string }>('nodes', {});
        return { ...this.o.info(), ...(await this.o.moreStatus?.().catch(() => ({}))), nodes, manager };
      }
      case 'stop':
        setTimeout(() => this.o.stop(), 20);
        return { ok: true };
      case 'users.add': {
        const b = (req.body ?? {}) as { username?: string; password?: string; admin?: boolean };
        if (!b.username) throw new CraneError('invalid', 'a user name is required');
        if (b.password !== undefined && (typeof b.password !== 'string' || b.password.length < 8)) {
          throw new CraneError('invalid', 'a password needs at least 8 characters');
        }
        const password = b.password ?? generatePassword();
        const user = await cm<UserInfo>('user.add', { username: b.username, hash: await hashPassword(password), isAdmin: !!b.admin });
        return b.password === undefined ? { user, password } : { user };
      }
      case 'users.list':
        return cm('user.list', {});
      case 'users.rm':
        return cm('user.rm', { username: req.params.name });
      case 'users.quota': {
        const b = (req.body ?? {}) as { gpus?: number | null; weight?: number };
        return cm('user.quota', { username: req.params.name, gpus: b.gpus, weight: b.weight });
      }
      case 'report':
        return cm('usage', { all: true, ...usageWindow(req.query) });
      case 'leave': {
        if (!this.o.leave) throw new CraneError('invalid', 'this host is not a member of a multi-host cluster (craneadm stop ends a local one)');
        const b = (req.body ?? {}) as { force?: boolean; persist?: boolean };
        const r = await this.o.leave({ force: !!b.force, persist: !!b.persist });
        setTimeout(() => this.o.stop(), 20);
        return r;
      }
      case 'promote':
      case 'demote': {
        const { nodes } = await cm<{ nodes: NodeInfo[] }>('nodes', {});
        const node = req.params.node ?? '';
        if (!nodes.some((n) => n.name === node)) throw new CraneError('not-found', `no node '${node}' in this cluster (craneadm status lists them)`);
        throw new CraneError('invalid', `cannot ${msg.type} ${node}: this version runs one cluster manager, on the host that ran craneadm init`);
      }
      default:
        throw new CraneError('invalid', `admin does not handle '${msg.type}'`);
    }
  }
}

/** Over TCP the caller must show an administrator's token (on the 0600 socket, the file is the credential). */
async function checkAdmin(token: string | undefined, cm: <T>(type: string, body: object) => Promise<T>): Promise<void> {
  if (!token) throw new CraneError('unauthenticated', 'the TCP endpoint needs an administrator token: crane user signin -u root on this endpoint, or set CRANE_TOKEN');
  const u = await cm<UserInfo>('token.check', { token });
  if (!u.isAdmin) throw new CraneError('forbidden', `user ${u.username} is not an administrator`);
}

export function adminSpec(o: AdminOptions): ActorSpec {
  return { name: 'admin', subjects: [adminSubject(o.cluster, o.host)('>')], factory: () => new Admin(o) };
}

function adminSubject(cluster: string, host?: string): (verb: string) => string {
  const s = subjects(cluster);
  return host ? (verb) => s.hostAdmin(host, verb) : s.admin;
}

/** Routes of crane-adm.sock. */
export function adminRoutes(cluster: string, host?: string): Route[] {
  const a = adminSubject(cluster, host);
  const r = (method: Route['method'], path: string, type: string): Route => ({ method, path, subject: a(type), type });
  return [
    r('GET', '/v1/admin/ping', 'ping'),
    r('GET', '/v1/admin/status', 'status'),
    r('POST', '/v1/admin/stop', 'stop'),
    r('POST', '/v1/admin/users', 'users.add'),
    r('GET', '/v1/admin/users', 'users.list'),
    r('DELETE', '/v1/admin/users/:name', 'users.rm'),
    r('POST', '/v1/admin/users/:name/quota', 'users.quota'),
    r('GET', '/v1/admin/report', 'report'),
    r('POST', '/v1/admin/leave', 'leave'),
    r('POST', '/v1/admin/nodes/:node/promote', 'promote'),
    r('POST', '/v1/admin/nodes/:node/demote', 'demote'),
  ];
}
