import { randomUUID } from 'node:crypto';
import { DEFERRED, type Actor, type ActorContext, type ActorSpec, type Envelope } from '../../bus/actor.js';
import { CraneError } from '../../bus/errors.js';
import type { StreamWriter } from '../../bus/stream.js';
import { subjects } from '../../bus/subjects.js';
import {
  ACTIVE_STATES,
  type CargoResize,
  type CargoSpec,
  type ContainerExit,
  type Grant,
  type Heartbeat,
  type JobSpec,
  type JobState,
  type JobView,
  type NodeInfo,
  type RegisterNode,
  type ResourceSummary,
  type RunRequest,
  type UserInfo,
} from '../protocol.js';
import { isTerminal, transition } from './job-states.js';
import { matches, resolveOne, type JobFilter } from './job-match.js';
import { defaultJobName } from './job-names.js';
import { generateToken } from '../gateway/password.js';
import { amGpus, cargoView, findContainer, liveContainers } from './cargos.js';
import { planGrow, planReclaim, type ElasticJob } from './elastic.js';
import { planQueue, type Waiting } from './fair-share.js';
import { gpuCount, plus, showGrant } from './grant.js';
import { countNode, neverFits, placeJob, type FitSummary, type NodeCapacity, type Placement } from './scheduler.js';
import type { JobRecord } from './state.js';
import { jobUsage, usageFor, type UsageRequest } from './usage-views.js';
import type { ClusterManagerOptions } from './job-runtime.js';
import { ElasticOps } from './elastic-ops.js';

/** node-2 before node-10 (a collator made once: localeCompare with options builds one per call). */
const byNodeName = new Intl.Collator('en', { numeric: true }).compare;

export type { ClusterManagerOptions } from './job-runtime.js';

type Scoped<T = object> = T & { user: UserInfo };

/**
 * Node-loss policy: a job whose container was lost with its node (no heartbeat, or the node
 * manager restarted without it) goes back to the head of the queue; after this many losses it
 * ends ERROR instead, so a job that brings nodes down cannot loop forever.
 */
export const MAX_REQUEUES = 3;

/** The cluster manager: users, tokens, nodes and jobs; the queue and the scheduler. */
class ClusterManager extends ElasticOps implements Actor {
  private readonly nodeTimeoutMs: number;
  private tick?: NodeJS.Timeout;
  /** Streams waiting for a job to end, and kill/rm replies deferred until it does. */
  private readonly waiters = new Map<string, StreamWriter[]>();
  private readonly pending = new Map<string, Envelope[]>();
  /** Why each queued job waits, from the last scheduling pass. */
  private waiting = new Map<string, Waiting>();
  /**
   * GPUs being freed for one queued job (a shrink or a pause): nobody else may take them. It lapses
   * after `until` (a node lost meanwhile may keep the job from fitting at all).
   */
  private earmark?: { job: string; gpus: Grant; until: number };
  /**
   * RUNNING jobs for the elastic phase, built at its first pass (one that ended since is dropped
   * when met): elastic ones (MAX > MIN) grow and shrink; the others only matter as jobs a
   * higher-priority job may pause (a running job never holds less than MIN: it is requeued).
   */
  private running?: { elastic: Map<string, JobRecord>; fixed: Map<string, JobRecord>; lowestPriority: number };

  constructor(o: ClusterManagerOptions) {
    super(o);
    this.nodeTimeoutMs = o.nodeTimeoutMs ?? 5_000;
  }


  preStart(ctx: ActorContext): void {
    this.tick = setInterval(() => ctx.tell(this.sub.cm('tick'), 'tick', null), Math.min(1_000, this.nodeTimeoutMs / 2));
    this.tick.unref();
  }


  postStop(): void {
    clearInterval(this.tick);
    for (const ws of [...this.waiters.values(), ...this.events.values()]) for (const w of ws) w.close();
  }


  /** Handles a message; what it changed is written to the store before the reply goes out. */
  receive(msg: Envelope, ctx: ActorContext): unknown {
    if (this.o.isActive && !this.o.isActive()) return DEFERRED; // the active manager answers
    const store = this.s.store;
    if (!store) return this.handle(msg, ctx);
    let out: unknown;
    let failure: unknown;
    try {
      out = this.handle(msg, ctx);
    } catch (err) {
      failure = err;
    }
    const settle = () => {
      if (failure) throw failure;
      return out;
    };
    return store.dirty ? store.flush().then(settle) : settle();
  }


