import { createHash } from 'node:crypto';
import { accountOf, everHeldGpus, type AccountRecord, type UsageSegment } from './accounting.js';
import type { StateStore } from './store.js';
import type { CargoContainerView, ContainerConfig, GpuSample, JobView, RegisterNode, UserInfo } from '../protocol.js';

export interface UserRecord extends UserInfo {
  /** scrypt hash (actors/gateway/password.ts); never leaves the cluster manager except to a gateway. */
  hash: string;
}

export interface NodeRecord {
  reg: RegisterNode;
  free: Set<number>;
  /** GPU index -> job id */
  owners: Map<number, string>;
  lastHeartbeat: number;
  /** LEFT: `craneadm leave`; kept only to refuse that same process registering again. */
  state: 'READY' | 'LOST' | 'LEFT';
  /** False for a node restored from the store: it must register again before it gets work. */
  confirmed: boolean;
  /** The latest sample of each GPU (heartbeats), current as of lastHeartbeat; in memory only. */
  usage?: GpuSample[];
}

export interface CargoContainerRecord extends CargoContainerView {
  config: ContainerConfig;
}

export interface CargoRecord {
  name: string;
  createdAt: string;
  /** Creation order within the job: the newest cargos are stopped first on a shrink. */
  age: number;
  /** Killed by the AM, a shrink or the job's end: its containers' exits do not make it ERROR. */
  killed?: boolean;
  /** Why it could not start (one container failed: the others were stopped). */
  failure?: string;
  containers: CargoContainerRecord[];
}

/** A session: a user's, or a job's own (its AM's) when `job` is set. */
export interface TokenRecord {
  username: string;
  expiresAt: number;
  job?: string;
}

export interface JobRecord {
  view: JobView;
  seq: number;
  /** The job's cargos (inspect shows them; ended ones stay until the job is removed). */
  cargos?: CargoRecord[];
  /** How many times its AM was started (requeues and resumes start it again). */
  runs?: number;
  /** sha256 of the current run's job token (revoked when the run ends). */
  tokenKey?: string;
  /** A pause under way: once every container has exited the job is PAUSED. */
  pausing?: { byUser: boolean; reason: string };
  /** Kill requested: the exit that follows ends the job as killed. */
  killing?: boolean;
  /** Remove once terminal (rm --force of a running job). */
  removeWhenDone?: boolean;
  /** Times it went back to the queue after losing its node. */
  requeues?: number;
  /** GPU-time accounting: from `at` on the job held `gpus` GPUs (accounting.ts, noteGrant). */
  usage?: UsageSegment[];
}

/**
 * The cluster manager's state. It lives outside the actor instance so that a supervisor restart
 * after a crash keeps it (the instance is rebuilt over the same state).
 */
export class ClusterState {
  readonly users = new Map<string, UserRecord>();
  /** sha256(token) -> session. */
  readonly tokens = new Map<string, TokenRecord>();
  readonly nodes = new Map<string, NodeRecord>();
  readonly jobs = new Map<string, JobRecord>();
  /** `${user}/${name}` -> job id: names are unique per user. */
  readonly names = new Map<string, string>();
  /** What accounting keeps of removed jobs (job id -> account), so reports still count them. */
  readonly accounts = new Map<string, AccountRecord>();
  /** QUEUED job ids in arrival order. */
  queue: string[] = [];
  seq = 0;

  /** Where changes are written (none: the state lives only in memory). */
  store?: StateStore;

  /**
   * The state with the administrator `root` (its hash from the root-password file always wins;
   * '' keeps the stored one: a manager host that joined has no password file), rebuilt from the
   * store's entries if there are any.
   */
  static withRoot(rootHash: string, store?: StateStore, entries = new Map<string, unknown>()): ClusterState {
    const s = new ClusterState();
    const now = Date.now();
    for (const [key, v] of entries) {
      const [kind, id] = [key.slice(0, key.indexOf('.')), key.slice(key.indexOf('.') + 1)];
      if (kind === 'user') s.users.set(id, v as UserRecord);
      else if (kind === 'token') s.tokens.set(id, v as TokenRecord);
      else if (kind === 'node') {
        const reg = v as RegisterNode;
        s.nodes.set(reg.name, { reg, free: new Set(), owners: new Map(), lastHeartbeat: now, state: 'READY', confirmed: false });
      } else if (kind === 'job') {
        const r = v as JobRecord;
        s.jobs.set(r.view.id, r);
        s.names.set(`${r.view.user}/${r.view.name}`, r.view.id);
        s.seq = Math.max(s.seq, r.seq);
      } else if (kind === 'acct') s.accounts.set(id, v as AccountRecord);
    }
    s.queue = [...s.jobs.values()]
      .filter((r) => r.view.state === 'QUEUED' || (r.view.state === 'PAUSED' && !r.view.pausedByUser))
      .sort((a, b) => (b.requeues ?? 0) - (a.requeues ?? 0) || a.seq - b.seq)
      .map((r) => r.view.id);
    for (const r of s.jobs.values()) {
      if (r.view.state !== 'RUNNING') continue;
      for (const [node, gpus] of Object.entries(r.view.acquired)) {
        const n = s.nodes.get(node);
        for (const g of gpus) n?.owners.set(g, r.view.id);
      }
    }
    for (const n of s.nodes.values()) n.free = new Set(n.reg.gpus.filter((g) => !n.owners.has(g)));
    s.store = store;
    if (rootHash || !s.users.has('root')) s.saveUser({ id: '00000000-0000-0000-0000-000000000000', username: 'root', isAdmin: true, hash: rootHash });
    return s;
  }

