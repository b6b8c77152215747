import type { ActorContext, Envelope } from '../../bus/actor.js';
import type { StreamWriter } from '../../bus/stream.js';
import { subjects, type Subjects } from '../../bus/subjects.js';
import type { Grant, JobEvent, JobState, JobView } from '../protocol.js';
import { noteGrant } from './accounting.js';
import { isTerminal } from './job-states.js';
import { cargoView, freeGpus, liveContainers } from './cargos.js';
import { both, gpuCount, minus, plus, prune, showGrant } from './grant.js';
import { ClusterState, type JobRecord } from './state.js';

/**
 * What every part of the cluster manager shares about a job's containers and GPUs: the state, the
 * AM's event streams, stopping containers, giving GPUs back and taking them, and asking for a
 * scheduler pass. The cluster manager is one actor; its handlers are split over this class and its
 * subclasses (cargo-ops.ts, elastic-ops.ts, cluster-manager.ts) only to keep each file readable.
 */
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

export abstract class JobRuntime {
  protected readonly s: ClusterState;
  protected readonly sub: Subjects;
  protected readonly graceMs: number;
  protected readonly shrinkMs: number;
  /** AM event streams, per job. */
  protected readonly events = new Map<string, StreamWriter[]>();
  protected scheduleRequested = false;

  /** Stops the AM and every live cargo container of the job. */
  protected killContainers(r: JobRecord, force: boolean, ctx: ActorContext) {
    const am = r.view.am;
    if (am) this.killContainer(r.view.id, am.node, am.container, force, ctx);
    for (const { cargo, c } of liveContainers(r)) {
      cargo.killed = true;
      this.killContainer(r.view.id, c.node, c.id, force, ctx);
    }
  }


  /** Asks a node to stop one container; one the node does not run any more is reported gone. */
  protected killContainer(job: string, node: string, container: string, force: boolean, ctx: ActorContext) {
    ctx
      .ask(this.sub.node(node, 'kill'), 'kill', { container, force, graceMs: this.graceMs }, { timeout: 5_000 })
      .then((res: { gone?: boolean }) => {
        if (res?.gone) ctx.tell(this.sub.cm('container.exit'), 'container.exit', { job, container, node, exitCode: 137, error: 'container was gone' });
      })
      .catch((err) => ctx.log.warn({ err: String(err), job, container }, 'kill request failed'));
  }


  /**
   * The end of one run of a job (it ended, was requeued or paused): its cargo containers are
   * stopped and its token revoked. Their exits still come and free their GPUs.
   */
  protected endRun(r: JobRecord, reason: string, ctx: ActorContext): void {
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
  protected release(r: JobRecord): void {
    const v = r.view;
    const lingering = plus({}, Object.fromEntries(liveContainers(r).map(({ c }) => [c.node, c.gpus])));
    this.returnGpus(v.id, minus(v.acquired, lingering));
  }


  /** Frees GPUs the job owns on their nodes. */
  protected returnGpus(job: string, g: Grant): void {
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
  protected dropGrant(r: JobRecord, g: Grant): void {
    const v = r.view;
    const taken = both(v.acquired, g);
    v.acquired = minus(v.acquired, taken);
    this.returnGpus(v.id, taken);
    this.grantChanged(r);
    if (v.reclaim) {
      const left = minus(v.reclaim.gpus, taken);
      if (gpuCount(left) === 0) delete v.reclaim;
      else v.reclaim = { ...v.reclaim, gpus: left };
    }
  }


  /** Adds free GPUs to a running job's grant. */
  protected addGrant(r: JobRecord, g: Grant): void {
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



  /** Takes GPUs of a shrink back: they leave the job's grant and the AM is told. */
  protected shrink(r: JobRecord, g: Grant, ctx: ActorContext): void {
    this.dropGrant(r, g);
    this.s.saveJob(r);
    this.emit(r, 'grant.shrunk', { removed: g, grant: r.view.acquired });
    ctx.log.info({ job: r.view.id, removed: showGrant(g) }, 'job shrunk');
    this.requestSchedule(ctx);
  }



  /** Sends an event to the job's AM (every open event stream of the job). */
  protected emit(r: JobRecord, type: JobEvent['type'], body: object = {}): void {
    const ws = this.events.get(r.view.id);
    if (!ws?.length) return;
    const ev: JobEvent = { type, at: new Date().toISOString(), job: r.view.id, ...body };
    for (const w of ws) w.write(ev);
  }


  /** `GET /v1/jobs/{id}/events`: a hello with where the job stands, then events until it ends. */
  protected openEvents(r: JobRecord, msg: Envelope, ctx: ActorContext) {
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


  /**
   * Accounting: call whenever the job's grant changed (started, grew, shrank, paused, resumed,
   * requeued, ended), before saving it; a segment is added only if its GPU count changed.
   */
  protected grantChanged(r: JobRecord): void {
    noteGrant(r, Date.now());
  }


  protected publishState(v: JobView, ctx: ActorContext) {
    ctx.tell(this.sub.jobEvent(v.id), 'job.state', { id: v.id, state: v.state, at: v.history.at(-1)!.at, exitCode: v.exitCode });
  }



  /**
   * One scheduler pass for however many changes came in meanwhile: the pass is a message to
   * itself, queued behind what is already in the mailbox (64 job adds in flight make one pass,
   * not 64). A client that waits for its reply still sees the pass before its next request.
   */
  protected requestSchedule(ctx: ActorContext): void {
    if (this.scheduleRequested) return;
    this.scheduleRequested = true;
    ctx.tell(this.sub.cm('schedule'), 'schedule', null);
  }

  constructor(protected readonly o: ClusterManagerOptions) {
    this.s = o.state;
    this.sub = subjects(o.cluster);
    this.graceMs = o.killGraceMs ?? 10_000;
    this.shrinkMs = o.shrinkDeadlineMs ?? 30_000;
  }

  /** Ends a job (cluster-manager.ts). */
  protected abstract finish(r: JobRecord, state: JobState, ctx: ActorContext, o: { reason?: string; exitCode?: number }): void;
}
