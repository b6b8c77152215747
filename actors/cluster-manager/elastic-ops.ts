import type { ActorContext } from '../../bus/actor.js';
import { CraneError } from '../../bus/errors.js';
import type { Grant } from '../protocol.js';
import { transition } from './job-states.js';
import { isLive, liveContainers, usedGpus } from './cargos.js';
import { both, gpuCount, minus, plus, showGrant } from './grant.js';
import type { JobRecord } from './state.js';
import { CargoOps } from './cargo-ops.js';

/** The elastic handlers of the cluster manager: shrink, release, pause and resume. */
export abstract class ElasticOps extends CargoOps {

  /**
   * Asks the AM for GPUs back by a deadline; those no container uses are taken at once, the rest
   * as their containers end (past the deadline, the cluster manager stops those cargos itself).
   */
  protected requestShrink(r: JobRecord, g: Grant, reason: string, ctx: ActorContext): void {
    const v = r.view;
    const gpus = plus(v.reclaim?.gpus ?? {}, g);
    v.reclaim = { gpus, deadline: new Date(Date.now() + this.shrinkMs).toISOString(), reason };
    this.emit(r, 'shrink.requested', { gpus, deadline: v.reclaim.deadline, reason });
    const idle = minus(gpus, usedGpus(r));
    if (gpuCount(idle)) this.shrink(r, idle, ctx);
    this.s.saveJob(r);
  }


  /** Past a shrink's deadline the newest cargos on the GPUs asked for are stopped. */
  protected checkReclaims(ctx: ActorContext): void {
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
  protected releaseGpus(r: JobRecord, gpus: Grant | undefined, ctx: ActorContext) {
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
  protected pauseJob(r: JobRecord, why: { byUser: boolean; reason: string }, ctx: ActorContext) {
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


  protected override settlePause(r: JobRecord, ctx: ActorContext): void {
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


  protected resumeJob(r: JobRecord, ctx: ActorContext) {
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
}