  /**
   * Takes in what the store holds that this state does not know (an HA cluster's first manager
   * that started before JetStream could: what it accepted since is newer and wins).
   */
  absorb(entries: Map<string, unknown>): void {
    const stored = ClusterState.withRoot('', undefined, entries);
    for (const [k, u] of stored.users) if (!this.users.has(k) && k !== 'root') this.users.set(k, u);
    for (const [k, t] of stored.tokens) if (!this.tokens.has(k)) this.tokens.set(k, t);
    for (const [k, n] of stored.nodes) if (!this.nodes.has(k)) this.nodes.set(k, n);
    for (const [k, r] of stored.jobs) {
      if (this.jobs.has(k)) continue;
      this.jobs.set(k, r);
      this.names.set(`${r.view.user}/${r.view.name}`, k);
      if (r.view.state === 'QUEUED' || (r.view.state === 'PAUSED' && !r.view.pausedByUser)) this.queue.push(k);
    }
    for (const [k, a] of stored.accounts) if (!this.accounts.has(k) && !this.jobs.has(k)) this.accounts.set(k, a);
    this.seq = Math.max(this.seq, stored.seq);
  }

  /** Everything, into the store just attached (an HA cluster's first manager, once JetStream is up). */
  saveAll(): void {
    for (const u of this.users.values()) this.saveUser(u);
    for (const [key, t] of this.tokens) this.store?.put(`token.${key}`, t);
    for (const n of this.nodes.values()) if (n.state !== 'LEFT') this.saveNode(n.reg);
    for (const r of this.jobs.values()) this.saveJob(r);
    for (const a of this.accounts.values()) this.store?.put(`acct.${a.id}`, a);
  }

  saveUser(u: UserRecord): void {
    this.users.set(u.username, u);
    this.store?.put(`user.${u.username}`, u);
  }

  dropUser(username: string): boolean {
    this.store?.del(`user.${username}`);
    return this.users.delete(username);
  }

  saveToken(token: string, t: TokenRecord): string {
    const h = tokenHash(token);
    this.tokens.set(h, t);
    this.store?.put(`token.${h}`, t);
    return h;
  }

  findToken(token: string): ({ key: string } & TokenRecord) | undefined {
    const key = tokenHash(token);
    const t = this.tokens.get(key);
    return t && { key, ...t };
  }

  /** `key` is the token's hash (findToken, or the keys of `tokens`). */
  dropToken(key: string): void {
    this.tokens.delete(key);
    this.store?.del(`token.${key}`);
  }

  saveNode(reg: RegisterNode): void {
    this.store?.put(`node.${reg.name}`, reg);
  }

  dropNode(name: string): void {
    this.store?.del(`node.${name}`);
  }

  saveJob(r: JobRecord): void {
    this.store?.put(`job.${r.view.id}`, r);
  }

  /** Removes a job; what it used stays accounted (`acct.<id>`) if it ever held a GPU. */
  dropJob(id: string): void {
    const r = this.jobs.get(id);
    if (r && everHeldGpus(r)) {
      const a = accountOf(r);
      this.accounts.set(id, a);
      this.store?.put(`acct.${id}`, a);
    }
    this.jobs.delete(id);
    this.store?.del(`job.${id}`);
  }

  /** The jobs a caller may see: an admin all, a user their own, a job's token only that job. */
  userJobs(user: UserInfo): Iterable<JobView> {
    if (user.job) {
      const r = this.jobs.get(user.job);
      return r ? [r.view] : [];
    }
    const all = [...this.jobs.values()].map((r) => r.view);
    return user.isAdmin ? all : all.filter((j) => j.user === user.username);
  }
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
