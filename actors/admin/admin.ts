import type { Actor, ActorContext, ActorSpec, Envelope } from '../../bus/actor.js';
import type { BridgeRequest, Route } from '../../bus/bridge.js';
import { CraneError } from '../../bus/errors.js';
import { subjects, type Subjects } from '../../bus/subjects.js';
import type { JobView, NodeInfo, UserInfo } from '../protocol.js';
import type { ProcessInfo } from './process-supervisor.js';
import { generatePassword, hashPassword } from '../gateway/password.js';
import { usageWindow } from '../cluster-manager/usage-views.js';
import type { HostAddress, ManagerChange } from './membership.js';
import { roleChangeRefusal, type RoleVerb } from './role-policy.js';

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
  /** HA: the nats-servers that lead the state bucket's and the meta group's Raft groups. */
  leaders?: { state?: string; meta?: string };
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
  /** A member host: its role, and how it changes (`craneadm promote` / `demote`). */
  roles?: RoleHooks;
}

/** What the target host of `promote` / `demote` is asked (on `crane.<c>.host.<node>.admin.role`). */
export interface RoleRequest {
  to: 'manager' | 'worker';
  force: boolean;
  /** The manager hosts' addresses (routes for a promoted host, leaf ports for a demoted one). */
  managers: HostAddress[];
}

export interface RoleReply {
  node: string;
  role: 'manager' | 'worker';
  requeued: string[];
  /** The host's addresses in its new role (the others note them: see withManagerChange). */
  address: HostAddress;
}

export interface RoleHooks {
  /** The cluster was started with `craneadm init --ha`. */
  ha: boolean;
  /** This host's addresses (answered on `…admin.member`). */
  address(): HostAddress;
  /** Changes this host's role: checks, requeues (force), moves JetStream off it; restarts it after the answer. */
  change(req: RoleRequest): Promise<RoleReply>;
  /** Another host was promoted or demoted: note its addresses in this host's member file. */
  note(change: ManagerChange): void;
}

/** Promote / demote restart a host's components: the forwarded request may take this long. */
export const ROLE_CHANGE_MS = 120_000;
/** An administrator's view of the jobs (the cluster manager scopes job lists by user). */
export const ADMIN_SCOPE: UserInfo = { id: 'admin', username: 'root', isAdmin: true };

/** Names of the jobs running on `node`. */
export async function jobsRunningOn(node: string, cm: <T>(type: string, body: object) => Promise<T>): Promise<string[]> {
  const { jobs } = await cm<{ jobs: JobView[] }>('job.list', { user: ADMIN_SCOPE, states: ['RUNNING'] });
  return jobs.filter((j) => j.acquired[node] || j.am?.node === node).map((j) => j.name);
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
      case 'demote':
        return this.changeRole(msg.type, req, msg, ctx);
      case 'member':
        if (!this.o.roles) throw new CraneError('invalid', 'not a member host of a multi-host cluster');
        return this.o.roles.address();
      case 'role':
        if (!this.o.roles) throw new CraneError('invalid', 'not a member host of a multi-host cluster');
        return this.o.roles.change(req.body as RoleRequest);
      case 'note':
        this.o.roles?.note(req.body as ManagerChange);
        return { ok: true };
      default:
        throw new CraneError('invalid', `admin does not handle '${msg.type}'`);
    }
  }

  /**
   * `craneadm promote|demote NODE` on any host: checked here, then carried out by NODE's own admin
   * (which restarts that host's components), with the manager hosts' addresses it needs.
   */
  private async changeRole(verb: RoleVerb, req: BridgeRequest, msg: Envelope, ctx: ActorContext): Promise<unknown> {
    const cm = <T>(type: string, body: object) => ctx.ask<T>(this.sub.cm(type), type, body, { cause: msg });
    const node = req.params.node ?? '';
    const force = !!(req.body as { force?: boolean } | undefined)?.force;
    const { nodes } = await cm<{ nodes: NodeInfo[] }>('nodes', {});
    const running = nodes.some((n) => n.name === node) ? await jobsRunningOn(node, cm) : [];
    const why = roleChangeRefusal({ verb, node, nodes, ha: this.o.roles?.ha, force, running });
    if (why) throw new CraneError(why.code, why.message);
    const managers: HostAddress[] = [];
    for (const n of nodes.filter((x) => x.manager && x.state === 'READY')) {
      const a = n.name === this.o.host ? this.o.roles!.address() : await ctx.ask<HostAddress>(this.sub.hostAdmin(n.name, 'member'), 'member', { params: {}, query: {} }, { timeout: 3_000, cause: msg }).catch(() => undefined);
      if (a) managers.push(a);
    }
    const body: RoleRequest = { to: verb === 'promote' ? 'manager' : 'worker', force, managers };
    // This host itself: its actor is busy with this very request, so it does the work here.
    const reply =
      node === this.o.host
        ? await this.o.roles!.change(body)
        : await ctx.ask<RoleReply>(this.sub.hostAdmin(node, 'role'), 'role', { params: {}, query: {}, body }, { timeout: ROLE_CHANGE_MS, cause: msg }).catch((err: CraneError) => {
            if (err.code === 'unavailable' && /^nothing answers on/.test(err.message)) throw new CraneError('unavailable', `${node} does not answer: is crane-admind running there?`);
            throw err;
          });
    // Every other host notes the change for its next start (a running one follows it already).
    const change: ManagerChange = verb === 'promote' ? { promoted: reply.address } : { demoted: managers.find((a) => a.node === node) ?? reply.address };
    for (const n of nodes.filter((x) => x.name !== node && x.state === 'READY')) {
      if (n.name === this.o.host) this.o.roles!.note(change);
      else await ctx.ask(this.sub.hostAdmin(n.name, 'note'), 'note', { params: {}, query: {}, body: change }, { timeout: 3_000, cause: msg }).catch(() => undefined);
    }
    return reply;
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
    { ...r('POST', '/v1/admin/nodes/:node/promote', 'promote'), timeoutMs: ROLE_CHANGE_MS + 10_000 },
    { ...r('POST', '/v1/admin/nodes/:node/demote', 'demote'), timeoutMs: ROLE_CHANGE_MS + 10_000 },
  ];
}