  private handle(msg: Envelope, ctx: ActorContext): unknown {
    const b = msg.body;
    switch (msg.type) {
      case 'heartbeat':
        return this.heartbeat(b as Heartbeat, ctx);
      case 'tick':
        this.checkNodes(ctx);
        this.checkReclaims(ctx);
        // Also a pass every tick, so a lost 'schedule' message can never stall the queue.
        this.scheduleRequested = false;
        return this.schedule(ctx);
      case 'schedule':
        this.scheduleRequested = false;
        return this.schedule(ctx);
      case 'user.add':
        return this.addUser(b);
      case 'user.get': {
        const u = this.s.users.get(b.username);
        if (!u) throw new CraneError('not-found', `no user ${b.username}`);
        return u;
      }
      case 'user.list':
        return { users: [...this.s.users.values()].map(({ hash: _h, ...u }) => u) };
      case 'user.rm':
        return this.removeUser(b.username);
      case 'user.quota':
        return this.setQuota(b, ctx);
      case 'token.issue':
        this.s.saveToken(b.token, { username: b.username, expiresAt: b.expiresAt });
        return { ok: true };
      case 'token.check':
        return this.checkToken(b.token);
      case 'token.revoke': {
        const t = this.s.findToken(b.token);
        if (t) this.s.dropToken(t.key);
        return { ok: true };
      }
      case 'node.register':
        return this.registerNode(b as RegisterNode, ctx);
      case 'node.leave':
        return this.leaveNode(b as { name: string; force?: boolean }, ctx);
      case 'nodes':
        return { nodes: this.nodeInfos(), manager: this.o.name };
      case 'resources':
        return this.resources(b?.user as UserInfo | undefined);
      case 'container.exit':
        return this.containerExit(b as ContainerExit, ctx);
      case 'container.started':
        return this.containerStarted(b as { job: string; container: string }, ctx);
      case 'job.add':
        return this.addJob(b as Scoped<{ spec: JobSpec }>, ctx);
      case 'job.list':
        return this.listJobs(b as Scoped<JobFilter>);
      case 'job.get': {
        const r = this.job(b);
        return { ...this.withQueuePosition(r.view), cargos: (r.cargos ?? []).map((c) => cargoView(r.view.id, c)) };
      }
      case 'job.events':
        return this.openEvents(this.job(b), msg, ctx);
      case 'job.pause':
        return this.pauseJob(this.job(b), { byUser: true, reason: `paused by ${b.user.username}` }, ctx);
      case 'job.resume':
        return this.resumeJob(this.job(b), ctx);
      case 'job.release':
        return this.releaseGpus(this.job(b), b.gpus as Grant | undefined, ctx);
      case 'cargo.create':
        return this.createCargo(this.job(b), b.spec as CargoSpec, msg, ctx);
      case 'cargo.list': {
        const r = this.job(b);
        return { cargos: (r.cargos ?? []).map((c) => cargoView(r.view.id, c)) };
      }
      case 'cargo.get': {
        const r = this.job(b);
        return cargoView(r.view.id, this.cargo(r, b.cargo));
      }
      case 'cargo.kill':
        return this.killCargo(this.job(b), b.cargo, !!b.force, msg, ctx);
      case 'cargo.resize':
        return this.resizeCargo(this.job(b), b.cargo, b.resize as CargoResize, msg, ctx);
      case 'job.kill':
        return this.killJob(this.job(b), !!b.force, msg, ctx);
      case 'job.rm':
        return this.removeJob(this.job(b), !!b.force, msg, ctx);
      case 'job.wait':
        return this.waitJob(this.job(b), msg, ctx);
      case 'job.usage':
        return jobUsage(this.s, this.job(b), Date.now());
      case 'usage':
        return usageFor(this.s, b as UsageRequest, Date.now());
      default:
        throw new CraneError('invalid', `cluster manager does not handle '${msg.type}'`);
    }
  }


  // --- users and tokens -------------------------------------------------------------------

  private addUser(b: { username: string; hash: string; isAdmin?: boolean }): UserInfo {
    if (!/^[a-z_][a-z0-9_.-]{0,31}$/.test(b.username ?? '')) {
      throw new CraneError('invalid', `invalid user name '${b.username}': lowercase letters, digits, '_', '.', '-'`);
    }
    if (this.s.users.has(b.username)) throw new CraneError('conflict', `user ${b.username} already exists`);
    const u = { id: randomUUID(), username: b.username, isAdmin: !!b.isAdmin, hash: b.hash };
    this.s.saveUser(u);
    return { id: u.id, username: u.username, isAdmin: u.isAdmin };
  }


