import { DEFERRED, type ActorContext, type Envelope } from '../../bus/actor.js';
import { CraneError } from '../../bus/errors.js';
import type { CargoResize, CargoSpec, ContainerExit, Grant, RunRequest } from '../protocol.js';
import { cargoView, containerId, findContainer, freeGpus, isLive } from './cargos.js';
import { placeCargo } from './elastic.js';
import { both, gpuCount, minus, prune, showGrant } from './grant.js';
import type { CargoRecord, JobRecord } from './state.js';
import { JobRuntime } from './job-runtime.js';

/** The cargo handlers of the cluster manager: create, resize, kill, and their containers' lives. */
export abstract class CargoOps extends JobRuntime {
  /** Cargo creates, resizes and kills answered once their containers have started or ended. */
  protected readonly cargoReplies = new Map<string, Array<{ msg: Envelope; until: 'started' | 'ended' }>>();


  protected cargo(r: JobRecord, name: string): CargoRecord {
    const c = (r.cargos ?? []).find((x) => x.name === name);
    if (!c) throw new CraneError('not-found', `job ${r.view.name} has no cargo '${name}'`);
    return c;
  }


  protected runningJob(r: JobRecord, what: string): void {
    const v = r.view;
    if (v.state !== 'RUNNING' || r.killing || r.pausing) {
      throw new CraneError('conflict', `cannot ${what}: job ${v.name} is ${r.killing ? 'being killed' : r.pausing ? 'being paused' : v.state}`);
    }
  }


  /** Places every container in the job's free GPUs or none; throws a clear line when they do not fit. */
  protected placeContainers(r: JobRecord, specs: CargoSpec['containers'], prefer: string[] = []): Array<{ node: string; gpus: number[] }> {
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


  protected createCargo(r: JobRecord, spec: CargoSpec, msg: Envelope, ctx: ActorContext) {
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


  protected runCargoContainer(r: JobRecord, cargo: CargoRecord, c: CargoRecord['containers'][number], ctx: ActorContext): void {
    const v = r.view;
    const req: RunRequest = { job: v.id, container: c.id, jobName: v.name, user: v.user, config: c.config, gpus: c.gpus, graceMs: this.graceMs, cargo: cargo.name };
    ctx.ask(this.sub.node(c.node, 'run'), 'run', req, { timeout: 60_000 }).then(
      () => ctx.tell(this.sub.cm('container.started'), 'container.started', { job: v.id, container: c.id }),
      (err: CraneError) => ctx.tell(this.sub.cm('container.exit'), 'container.exit', { job: v.id, container: c.id, node: c.node, exitCode: -1, error: `could not start: ${err.message}`, neverStarted: true }),
    );
  }


  protected containerStarted(b: { job: string; container: string }, ctx: ActorContext) {
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


  protected cargoContainerExit(r: JobRecord, cargo: CargoRecord, c: CargoRecord['containers'][number], e: ContainerExit, ctx: ActorContext) {
    if (!isLive(c)) return { ok: true };
    const failedToStart = !!e.neverStarted;
    c.state = e.exitCode === 0 && !e.error ? 'DONE' : 'ERROR';
    c.exitCode = e.exitCode;
    if (e.error) c.reason ??= e.error;
    else if (e.exitCode !== 0) c.reason ??= `exited with code ${e.exitCode}`;
    c.endedAt = new Date().toISOString();
    const v = r.view;
    // A container of a run that ended kept its GPUs until now: they are free.
    this.returnGpus(v.id, minus({ [c.node]: c.gpus }, v.state === 'RUNNING' ? v.acquired : {}));
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
  protected awaitCargo(r: JobRecord, cargo: CargoRecord, msg: Envelope, until: 'started' | 'ended'): void {
    const key = `${r.view.id}/${cargo.name}`;
    this.cargoReplies.set(key, [...(this.cargoReplies.get(key) ?? []), { msg, until }]);
  }


  protected settleCargoReplies(r: JobRecord, cargo: CargoRecord, ctx: ActorContext): void {
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


  protected killCargo(r: JobRecord, name: string, force: boolean, msg: Envelope, ctx: ActorContext) {
    const cargo = this.cargo(r, name);
    if (!cargo.containers.some(isLive)) return cargoView(r.view.id, cargo);
    cargo.killed = true;
    this.s.saveJob(r);
    for (const c of cargo.containers) if (isLive(c)) this.killContainer(r.view.id, c.node, c.id, force, ctx);
    this.awaitCargo(r, cargo, msg, 'ended');
    return DEFERRED;
  }


  /** Adds and removes containers of a running cargo; the others keep running. */
  protected resizeCargo(r: JobRecord, name: string, resize: CargoResize, msg: Envelope, ctx: ActorContext) {
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

  /** A pause under way settles once its containers are gone (elastic-ops.ts). */
  protected abstract settlePause(r: JobRecord, ctx: ActorContext): void;
}
