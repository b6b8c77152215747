/** A job's cargos and containers: views and GPU bookkeeping (pure functions over a JobRecord). */
import type { CargoState, CargoView, Grant } from '../protocol.js';
import { minus, plus } from './grant.js';
import type { CargoContainerRecord, CargoRecord, JobRecord } from './state.js';

export const isLive = (c: { state: string }): boolean => c.state === 'STARTING' || c.state === 'RUNNING';

/** A cargo's state, from its containers. */
export function cargoState(c: CargoRecord): CargoState {
  if (c.containers.some((x) => x.state === 'STARTING')) return 'STARTING';
  if (c.containers.some((x) => x.state === 'RUNNING')) return 'RUNNING';
  if (c.killed) return 'KILLED';
  return c.containers.every((x) => x.state === 'DONE') ? 'DONE' : 'ERROR';
}

export function cargoView(job: string, c: CargoRecord): CargoView {
  return {
    name: c.name,
    job,
    state: cargoState(c),
    createdAt: c.createdAt,
    containers: c.containers.map(({ config: _c, ...v }) => v),
  };
}

export function liveContainers(r: JobRecord): Array<{ cargo: CargoRecord; c: CargoContainerRecord }> {
  return (r.cargos ?? []).flatMap((cargo) => cargo.containers.filter(isLive).map((c) => ({ cargo, c })));
}

export function findContainer(r: JobRecord, id: string): { cargo: CargoRecord; c: CargoContainerRecord } | undefined {
  for (const cargo of r.cargos ?? []) {
    const c = cargo.containers.find((x) => x.id === id);
    if (c) return { cargo, c };
  }
  return undefined;
}

/** The AM's GPUs while it runs. */
export function amGpus(r: JobRecord): Grant {
  const am = r.view.am;
  return am && am.gpus.length ? { [am.node]: am.gpus } : {};
}

/** GPUs the job's containers use now: the AM's and those of live cargo containers. */
export function usedGpus(r: JobRecord): Grant {
  let g = amGpus(r);
  for (const { c } of liveContainers(r)) if (c.gpus.length) g = plus(g, { [c.node]: c.gpus });
  return g;
}

/**
 * Where new cargo containers may go: the job's GPUs that no container uses and no shrink is taking
 * back, for every node of its grant ([] where none is free: a container without GPUs fits there).
 */
export function freeGpus(r: JobRecord): Grant {
  const free = minus(minus(r.view.acquired, usedGpus(r)), r.view.reclaim?.gpus ?? {});
  const out: Grant = {};
  for (const node of Object.keys(r.view.acquired)) out[node] = free[node] ?? [];
  if (r.view.am && !out[r.view.am.node]) out[r.view.am.node] = [];
  return out;
}

/** A cargo container's id on its node: job prefix, cargo and container name. */
export const containerId = (job: string, cargo: string, name: string): string => `${job.slice(0, 8)}-${cargo}-${name}`;