  /** `craneadm user quota`: weight and GPU quota (null clears the quota). */
  private setQuota(b: { username: string; gpus?: number | null; weight?: number }, ctx: ActorContext) {
    const u = this.s.users.get(b.username);
    if (!u) throw new CraneError('not-found', `no user ${b.username}`);
    const next = { ...u };
    if (b.gpus === null) delete next.quotaGpus;
    else if (b.gpus !== undefined) {
      if (!Number.isInteger(b.gpus) || b.gpus < 0) throw new CraneError('invalid', `a GPU quota is a whole number ≥ 0 (got ${b.gpus})`);
      next.quotaGpus = b.gpus;
    }
    if (b.weight !== undefined) {
      if (!(typeof b.weight === 'number' && b.weight > 0 && b.weight <= 1000)) throw new CraneError('invalid', `a weight is a number above 0, at most 1000 (got ${b.weight})`);
      next.weight = b.weight;
    }
    this.s.saveUser(next);
    this.requestSchedule(ctx);
    const { hash: _h, ...info } = next;
    return info;
  }


  private removeUser(username: string) {
    if (username === 'root') throw new CraneError('forbidden', 'the root user cannot be removed');
    if (!this.s.users.has(username)) throw new CraneError('not-found', `no user ${username}`);
    this.s.dropUser(username);
    for (const [key, v] of this.s.tokens) if (v.username === username) this.s.dropToken(key);
    return { ok: true };
  }


  private checkToken(token: string): UserInfo & { expiresAt: number } {
    const t = this.s.findToken(token);
    const u = t && this.s.users.get(t.username);
    if (!t || !u) throw new CraneError('unauthenticated', 'invalid token: sign in again with crane user signin');
    if (t.expiresAt < Date.now()) {
      this.s.dropToken(t.key);
      throw new CraneError('unauthenticated', 'token expired: sign in again with crane user signin');
    }
    // A job's own token reaches that job only, never with an administrator's reach.
    if (t.job) return { id: u.id, username: u.username, isAdmin: false, job: t.job, expiresAt: t.expiresAt };
    return { id: u.id, username: u.username, isAdmin: u.isAdmin, expiresAt: t.expiresAt };
  }


  // --- nodes --------------------------------------------------------------------------------

  private heartbeat(hb: Heartbeat, ctx: ActorContext): void {
    const n = this.s.nodes.get(hb.name);
    if (n?.state === 'LEFT') return;
    // Alive, even when not confirmed yet: after a takeover its registration may be slow (the
    // state store stalls while a stream moves), and losing it would requeue jobs that run fine.
    if (n?.state === 'READY') n.lastHeartbeat = Date.now();
    if (n?.state === 'READY' && n.confirmed) {
      if (hb.gpuUsage) n.usage = hb.gpuUsage;
      return;
    }
    // A node we lost (or never knew, or knew before this manager took over) is alive: it must
    // register again, which settles what it still runs before its GPUs are given out.
    ctx.tell(this.sub.node(hb.name, 'register'), 'register', {});
  }


  private registerNode(reg: RegisterNode, ctx: ActorContext) {
    const prev = this.s.nodes.get(reg.name);
    if (prev?.state === 'LEFT' && prev.reg.pid === reg.pid) return { ok: false, left: true };
    if (prev?.state === 'READY') prev.lastHeartbeat = Date.now();
    // Exits we missed first: those jobs ended, they did not lose their container.
    for (const e of reg.exited ?? []) this.containerExit(e, ctx);
    const reported = new Set(reg.running ?? []);
    const ours = new Set<string>();
    for (const r of this.s.jobs.values()) {
      if (r.view.state !== 'RUNNING') continue;
      for (const { c } of liveContainers(r)) {
        if (c.node !== reg.name) continue;
        if (reported.has(c.id)) ours.add(c.id);
        else this.containerExit({ job: r.view.id, container: c.id, node: c.node, exitCode: -1, error: `node ${reg.name} restarted without it` }, ctx);
      }
      const am = r.view.am;
      if (am?.node !== reg.name) continue;
      // Its process died and the new one reaped what was left: the job lost its container.
      if (!reported.has(am.container)) this.lose(r, `node ${reg.name} restarted without its container`, ctx);
      else ours.add(am.container);
    }
    // Containers the node still runs for jobs we already requeued or ended hold GPUs we may have
    // given out again: the node kills them and registers again before it counts as READY.
    const stale = [...reported].filter((c) => !ours.has(c));
    if (stale.length) {
      ctx.log.warn({ node: reg.name, stale }, 'node runs containers of requeued or ended jobs: it must kill them first');
      this.requestSchedule(ctx);
      return { ok: false, kill: stale };
    }
    const owners = new Map<number, string>();
    // GPUs still held by jobs running there stay taken: never hand out a GPU twice.
    for (const r of this.s.jobs.values()) {
      if (r.view.state !== 'RUNNING') continue;
      for (const g of r.view.acquired[reg.name] ?? []) owners.set(g, r.view.id);
    }
    const free = new Set(reg.gpus.filter((g) => !owners.has(g)));
    this.s.nodes.set(reg.name, { reg, free, owners, lastHeartbeat: Date.now(), state: 'READY', confirmed: true });
    this.s.saveNode(reg);
    ctx.log.info({ node: reg.name, gpus: reg.gpus, docker: reg.docker, again: !!prev }, 'node registered');
    this.requestSchedule(ctx);
    return { ok: true };
  }


