import type { Grant, ResourceSpec } from '../protocol.js';

/** What the scheduler needs to know of a node. */
export interface NodeCapacity {
  name: string;
  /** Free GPU indices, ascending. */
  free: number[];
  total: number;
  docker: boolean;
  hostJobs: boolean;
}

export interface QueuedJob {
  id: string;
  resources: ResourceSpec;
  /** 'host' runs as a host process; anything else needs Docker. */
  image: string;
}

export interface Placement {
  job: string;
  /** Every GPU the job gets (MIN of them), node -> indices. */
  grant: Grant;
  /** Where the AM container runs, with its APP GPUs (a subset of the grant on that node). */
  am: { node: string; gpus: number[] };
}

function eligible(n: NodeCapacity, image: string): boolean {
  return image === 'host' ? n.hostJobs : n.docker;
}

/** Why a job could never run on these nodes even if all were idle, or undefined if it could. */
export function neverFits(job: Omit<QueuedJob, 'id'>, nodes: NodeCapacity[]): string | undefined {
  const ok = nodes.filter((n) => eligible(n, job.image));
  if (ok.length === 0) {
    return job.image === 'host'
      ? 'no node runs host jobs (nodes were started with --no-host-jobs)'
      : 'no node has a Docker engine to run container images';
  }
  const total = ok.reduce((s, n) => s + n.total, 0);
  if (job.resources.min > total) return `it needs ${job.resources.min} GPUs but the cluster has ${total}`;
  const biggest = Math.max(...ok.map((n) => n.total));
  if (job.resources.app > biggest) {
    return `its app manager needs ${job.resources.app} GPUs on one node but the largest node has ${biggest}`;
  }
  return undefined;
}

/**
 * Places one job all-or-nothing: the AM's APP GPUs on the best-fitting node (fewest free GPUs that
 * still hold them, so whole nodes stay free for large jobs), then the rest of MIN on the same node
 * first and then best fit across the others. `free` is updated in place when the job is placed.
 */
export function placeJob(job: QueuedJob, nodes: NodeCapacity[]): Placement | undefined {
  const ok = nodes.filter((n) => eligible(n, job.image));
  const { app, min } = job.resources;
  if (ok.reduce((s, n) => s + n.free.length, 0) < min) return undefined;
  const byFit = [...ok].sort((a, b) => a.free.length - b.free.length || a.name.localeCompare(b.name));
  const amNode = app === 0 ? byFit.find((n) => n.free.length >= min) ?? byFit.find((n) => n.free.length > 0) ?? byFit[0] : byFit.find((n) => n.free.length >= app);
  if (!amNode) return undefined;
  const grant: Grant = {};
  const take = (n: NodeCapacity, k: number) => {
    if (k <= 0) return;
    grant[n.name] = [...(grant[n.name] ?? []), ...n.free.slice(0, k)];
  };
  let need = min;
  const onAm = Math.min(amNode.free.length, need);
  take(amNode, onAm);
  need -= onAm;
  // The rest: nodes that hold all of it in one piece first (best fit), then the largest pieces.
  const rest = byFit.filter((n) => n !== amNode && n.free.length > 0);
  const whole = rest.find((n) => n.free.length >= need);
  const order = whole ? [whole] : [...rest].sort((a, b) => b.free.length - a.free.length);
  for (const n of order) {
    if (need <= 0) break;
    const k = Math.min(n.free.length, need);
    take(n, k);
    need -= k;
  }
  if (need > 0) return undefined;
  for (const [name, gpus] of Object.entries(grant)) {
    const n = nodes.find((x) => x.name === name)!;
    n.free = n.free.filter((g) => !gpus.includes(g));
  }
  return { job: job.id, grant, am: { node: amNode.name, gpus: (grant[amNode.name] ?? []).slice(0, app) } };
}
