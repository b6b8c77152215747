import { randomUUID } from 'node:crypto';
import { DEFERRED, type Actor, type ActorContext, type ActorSpec, type Envelope } from '../../bus/actor.js';
import { CraneError } from '../../bus/errors.js';
import type { StreamWriter } from '../../bus/stream.js';
import { subjects, type Subjects } from '../../bus/subjects.js';
import {
  ACTIVE_STATES,
  type CargoResize,
  type CargoSpec,
  type ContainerExit,
  type Grant,
  type JobEvent,
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
import { noteGrant } from './accounting.js';
import { isTerminal, transition } from './job-states.js';
import { matches, resolveOne, type JobFilter } from './job-match.js';
import { defaultJobName } from './job-names.js';
import { generateToken } from '../gateway/password.js';
import { amGpus, cargoView, containerId, findContainer, freeGpus, isLive, liveContainers, usedGpus } from './cargos.js';
import { planGrow, planReclaim, placeCargo, type ElasticJob } from './elastic.js';
import { planQueue, type Waiting } from './fair-share.js';
import { both, gpuCount, minus, plus, prune, showGrant } from './grant.js';
import { neverFits, placeJob, type NodeCapacity, type Placement } from './scheduler.js';
import { ClusterState, type CargoRecord, type JobRecord } from './state.js';
import { jobUsage, usageFor, type UsageRequest } from './usage-views.js';

export interface ClusterManagerOptions {
  cluster: string;
  state: ClusterState;
  /** Who this manager is (the lease holder), shown by `craneadm status`. */
  name?: string;
  /** False once its lease may have passed to another manager: then it answers nothing. */
  isActive?: () => boolean;
  /** A node with no heartbeat for this long is LOST (its running jobs are requeued). */
  nodeTimeoutMs?: number;
  /** Grace period between SIGTERM and SIGKILL on kill. */
  killGraceMs?: number;
  /** How long an AM has to give GPUs back when asked to shrink (default 30 s). */
  shrinkDeadlineMs?: number;
}

type Scoped<T = object> = T & { user: UserInfo };

/**
 * Node-loss policy: a job whose container was lost with its node (no heartbeat, or the node
 * manager restarted without it) goes back to the head of the queue; after this many losses it
 * ends ERROR instead, so a job that brings nodes down cannot loop forever.
 */
export const MAX_REQUEUES = 3;

/** The cluster manager: users, tokens, nodes and jobs; the queue and the scheduler. */
class ClusterManager implements Actor {
  private readonly s: ClusterState;
  private readonly sub: Subjects;
  private readonly nodeTimeoutMs: number;
  private readonly graceMs: number;
  private tick?: NodeJS.Timeout;
  /** Streams waiting for a job to end, and kill/rm replies deferred until it does. */
  private readonly waiters = new Map<string, StreamWriter[]>();
  private readonly pending = new Map<string, Envelope[]>();
  private scheduleRequested = false;
  /** Why each queued job waits, from the last scheduling pass. */
  private waiting = new Map<string, Waiting>();
  /** AM event streams, per job. */
  private readonly events = new Map<string, StreamWriter[]>();
  /** Cargo creates, resizes and kills answered once their containers have started or ended. */
  private readonly cargoReplies = new Map<string, Array<{ msg: Envelope; until: 'started' | 'ended' }>>();
  /**
   * GPUs being freed for one queued job (a shrink or a pause): nobody else may take them. It lapses
   * after `until` (a node lost meanwhile may keep the job from fitting at all).
   */
  private earmark?: { job: string; gpus: Grant; until: number };
  private readonly shrinkMs: number;

  constructor(private readonly o: ClusterManagerOptions) {
    this.s = o.state;
    this.sub = subjects(o.cluster);
    this.nodeTimeoutMs = o.nodeTimeoutMs ?? 5_000;
    this.graceMs = o.killGraceMs ?? 10_000;
    this.shrinkMs = o.shrinkDeadlineMs ?? 30_000;
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
    if (n?.state === 'READY' && n.confirmed) {
      n.lastHeartbeat = Date.now();
      if (hb.gpuUsage) n.usage = hb.gpuUsage;
      return;
    }
    // A node we lost (or never knew: the cluster manager restarted) is alive after all: it must
    // register again, which settles what it still runs before its GPUs are given out.
    ctx.tell(this.sub.node(hb.name, 'register'), 'register', {});
  }

  private registerNode(reg: RegisterNode, ctx: ActorContext) {
    const prev = this.s.nodes.get(reg.name);
    if (prev?.state === 'LEFT' && prev.reg.pid === reg.pid) return { ok: false, left: true };
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
    const byName = [...this.s.nodes.values()].filter((n) => n.state !== 'LEFT').sort((a, b) => a.reg.name.localeCompare(b.reg.name, 'en', { numeric: true }));
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

  private capacities(): NodeCapacity[] {
    const out: NodeCapacity[] = [];
    for (const n of this.s.nodes.values()) {
      if (n.state !== 'READY' || !n.confirmed) continue;
      out.push({
        name: n.reg.name,
        free: [...n.free].sort((a, b) => a - b),
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
    const why = neverFits({ resources: spec.resources, image: spec.am.image }, this.capacities());
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

  /** Stops the AM and every live cargo container of the job. */
  private killContainers(r: JobRecord, force: boolean, ctx: ActorContext) {
    const am = r.view.am;
    if (am) this.killContainer(r.view.id, am.node, am.container, force, ctx);
    for (const { cargo, c } of liveContainers(r)) {
      cargo.killed = true;
      this.killContainer(r.view.id, c.node, c.id, force, ctx);
    }
  }

  /** Asks a node to stop one container; one the node does not run any more is reported gone. */
  private killContainer(job: string, node: string, container: string, force: boolean, ctx: ActorContext) {
    ctx
      .ask(this.sub.node(node, 'kill'), 'kill', { container, force, graceMs: this.graceMs }, { timeout: 5_000 })
      .then((res: { gone?: boolean }) => {
        if (res?.gone) ctx.tell(this.sub.cm('container.exit'), 'container.exit', { job, container, node, exitCode: 137, error: 'container was gone' });
      })
      .catch((err) => ctx.log.warn({ err: String(err), job, container }, 'kill request failed'));
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
  private finish(r: JobRecord, state: JobState, ctx: ActorContext, o: { reason?: string; exitCode?: number }) {
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

  /**
   * The end of one run of a job (it ended, was requeued or paused): its cargo containers are
   * stopped and its token revoked. Their exits still come and free their GPUs.
   */
  private endRun(r: JobRecord, reason: string, ctx: ActorContext): void {
    for (const { cargo, c } of liveContainers(r)) {
      cargo.killed = true;
      c.reason ??= reason;
      this.killContainer(r.view.id, c.node, c.id, true, ctx);
    }
    if (r.tokenKey) this.s.dropToken(r.tokenKey);
    delete r.tokenKey;
  }

  /**
   * Gives the job's GPUs back to their nodes, but those live cargo containers still use: they
   * stay the job's until their exits come (a GPU is never handed out while a process holds it).
   */
  private release(r: JobRecord): void {
    const v = r.view;
    const lingering = plus({}, Object.fromEntries(liveContainers(r).map(({ c }) => [c.node, c.gpus])));
    this.freeGpus(v.id, minus(v.acquired, lingering));
  }

  /** Frees GPUs the job owns on their nodes. */
  private freeGpus(job: string, g: Grant): void {
    for (const [node, gpus] of Object.entries(g)) {
      const n = this.s.nodes.get(node);
      if (!n) continue;
      for (const x of gpus) {
        if (n.owners.get(x) === job) {
          n.owners.delete(x);
          n.free.add(x);
        }
      }
    }
  }

  /** Takes GPUs out of a running job's grant and frees them (a shrink, a node gone). */
  private dropGrant(r: JobRecord, g: Grant): void {
    const v = r.view;
    const taken = both(v.acquired, g);
    v.acquired = minus(v.acquired, taken);
    this.freeGpus(v.id, taken);
    this.grantChanged(r);
    if (v.reclaim) {
      const left = minus(v.reclaim.gpus, taken);
      if (gpuCount(left) === 0) delete v.reclaim;
      else v.reclaim = { ...v.reclaim, gpus: left };
    }
  }

  /** Adds free GPUs to a running job's grant. */
  private addGrant(r: JobRecord, g: Grant): void {
    for (const [node, gpus] of Object.entries(g)) {
      const n = this.s.nodes.get(node)!;
      for (const x of gpus) {
        n.free.delete(x);
        n.owners.set(x, r.view.id);
      }
    }
    r.view.acquired = plus(r.view.acquired, g);
    this.grantChanged(r);
  }

  // --- the AM's event stream ---------------------------------------------------------------

  /** Sends an event to the job's AM (every open event stream of the job). */
  private emit(r: JobRecord, type: JobEvent['type'], body: object = {}): void {
    const ws = this.events.get(r.view.id);
    if (!ws?.length) return;
    const ev: JobEvent = { type, at: new Date().toISOString(), job: r.view.id, ...body };
    for (const w of ws) w.write(ev);
  }

  /** `GET /v1/jobs/{id}/events`: a hello with where the job stands, then events until it ends. */
  private openEvents(r: JobRecord, msg: Envelope, ctx: ActorContext) {
    const w = ctx.openStream(msg);
    const v = r.view;
    const hello: JobEvent = {
      type: 'hello',
      at: new Date().toISOString(),
      job: v.id,
      state: v.state,
      resources: v.spec.resources,
      grant: v.acquired,
      am: v.am,
      free: v.state === 'RUNNING' ? prune(freeGpus(r)) : {},
      reclaim: v.reclaim,
      cargos: (r.cargos ?? []).map((c) => cargoView(v.id, c)),
    };
    w.write(hello);
    if (isTerminal(v.state)) {
      w.end();
      return { ok: true };
    }
    const list = this.events.get(v.id) ?? [];
    list.push(w);
    this.events.set(v.id, list);
    w.onClose(() => {
      const l = this.events.get(v.id);
      if (l) this.events.set(v.id, l.filter((x) => x !== w));
    });
    return { ok: true };
  }

  // --- cargos -------------------------------------------------------------------------------

  private cargo(r: JobRecord, name: string): CargoRecord {
    const c = (r.cargos ?? []).find((x) => x.name === name);
    if (!c) throw new CraneError('not-found', `job ${r.view.name} has no cargo '${name}'`);
    return c;
  }

  private runningJob(r: JobRecord, what: string): void {
    const v = r.view;
    if (v.state !== 'RUNNING' || r.killing || r.pausing) {
      throw new CraneError('conflict', `cannot ${what}: job ${v.name} is ${r.killing ? 'being killed' : r.pausing ? 'being paused' : v.state}`);
    }
  }

  /** Places every container in the job's free GPUs or none; throws a clear line when they do not fit. */
  private placeContainers(r: JobRecord, specs: CargoSpec['containers'], prefer: string[] = []): Array<{ node: string; gpus: number[] }> {
    const free = freeGpus(r);
    const serves = (node: string, image: string) => {
      const n = this.s.nodes.get(node);
      return !!n && n.state === 'READY' && (image === 'host' ? n.reg.hostJobs : n.reg.docker);
    };
    // Nodes the cargo already uses first: resized containers join their siblings.
    const ordered: Grant = {};
    for (const n of [...prefer, ...Object.keys(free)]) if (free[n] && !ordered[n]) ordered[n] = free[n];
    const placed = placeCargo(ordered, specs.map((c) => ({ gpus: c.gpus, image: c.config.image })), serves);
    if (placed) return placed;
    const need = specs.reduce((a, c) => a + c.gpus, 0);
    const largest = Math.max(...specs.map((c) => c.gpus));
    const have = gpuCount(free);
    const why = need > have ? `it needs ${need} GPUs and the job has ${have} free` : `its largest container needs ${largest} GPUs on one node`;
    throw new CraneError('conflict', `does not fit in job ${r.view.name}'s grant: ${why} (free: ${showGrant(prune(free))}); nothing was started`);
  }

  private createCargo(r: JobRecord, spec: CargoSpec, msg: Envelope, ctx: ActorContext) {
    this.runningJob(r, 'start a cargo');
    const cargos = (r.cargos ??= []);
    const name = spec.name ?? `cargo-${cargos.length + 1}`;
    const prev = cargos.find((c) => c.name === name);
    if (prev && prev.containers.some(isLive)) throw new CraneError('conflict', `job ${r.view.name} already has a cargo '${name}' running`);
    const placed = this.placeContainers(r, spec.containers);
    const age = Math.max(0, ...cargos.map((c) => c.age)) + 1;
    const cargo: CargoRecord = { name, createdAt: new Date().toISOString(), age, containers: [] };
    // A name used before gets new container ids: old log lines never mix with new ones.
    const suffix = prev ? `-${age}` : '';
    cargo.containers = spec.containers.map((c, k) => {
      const cname = c.name ?? String(k);
      return { name: cname, id: containerId(r.view.id, name, cname) + suffix, node: placed[k]!.node, gpus: placed[k]!.gpus, image: c.config.image, state: 'STARTING' as const, config: c.config };
    });
    if (prev) cargos.splice(cargos.indexOf(prev), 1);
    cargos.push(cargo);
    this.s.saveJob(r);
    this.awaitCargo(r, cargo, msg, 'started');
    for (const c of cargo.containers) this.runCargoContainer(r, cargo, c, ctx);
    return DEFERRED;
  }

  private runCargoContainer(r: JobRecord, cargo: CargoRecord, c: CargoRecord['containers'][number], ctx: ActorContext): void {
    const v = r.view;
    const req: RunRequest = { job: v.id, container: c.id, jobName: v.name, user: v.user, config: c.config, gpus: c.gpus, graceMs: this.graceMs, cargo: cargo.name };
    ctx.ask(this.sub.node(c.node, 'run'), 'run', req, { timeout: 60_000 }).then(
      () => ctx.tell(this.sub.cm('container.started'), 'container.started', { job: v.id, container: c.id }),
      (err: CraneError) => ctx.tell(this.sub.cm('container.exit'), 'container.exit', { job: v.id, container: c.id, node: c.node, exitCode: -1, error: `could not start: ${err.message}`, neverStarted: true }),
    );
  }

  private containerStarted(b: { job: string; container: string }, ctx: ActorContext) {
    const r = this.s.jobs.get(b.job);
    const found = r && findContainer(r, b.container);
    if (!r || !found || found.c.state !== 'STARTING') return { ok: true };
    found.c.state = 'RUNNING';
    found.c.startedAt = new Date().toISOString();
    this.s.saveJob(r);
    if (!found.cargo.containers.some((c) => c.state === 'STARTING')) {
      this.emit(r, 'cargo.started', { cargo: cargoView(r.view.id, found.cargo) });
    }
    this.settleCargoReplies(r, found.cargo, ctx);
    return { ok: true };
  }

  private cargoContainerExit(r: JobRecord, cargo: CargoRecord, c: CargoRecord['containers'][number], e: ContainerExit, ctx: ActorContext) {
    if (!isLive(c)) return { ok: true };
    const failedToStart = !!e.neverStarted;
    c.state = e.exitCode === 0 && !e.error ? 'DONE' : 'ERROR';
    c.exitCode = e.exitCode;
    if (e.error) c.reason ??= e.error;
    else if (e.exitCode !== 0) c.reason ??= `exited with code ${e.exitCode}`;
    c.endedAt = new Date().toISOString();
    const v = r.view;
    // A container of a run that ended kept its GPUs until now: they are free.
    this.freeGpus(v.id, minus({ [c.node]: c.gpus }, v.state === 'RUNNING' ? v.acquired : {}));
    if (v.state === 'RUNNING' && v.reclaim) {
      const back = both(v.reclaim.gpus, { [c.node]: c.gpus });
      if (gpuCount(back)) this.shrink(r, back, ctx);
    }
    // A cargo that could not start is stopped whole: all or nothing.
    if (failedToStart && !cargo.failure) {
      cargo.failure = `container ${c.name} on ${c.node}: ${c.reason}`;
      cargo.killed = true;
      for (const o of cargo.containers) if (o !== c && isLive(o)) this.killContainer(v.id, o.node, o.id, true, ctx);
    }
    this.s.saveJob(r);
    this.emit(r, 'container.exited', { cargo: cargo.name, container: c.name, id: c.id, node: c.node, exitCode: e.exitCode, reason: c.reason });
    ctx.tell(this.sub.logstore('ended'), 'container.ended', { job: v.id, container: c.id });
    if (!cargo.containers.some(isLive)) this.emit(r, 'cargo.ended', { cargo: cargoView(v.id, cargo) });
    this.settleCargoReplies(r, cargo, ctx);
    if (r.pausing) this.settlePause(r, ctx);
    this.requestSchedule(ctx);
    return { ok: true };
  }

  /** Replies to cargo requests once what they wait for happened. */
  private awaitCargo(r: JobRecord, cargo: CargoRecord, msg: Envelope, until: 'started' | 'ended'): void {
    const key = `${r.view.id}/${cargo.name}`;
    this.cargoReplies.set(key, [...(this.cargoReplies.get(key) ?? []), { msg, until }]);
  }

  private settleCargoReplies(r: JobRecord, cargo: CargoRecord, ctx: ActorContext): void {
    const key = `${r.view.id}/${cargo.name}`;
    const waiting = this.cargoReplies.get(key);
    if (!waiting) return;
    const starting = cargo.containers.some((c) => c.state === 'STARTING');
    const live = cargo.containers.some(isLive);
    const rest = waiting.filter((w) => {
      if (w.until === 'started' ? starting || (cargo.failure && live) : live) return true;
      if (w.until === 'started' && cargo.failure) {
        ctx.respondError(w.msg, new CraneError('unavailable', `cargo ${cargo.name} could not start: ${cargo.failure}; the others were stopped`));
      } else ctx.respond(w.msg, cargoView(r.view.id, cargo));
      return false;
    });
    if (rest.length) this.cargoReplies.set(key, rest);
    else this.cargoReplies.delete(key);
  }

  private killCargo(r: JobRecord, name: string, force: boolean, msg: Envelope, ctx: ActorContext) {
    const cargo = this.cargo(r, name);
    if (!cargo.containers.some(isLive)) return cargoView(r.view.id, cargo);
    cargo.killed = true;
    this.s.saveJob(r);
    for (const c of cargo.containers) if (isLive(c)) this.killContainer(r.view.id, c.node, c.id, force, ctx);
    this.awaitCargo(r, cargo, msg, 'ended');
    return DEFERRED;
  }

  /** Adds and removes containers of a running cargo; the others keep running. */
  private resizeCargo(r: JobRecord, name: string, resize: CargoResize, msg: Envelope, ctx: ActorContext) {
    this.runningJob(r, 'resize a cargo');
    const cargo = this.cargo(r, name);
    if (!cargo.containers.some(isLive)) throw new CraneError('conflict', `cargo ${name} has ended: start a new one`);
    const remove = resize.remove ?? [];
    for (const x of remove) {
      const c = cargo.containers.find((y) => y.name === x);
      if (!c || !isLive(c)) throw new CraneError('not-found', `cargo ${name} has no running container '${x}'`);
    }
    const taken = new Set(cargo.containers.map((c) => c.name));
    const first = cargo.containers[0]!;
    const adds = (resize.add ?? []).map((c) => {
      let n = c.name;
      if (n !== undefined && taken.has(n)) throw new CraneError('conflict', `cargo ${name} already has a container '${n}'`);
      if (n === undefined) for (let i = cargo.containers.length; taken.has((n = String(i))); i++);
      taken.add(n!);
      return { name: n!, gpus: c.gpus ?? first.gpus.length, config: c.config ?? first.config };
    });
    const used = [...new Set(cargo.containers.filter(isLive).map((c) => c.node))];
    const placed = adds.length ? this.placeContainers(r, adds, used) : [];
    for (const x of remove) {
      const c = cargo.containers.find((y) => y.name === x)!;
      this.killContainer(r.view.id, c.node, c.id, false, ctx);
    }
    const fresh = adds.map((c, k) => ({ name: c.name, id: containerId(r.view.id, name, c.name), node: placed[k]!.node, gpus: placed[k]!.gpus, image: c.config.image, state: 'STARTING' as const, config: c.config }));
    cargo.containers.push(...fresh);
    this.s.saveJob(r);
    for (const c of fresh) this.runCargoContainer(r, cargo, c, ctx);
    if (!fresh.length) return cargoView(r.view.id, cargo);
    this.awaitCargo(r, cargo, msg, 'started');
    return DEFERRED;
  }

  // --- elasticity: shrink, release, pause -----------------------------------------------------

  /** Takes GPUs of a shrink back: they leave the job's grant and the AM is told. */
  private shrink(r: JobRecord, g: Grant, ctx: ActorContext): void {
    this.dropGrant(r, g);
    this.s.saveJob(r);
    this.emit(r, 'grant.shrunk', { removed: g, grant: r.view.acquired });
    ctx.log.info({ job: r.view.id, removed: showGrant(g) }, 'job shrunk');
    this.requestSchedule(ctx);
  }

  /**
   * Asks the AM for GPUs back by a deadline; those no container uses are taken at once, the rest
   * as their containers end (past the deadline, the cluster manager stops those cargos itself).
   */
  private requestShrink(r: JobRecord, g: Grant, reason: string, ctx: ActorContext): void {
    const v = r.view;
    const gpus = plus(v.reclaim?.gpus ?? {}, g);
    v.reclaim = { gpus, deadline: new Date(Date.now() + this.shrinkMs).toISOString(), reason };
    this.emit(r, 'shrink.requested', { gpus, deadline: v.reclaim.deadline, reason });
    const idle = minus(gpus, usedGpus(r));
    if (gpuCount(idle)) this.shrink(r, idle, ctx);
    this.s.saveJob(r);
  }

  /** Past a shrink's deadline the newest cargos on the GPUs asked for are stopped. */
  private checkReclaims(ctx: ActorContext): void {
    const now = Date.now();
    for (const r of this.s.jobs.values()) {
      const rc = r.view.reclaim;
      if (r.view.state !== 'RUNNING' || !rc || Date.parse(rc.deadline) > now) continue;
      for (const { cargo, c } of liveContainers(r)) {
        if (gpuCount(both(rc.gpus, { [c.node]: c.gpus })) === 0) continue;
        ctx.log.warn({ job: r.view.id, cargo: cargo.name }, 'shrink deadline passed: stopping the cargo');
        cargo.killed = true;
        for (const o of cargo.containers) if (isLive(o)) this.killContainer(r.view.id, o.node, o.id, true, ctx);
      }
    }
  }

  /** `POST /v1/jobs/{id}/release`: the AM gives GPUs back (default: every idle one above MIN). */
  private releaseGpus(r: JobRecord, gpus: Grant | undefined, ctx: ActorContext) {
    this.runningJob(r, 'release GPUs');
    const v = r.view;
    const idle = minus(minus(v.acquired, usedGpus(r)), v.reclaim?.gpus ?? {});
    let give: Grant;
    if (gpus) {
      const notHeld = minus(gpus, v.acquired);
      if (gpuCount(notHeld)) throw new CraneError('invalid', `job ${v.name} does not hold ${showGrant(notHeld)}`);
      const busy = both(gpus, usedGpus(r));
      if (gpuCount(busy)) throw new CraneError('conflict', `${showGrant(busy)} still run containers: stop them first`);
      give = gpus;
    } else {
      const spare = gpuCount(v.acquired) - v.spec.resources.min;
      give = {};
      let k = 0;
      for (const [node, xs] of Object.entries(idle)) for (const x of xs) if (k++ < spare) give[node] = [...(give[node] ?? []), x];
    }
    if (gpuCount(v.acquired) - gpuCount(give) < v.spec.resources.min) {
      throw new CraneError('conflict', `job ${v.name} must keep its MIN of ${v.spec.resources.min} GPUs`);
    }
    if (gpuCount(give)) this.shrink(r, give, ctx);
    return { released: give, grant: v.acquired };
  }

  /**
   * Pauses a running job: its containers are stopped, then all its GPUs go back and it is PAUSED.
   * A job paused for another one waits in the queue and resumes on its own; one its user paused
   * waits for `crane job resume`.
   */
  private pauseJob(r: JobRecord, why: { byUser: boolean; reason: string }, ctx: ActorContext) {
    const v = r.view;
    if (v.state === 'PAUSED' && !r.pausing) {
      if (why.byUser && !v.pausedByUser) {
        v.pausedByUser = true;
        this.s.queue = this.s.queue.filter((id) => id !== v.id);
        this.s.saveJob(r);
      }
      return { id: v.id, state: v.state };
    }
    this.runningJob(r, 'pause it');
    r.pausing = why;
    this.emit(r, 'pause.requested', { reason: why.reason });
    this.killContainers(r, false, ctx);
    this.s.saveJob(r);
    ctx.log.info({ job: v.id, reason: why.reason }, 'pausing job');
    return { id: v.id, state: 'PAUSING' };
  }

  private settlePause(r: JobRecord, ctx: ActorContext): void {
    const v = r.view;
    if (!r.pausing || v.am || liveContainers(r).length) return;
    if (r.killing) return this.finish(r, 'ERROR', ctx, { reason: 'killed' });
    const why = r.pausing;
    delete r.pausing;
    this.endRun(r, why.reason, ctx);
    this.release(r);
    v.acquired = {};
    delete v.reclaim;
    transition(v, 'PAUSED', new Date(), why.reason);
    this.grantChanged(r);
    if (why.byUser) v.pausedByUser = true;
    else this.s.queue.push(v.id);
    this.s.saveJob(r);
    this.publishState(v, ctx);
    this.emit(r, 'job.state', { state: 'PAUSED', reason: why.reason });
    for (const w of this.events.get(v.id) ?? []) w.end();
    this.events.delete(v.id);
    this.requestSchedule(ctx);
  }

  private resumeJob(r: JobRecord, ctx: ActorContext) {
    const v = r.view;
    if (v.state !== 'PAUSED') throw new CraneError('conflict', `job ${v.name} is ${v.state}: only a PAUSED job resumes`);
    if (v.pausedByUser) {
      delete v.pausedByUser;
      this.s.queue.push(v.id);
      this.s.saveJob(r);
      this.requestSchedule(ctx);
    }
    return { id: v.id, state: v.state };
  }

  /**
   * Accounting: call whenever the job's grant changed (started, grew, shrank, paused, resumed,
   * requeued, ended), before saving it; a segment is added only if its GPU count changed.
   */
  private grantChanged(r: JobRecord): void {
    noteGrant(r, Date.now());
  }

  private publishState(v: JobView, ctx: ActorContext) {
    ctx.tell(this.sub.jobEvent(v.id), 'job.state', { id: v.id, state: v.state, at: v.history.at(-1)!.at, exitCode: v.exitCode });
  }

  // --- scheduling ---------------------------------------------------------------------------

  /**
   * One scheduler pass for however many changes came in meanwhile: the pass is a message to
   * itself, queued behind what is already in the mailbox (64 job adds in flight make one pass,
   * not 64). A client that waits for its reply still sees the pass before its next request.
   */
  private requestSchedule(ctx: ActorContext): void {
    if (this.scheduleRequested) return;
    this.scheduleRequested = true;
    ctx.tell(this.sub.cm('schedule'), 'schedule', null);
  }

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
    this.elastic(reserved, held, users, ctx);
  }

  /** Shrinks or pauses running jobs for the reserved one, or grows them into idle GPUs. */
  private elastic(reserved: string | undefined, held: Record<string, number>, users: Record<string, { weight?: number; quotaGpus?: number }>, ctx: ActorContext): void {
    const running: ElasticJob[] = [];
    let elastic = false;
    for (const r of this.s.jobs.values()) {
      const v = r.view;
      if (v.state !== 'RUNNING' || r.killing) continue;
      const n = gpuCount(v.acquired);
      if (n < v.spec.resources.max) elastic = true;
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
    const free = () => {
      const em = this.earmark;
      const caps = this.capacities();
      return em ? caps.map((n) => ({ ...n, free: n.free.filter((g) => !em.gpus[n.name]?.includes(g)) })) : caps;
    };
    if (reserved && !this.earmark) {
      const head = this.queued(reserved);
      const rec = planReclaim({ nodes: free(), jobs: running, held, users, head });
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
    const grow = planGrow({ nodes: free(), jobs: running, held, users, queueWaits: !!reserved });
    for (const [id, g] of grow) {
      const r = this.s.jobs.get(id)!;
      this.addGrant(r, g);
      this.s.saveJob(r);
      this.emit(r, 'grant.grown', { added: g, grant: r.view.acquired });
      ctx.log.info({ job: id, added: showGrant(g) }, 'job grown');
    }
  }

  /** GPUs each user's jobs hold now, from the GPU owners (O(GPUs), not O(every job ever)). */
  private heldByUser(): Record<string, number> {
    const held: Record<string, number> = {};
    for (const n of this.s.nodes.values()) {
      for (const id of n.owners.values()) {
        const user = this.s.jobs.get(id)?.view.user;
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