  /** `craneadm leave`: the node's running jobs are requeued (with force) and it gets no more work. */
  private leaveNode(b: { name: string; force?: boolean }, ctx: ActorContext) {
    const n = this.s.nodes.get(b.name);
    if (!n || n.state === 'LEFT') throw new CraneError('not-found', `no node '${b.name}' in this cluster`);
    const running = [...this.s.jobs.values()].filter((r) => r.view.state === 'RUNNING' && r.view.acquired[b.name]);
    if (running.length && !b.force) {
      const names = running.map((r) => r.view.name).join(', ');
      throw new CraneError('conflict', `${running.length} job(s) run on ${b.name} (${names}): craneadm leave --force requeues them`);
    }
    n.state = 'LEFT';
    for (const r of running) this.nodeGone(r, b.name, `node ${b.name} left the cluster`, ctx);
    this.s.dropNode(b.name);
    ctx.log.info({ node: b.name, requeued: running.length }, 'node left the cluster');
    this.requestSchedule(ctx);
    return { node: b.name, requeued: running.map((r) => r.view.name) };
  }


  private checkNodes(ctx: ActorContext): void {
    const now = Date.now();
    for (const [name, n] of this.s.nodes) {
      if (n.state === 'READY' && now - n.lastHeartbeat > this.nodeTimeoutMs) {
        n.state = 'LOST';
        ctx.log.warn({ node: name, timeoutMs: this.nodeTimeoutMs }, 'node lost: no heartbeat');
        for (const r of this.s.jobs.values()) {
          if (r.view.state === 'RUNNING' && r.view.acquired[name]) this.nodeGone(r, name, `node ${name} was lost`, ctx);
        }
      }
    }
    this.requestSchedule(ctx);
  }


  /**
   * A node a running job holds GPUs on is gone. With its AM, or with GPUs the job needs to keep
   * its MIN, the whole job is lost (requeued); otherwise only its cargo containers there end and
   * it keeps running on the rest of its grant.
   */
  private nodeGone(r: JobRecord, node: string, reason: string, ctx: ActorContext): void {
    const left = gpuCount(r.view.acquired) - (r.view.acquired[node]?.length ?? 0);
    if (r.view.am?.node === node || left < r.view.spec.resources.min) return this.lose(r, reason, ctx);
    for (const { c } of liveContainers(r)) {
      if (c.node === node) this.containerExit({ job: r.view.id, container: c.id, node, exitCode: -1, error: reason }, ctx);
    }
    const gone = { [node]: r.view.acquired[node] ?? [] };
    this.dropGrant(r, gone);
    this.emit(r, 'grant.shrunk', { removed: gone, grant: r.view.acquired, reason });
    this.s.saveJob(r);
  }


  /** A running job lost its container with a node: requeue it (MAX_REQUEUES), else it ends ERROR. */
  private lose(r: JobRecord, reason: string, ctx: ActorContext): void {
    const v = r.view;
    if (r.pausing && !r.killing) {
      // It was being paused anyway: its AM is gone, so it is PAUSED once its cargos are.
      delete v.am;
      this.endRun(r, reason, ctx);
      this.settlePause(r, ctx);
      return;
    }
    if (r.killing || (r.requeues ?? 0) >= MAX_REQUEUES) {
      this.finish(r, 'ERROR', ctx, { reason: r.killing ? 'killed' : `${reason} (requeued ${MAX_REQUEUES} times already)` });
      return;
    }
    r.requeues = (r.requeues ?? 0) + 1;
    this.endRun(r, `${reason}: the job was requeued`, ctx);
    this.release(r);
    transition(v, 'QUEUED', new Date(), `${reason}: requeued`);
    v.acquired = {};
    this.grantChanged(r);
    delete v.am;
    delete v.reclaim;
    this.s.queue.unshift(v.id);
    this.s.saveJob(r);
    ctx.log.warn({ job: v.id, reason, requeues: r.requeues }, 'job requeued');
    this.publishState(v, ctx);
  }


  private nodeInfos(): NodeInfo[] {
    const byName = [...this.s.nodes.values()].filter((n) => n.state !== 'LEFT').sort((a, b) => byNodeName(a.reg.name, b.reg.name));
    return byName.map((n) => ({
      name: n.reg.name,
      gpus: n.reg.gpus,
      free: [...n.free].sort((a, b) => a - b),
      docker: n.reg.docker,
      hostJobs: n.reg.hostJobs,
      state: n.state,
      pid: n.reg.pid,
      ...(n.reg.manager ? { manager: true } : {}),
      lastHeartbeat: new Date(n.lastHeartbeat).toISOString(),
      owners: Object.fromEntries(n.owners),
    }));
  }


  /**
   * Free and busy GPUs; each busy GPU with its owner as the caller may see it: their own jobs (an
   * admin's: everyone's) by user/name, another user's only as "another user".
   */
  private resources(caller?: UserInfo): ResourceSummary {
    const nodes = this.nodeInfos().filter((n) => n.state === 'READY');
    const total = nodes.reduce((s, n) => s + n.gpus.length, 0);
    const free = nodes.reduce((s, n) => s + n.free.length, 0);
    for (const n of nodes) {
      n.ownerLabels = {};
      for (const [g, id] of Object.entries(n.owners)) {
        const v = this.s.jobs.get(id)?.view;
        const mine = !caller || caller.isAdmin || (caller.job ? caller.job === id : v?.user === caller.username);
        n.ownerLabels[Number(g)] = v && mine ? `${v.user}/${v.name}` : 'another user';
      }
      if (caller && !caller.isAdmin) n.owners = Object.fromEntries(Object.entries(n.owners).filter(([g]) => n.ownerLabels![Number(g)] !== 'another user'));
    }
    return { free, busy: total - free, total, nodes };
  }


  /** What the admission check of a job add needs of the READY nodes (a pass over them, no copies). */
  private admissionSummary(image: string): FitSummary {
    const s = { nodes: 0, total: 0, biggest: 0 };
    for (const n of this.s.nodes.values()) if (n.state === 'READY' && n.confirmed) countNode(s, image, { total: n.reg.gpus.length, docker: n.reg.docker, hostJobs: n.reg.hostJobs });
    return s;
  }


  /** The READY nodes as the scheduler sees them. */
  private capacities(): NodeCapacity[] {
    const out: NodeCapacity[] = [];
    for (const n of this.s.nodes.values()) {
      if (n.state !== 'READY' || !n.confirmed) continue;
      // The node's GPUs in their order, those free (no sort of every set on every pass).
      let free = n.reg.gpus.filter((g) => n.free.has(g));
      if (free.length !== n.free.size || free.some((g, k) => k > 0 && g < free[k - 1]!)) free = [...n.free].sort((a, b) => a - b);
      out.push({
        name: n.reg.name,
        free,
        total: n.reg.gpus.length,
        docker: n.reg.docker,
        hostJobs: n.reg.hostJobs,
      });
    }
    return out;
  }


  // --- jobs ---------------------------------------------------------------------------------

  private job(b: Scoped<{ ref: string }>): JobRecord {
    const view = resolveOne(this.s.userJobs(b.user), b.ref);
    return this.s.jobs.get(view.id)!;
  }


  private addJob({ user, spec }: Scoped<{ spec: JobSpec }>, ctx: ActorContext) {
    const why = neverFits({ resources: spec.resources, image: spec.am.image }, this.admissionSummary(spec.am.image));
    if (why) throw new CraneError('invalid', `job can never run here: ${why}`);
    const quota = this.s.users.get(user.username)?.quotaGpus;
    if (quota !== undefined && spec.resources.min > quota) {
      throw new CraneError('invalid', `job can never run: it needs ${spec.resources.min} GPUs but your quota is ${quota}`);
    }
    const id = randomUUID();
    const name = spec.name ?? defaultJobName(spec.am.image, id, (n) => this.s.names.has(`${user.username}/${n}`));
    const key = `${user.username}/${name}`;
    const clash = this.s.names.get(key);
    if (clash) {
      const other = this.s.jobs.get(clash)!.view;
      throw new CraneError('conflict', `you already have a job named '${name}' (${other.state}): remove it (crane job rm ${name}) or choose another name`);
    }
    const now = new Date();
    const view: JobView = {
      id,
      name,
      user: user.username,
      tags: spec.tags,
      spec: { ...spec, name },
      state: 'QUEUED',
      history: [{ state: 'QUEUED', at: now.toISOString() }],
      acquired: {},
    };
    const record: JobRecord = { view, seq: ++this.s.seq };
    this.s.jobs.set(id, record);
    this.s.saveJob(record);
    this.s.names.set(key, id);
    this.s.queue.push(id);
    this.publishState(view, ctx);
    this.requestSchedule(ctx);
    return { id, name, addedAt: now.toISOString() };
  }


  private listJobs(b: Scoped<JobFilter>) {
    const jobs: JobView[] = [];
    for (const j of this.s.userJobs(b.user)) if (matches(j, b)) jobs.push(this.withQueuePosition(j));
    return { jobs };
  }


  private withQueuePosition(j: JobView): JobView {
    if (j.state !== 'QUEUED' && j.state !== 'PAUSED') return j;
    const w = this.waiting.get(j.id);
    return w ? { ...j, queuePosition: w.position, queueReason: w.reason } : j;
  }


  private killJob(r: JobRecord, force: boolean, msg: Envelope, ctx: ActorContext) {
    const v = r.view;
    if (isTerminal(v.state)) return { id: v.id, state: v.state };
    if (v.state === 'QUEUED' || (v.state === 'PAUSED' && !r.pausing)) {
      this.finish(r, 'ERROR', ctx, { reason: 'killed' });
      return { id: v.id, state: v.state };
    }
    this.deferUntilDone(v.id, msg);
    r.killing = true;
    this.s.saveJob(r);
    this.emit(r, 'kill.requested', { force });
    this.killContainers(r, force, ctx);
    return DEFERRED;
  }


  private removeJob(r: JobRecord, force: boolean, msg: Envelope, ctx: ActorContext) {
    const v = r.view;
    if (isTerminal(v.state)) return this.forget(r, ctx);
    if (!force) throw new CraneError('conflict', `job ${v.name} is ${v.state}: kill it first, or use --force`);
    if (v.state !== 'RUNNING') {
      this.finish(r, 'ERROR', ctx, { reason: 'killed' });
      return this.forget(r, ctx);
    }
    r.killing = true;
    r.removeWhenDone = true;
    this.s.saveJob(r);
    this.deferUntilDone(v.id, msg);
    this.killContainers(r, true, ctx);
    return DEFERRED;
  }


  private forget(r: JobRecord, ctx: ActorContext) {
    const v = r.view;
    this.s.dropJob(v.id);
    this.s.names.delete(`${v.user}/${v.name}`);
    ctx.tell(this.sub.logstore('drop'), 'drop', { job: v.id });
    return { id: v.id };
  }


  private waitJob(r: JobRecord, msg: Envelope, ctx: ActorContext) {
    const w = ctx.openStream(msg);
    if (isTerminal(r.view.state)) {
      w.end(r.view);
      return { ok: true };
    }
    const list = this.waiters.get(r.view.id) ?? [];
    list.push(w);
    this.waiters.set(r.view.id, list);
    w.onClose(() => {
      const l = this.waiters.get(r.view.id);
      if (l) this.waiters.set(r.view.id, l.filter((x) => x !== w));
    });
    return { ok: true };
  }


  private deferUntilDone(job: string, msg: Envelope) {
    const l = this.pending.get(job) ?? [];
    l.push(msg);
    this.pending.set(job, l);
  }


  private containerExit(e: ContainerExit, ctx: ActorContext) {
    const r = this.s.jobs.get(e.job);
    if (!r) return { ok: true };
    const found = findContainer(r, e.container);
    if (found) return this.cargoContainerExit(r, found.cargo, found.c, e, ctx);
    if (isTerminal(r.view.state) || e.container !== r.view.am?.container) return { ok: true };
    if (r.pausing && !r.killing) {
      // The AM stopped for a pause: the job is PAUSED once its cargo containers are gone too.
      delete r.view.am;
      this.settlePause(r, ctx);
      return { ok: true };
    }
    const killed = r.killing;
    const state: JobState = e.exitCode === 0 && !e.error && !killed ? 'DONE' : 'ERROR';
    const reason = killed ? 'killed' : e.error ? e.error : e.exitCode !== 0 ? `exited with code ${e.exitCode}` : undefined;
    this.finish(r, state, ctx, { reason, exitCode: e.exitCode });
    return { ok: true };
  }


  /** Ends a job: releases its GPUs, answers waiters and deferred kills, schedules the queue. */
  protected override finish(r: JobRecord, state: JobState, ctx: ActorContext, o: { reason?: string; exitCode?: number }) {
    const v = r.view;
    if (v.state === 'QUEUED' || v.state === 'PAUSED') this.s.queue = this.s.queue.filter((id) => id !== v.id);
    transition(v, state, new Date(), o.reason);
    if (o.exitCode !== undefined) v.exitCode = o.exitCode;
    this.endRun(r, `the job ended (${state})`, ctx);
    this.release(r);
    this.grantChanged(r);
    delete r.pausing;
    delete v.reclaim;
    this.s.saveJob(r);
    this.publishState(v, ctx);
    this.emit(r, 'job.state', { state, reason: o.reason, exitCode: o.exitCode });
    for (const w of this.events.get(v.id) ?? []) w.end();
    this.events.delete(v.id);
    for (const w of this.waiters.get(v.id) ?? []) w.end(v);
    this.waiters.delete(v.id);
    const deferred = this.pending.get(v.id) ?? [];
    this.pending.delete(v.id);
    if (r.removeWhenDone) this.forget(r, ctx);
    for (const m of deferred) ctx.respond(m, m.type === 'job.rm' ? { id: v.id } : { id: v.id, state: v.state });
    this.requestSchedule(ctx);
  }


  // --- scheduling ---------------------------------------------------------------------------

  private schedule(ctx: ActorContext): void {
    const held = this.heldByUser();
    const users = Object.fromEntries([...this.s.users.values()].map((u) => [u.username, { weight: u.weight, quotaGpus: u.quotaGpus }]));
    let nodes = this.capacities();
    // GPUs being freed for one queued job are its own: it goes first, and nobody else takes them.
    const em = this.earmark;
    if (em && (!this.s.queue.includes(em.job) || Date.now() > em.until)) this.earmark = undefined;
    else if (em) {
      const p = placeJob(this.queued(em.job), nodes);
      if (p) {
        this.earmark = undefined;
        this.s.queue = this.s.queue.filter((id) => id !== em.job);
        this.start(p, ctx);
        held[this.s.jobs.get(em.job)!.view.user] = (held[this.s.jobs.get(em.job)!.view.user] ?? 0) + gpuCount(p.grant);
      } else nodes = nodes.map((n) => ({ ...n, free: n.free.filter((g) => !em.gpus[n.name]?.includes(g)) }));
    }
    let reserved: string | undefined;
    if (this.s.queue.length === 0) this.waiting.clear();
    else {
      const queue = this.s.queue.map((id) => this.queued(id));
      const plan = planQueue({ queue, nodes, held, users });
      this.waiting = plan.waiting;
      reserved = plan.reserved;
      nodes = plan.nodes;
      if (plan.placements.length) {
        const placed = new Set(plan.placements.map((p) => p.job));
        this.s.queue = this.s.queue.filter((id) => !placed.has(id));
        for (const p of plan.placements) {
          this.start(p, ctx);
          const user = this.s.jobs.get(p.job)!.view.user;
          held[user] = (held[user] ?? 0) + gpuCount(p.grant);
        }
      }
    }
    this.elastic(reserved, nodes, held, users, ctx);
  }


  /**
   * Shrinks or pauses running jobs for the reserved one, or grows them into idle GPUs. `nodes`: what
   * is free after the queue's placements, without the earmarked GPUs.
   */
  private elastic(reserved: string | undefined, nodes: NodeCapacity[], held: Record<string, number>, users: Record<string, { weight?: number; quotaGpus?: number }>, ctx: ActorContext): void {
    // Only jobs the policy could act on: below MAX while nothing waits (grow), above MIN or being
    // shrunk (reclaim), lower-priority jobs of the reserved job's user (pause). Others cost little.
    const head = reserved && !this.earmark ? this.queued(reserved) : undefined;
    if (!this.running) {
      this.running = { elastic: new Map(), fixed: new Map(), lowestPriority: 0 };
      for (const r of this.s.jobs.values()) if (r.view.state === 'RUNNING') this.trackRunning(r);
    }
    const running: ElasticJob[] = [];
    let elastic = false;
    const scan = (jobs: Map<string, JobRecord>) => {
      for (const [id, r] of jobs) {
        const v = r.view;
        if (v.state !== 'RUNNING') {
          jobs.delete(id);
          continue;
        }
        if (r.killing) continue;
        const n = gpuCount(v.acquired);
        const { min, max } = v.spec.resources;
        if (n < max) elastic = true;
        // Below MAX it may grow, but only while no queued job waits (a running job holds MIN).
        const grows = n < max && !reserved;
        if (!grows && n <= min && !v.reclaim && !(head && v.user === head.user && (v.spec.priority ?? 0) < head.priority)) continue;
        running.push({
          id: v.id,
          user: v.user,
          priority: v.spec.priority ?? 0,
          seq: r.seq,
          resources: v.spec.resources,
          image: v.spec.am.image,
          grant: v.acquired,
          am: amGpus(r),
          cargoGpus: liveContainers(r).flatMap(({ cargo, c }) => c.gpus.map((gpu) => ({ node: c.node, gpu, age: cargo.age }))),
          reclaiming: v.reclaim?.gpus ?? {},
          pausing: !!r.pausing,
        });
      }
    };
    scan(this.running.elastic);
    if (head && head.priority > this.running.lowestPriority) scan(this.running.fixed);
    if (reserved && head) {
      // The jobs behind it, read only as far as planReclaim needs them.
      const queue = this.s.queue;
      const queued = (id: string) => this.queued(id);
      const behind = (function* () {
        for (const id of queue) if (id !== reserved) yield queued(id);
      })();
      const rec = planReclaim({ nodes, jobs: running, held, users, head, behind });
      if (rec) {
        const label = `${this.s.jobs.get(reserved)!.view.name} (${reserved.slice(0, 8)})`;
        let gpus: Grant = {};
        for (const [id, g] of rec.take) {
          this.requestShrink(this.s.jobs.get(id)!, g, `GPUs are needed for queued job ${label}`, ctx);
          gpus = plus(gpus, g);
        }
        for (const id of rec.pause) {
          const r = this.s.jobs.get(id)!;
          gpus = plus(gpus, r.view.acquired);
          this.pauseJob(r, { byUser: false, reason: `paused for higher-priority job ${label}` }, ctx);
        }
        this.earmark = { job: reserved, gpus, until: Date.now() + this.shrinkMs + this.graceMs + 5_000 };
        ctx.log.info({ job: reserved, shrink: rec.take.size, pause: rec.pause.length, gpus: showGrant(gpus) }, 'freeing GPUs for the reserved job');
      }
      if (rec || !elastic) return;
    }
    if (!elastic) return;
    const grow = planGrow({ nodes, jobs: running, held, users, queueWaits: !!reserved });
    for (const [id, g] of grow) {
      const r = this.s.jobs.get(id)!;
      this.addGrant(r, g);
      this.s.saveJob(r);
      this.emit(r, 'grant.grown', { added: g, grant: r.view.acquired });
      ctx.log.info({ job: id, added: showGrant(g) }, 'job grown');
    }
  }


  /** Files a job that starts running for the elastic phase (once that has built its lists). */
  private trackRunning(r: JobRecord): void {
    const t = this.running;
    if (!t) return;
    const { min, max } = r.view.spec.resources;
    (max > min ? t.elastic : t.fixed).set(r.view.id, r);
    t.lowestPriority = Math.min(t.lowestPriority, r.view.spec.priority ?? 0);
  }


  /** GPUs each user's jobs hold now, from the GPU owners (O(GPUs), not O(every job ever)). */
  private heldByUser(): Record<string, number> {
    const held: Record<string, number> = {};
    let last: string | undefined;
    let user: string | undefined;
    for (const n of this.s.nodes.values()) {
      if (n.owners.size === 0) continue;
      for (const id of n.owners.values()) {
        // A job's GPUs on a node mostly come one after another.
        if (id !== last) user = this.s.jobs.get((last = id))?.view.user;
        if (user) held[user] = (held[user] ?? 0) + 1;
      }
    }
    return held;
  }


  private queued(id: string) {
    const r = this.s.jobs.get(id)!;
    const v = r.view;
    return { id, name: v.name, user: v.user, priority: v.spec.priority ?? 0, seq: r.seq, resources: v.spec.resources, image: v.spec.am.image };
  }


  private start(p: Placement, ctx: ActorContext): void {
    const r = this.s.jobs.get(p.job)!;
    const v = r.view;
    for (const [node, gpus] of Object.entries(p.grant)) {
      const n = this.s.nodes.get(node)!;
      for (const g of gpus) {
        n.free.delete(g);
        n.owners.set(g, v.id);
      }
    }
    // One name per run: a late exit from an earlier run (lost with its node) cannot end this one.
    r.runs = Math.max(r.runs ?? 0, r.requeues ?? 0) + 1;
    const container = `${v.id.slice(0, 8)}-am${r.runs > 1 ? `-${r.runs}` : ''}`;
    v.acquired = p.grant;
    this.trackRunning(r);
    v.am = { node: p.am.node, gpus: p.am.gpus, container };
    delete v.pausedByUser;
    transition(v, 'RUNNING', new Date());
    this.grantChanged(r);
    // The AM's own token: it reaches this job only, and dies with this run.
    const token = generateToken();
    r.tokenKey = this.s.saveToken(token, { username: v.user, expiresAt: Date.now() + 365 * 24 * 3600_000, job: v.id });
    this.s.saveJob(r);
    this.publishState(v, ctx);
    const req: RunRequest = { job: v.id, container, jobName: v.name, user: v.user, config: v.spec.am, gpus: p.am.gpus, graceMs: this.graceMs, token };
    ctx.ask(this.sub.node(p.am.node, 'run'), 'run', req, { timeout: 60_000 }).catch((err: CraneError) => {
      ctx.tell(this.sub.cm('container.exit'), 'container.exit', { job: v.id, container, node: p.am.node, exitCode: -1, error: `could not start: ${err.message}`, neverStarted: true });
    });
  }
}

export function clusterManagerSpec(o: ClusterManagerOptions): ActorSpec {
  const sub = subjects(o.cluster);
  return {
    name: 'cluster-manager',
    subjects: [sub.cm('>'), sub.hbAll],
    factory: () => new ClusterManager(o),
  };
}

export { ACTIVE_STATES };
