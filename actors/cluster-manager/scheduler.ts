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

/** Host jobs and container jobs may run on different nodes. */
export type Kind = 'host' | 'docker';
const KINDS = ['host', 'docker'] as const;
export const kindOf = (image: string): Kind => (image === 'host' ? 'host' : 'docker');
const serves = (n: NodeCapacity, k: Kind): boolean => (k === 'host' ? n.hostJobs : n.docker);

/** What the nodes that could run a kind of job have, all idle: how many, GPUs in all, the most on one. */
export interface FitSummary {
  nodes: number;
  total: number;
  biggest: number;
}

/** Counts one node into `s` if it could run the image. */
export function countNode(s: FitSummary, image: string, n: Pick<NodeCapacity, 'total' | 'docker' | 'hostJobs'>): void {
  if (!(image === 'host' ? n.hostJobs : n.docker)) return;
  s.nodes++;
  s.total += n.total;
  s.biggest = Math.max(s.biggest, n.total);
}

export function fitSummary(nodes: NodeCapacity[], image: string): FitSummary {
  const s = { nodes: 0, total: 0, biggest: 0 };
  for (const n of nodes) countNode(s, image, n);
  return s;
}

/** Why a job could never run on these nodes even if all were idle, or undefined if it could. */
export function neverFits(job: Omit<QueuedJob, 'id'>, nodes: NodeCapacity[] | FitSummary): string | undefined {
  const { nodes: count, total, biggest } = Array.isArray(nodes) ? fitSummary(nodes, job.image) : nodes;
  if (count === 0) {
    return job.image === 'host'
      ? 'no node runs host jobs (nodes were started with --no-host-jobs)'
      : 'no node has a Docker engine to run container images';
  }
  if (job.resources.min > total) return `it needs ${job.resources.min} GPUs but the cluster has ${total}`;
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

/** `a.localeCompare(b)` (the default locale), as placeJob orders nodes, without its cost per call. */
export const byLocale = new Intl.Collator().compare;
/** Plain code-unit order (what `[...names].sort()` gives). */
export const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The positions of `nodes` in name order. The cluster manager passes the same nodes in the same
 * order pass after pass: the last order per comparator is kept, and a sort (O(N log N) string
 * compares) happens only when the names change.
 */
const lastOrder = new Map<(a: string, b: string) => number, { names: string[]; order: number[] }>();
function nameOrder(nodes: NodeCapacity[], cmp: (a: string, b: string) => number): number[] {
  const last = lastOrder.get(cmp);
  if (last && last.names.length === nodes.length && nodes.every((n, k) => n.name === last.names[k])) return last.order;
  const order = nodes.map((_, k) => k).sort((a, b) => cmp(nodes[a]!.name, nodes[b]!.name) || a - b);
  lastOrder.set(cmp, { names: nodes.map((n) => n.name), order });
  return order;
}

/**
 * Free GPUs of many nodes, indexed for placing many jobs in one pass: per kind of job, the nodes
 * bucketed by how many GPUs they have free, in name order within a bucket. Best fit, the fullest
 * node, the largest free piece cost O(GPUs per node) instead of a sort of every node per job, and
 * `place` decides exactly what placeJob decides on the same nodes. The nodes given are copied,
 * never changed.
 */
export class FreeNodes {
  /** The copies, in the order given. */
  private readonly given: NodeCapacity[];
  /** The same copies in name order (ties between equal free counts go to the first). */
  private readonly sorted: NodeCapacity[];
  private readonly at = new Map<string, number>();
  /** kind -> free count -> positions in `sorted` of the nodes serving that kind, ascending. */
  private readonly buckets: Record<Kind, number[][]> = { host: [], docker: [] };
  /** Free GPUs on the nodes serving each kind. */
  readonly total: Record<Kind, number> = { host: 0, docker: 0 };

  constructor(nodes: NodeCapacity[], order: (a: string, b: string) => number = byLocale) {
    this.given = nodes.map((n) => ({ ...n, free: [...n.free] }));
    this.sorted = nameOrder(this.given, order).map((k) => this.given[k]!);
    this.sorted.forEach((n, i) => {
      this.at.set(n.name, i);
      this.file(i, +1);
    });
  }

  /** The nodes with what is free on them now, in the order given. */
  nodes(): NodeCapacity[] {
    return this.given;
  }

  count(name: string): number {
    const i = this.at.get(name);
    return i === undefined ? 0 : this.sorted[i]!.free.length;
  }

  serves(name: string, kind: Kind): boolean {
    const i = this.at.get(name);
    return i !== undefined && serves(this.sorted[i]!, kind);
  }

  /** Most GPUs free on one node serving `kind` (0 if none). */
  best(kind: Kind): number {
    const b = this.buckets[kind];
    for (let c = b.length - 1; c > 0; c--) if (b[c]?.length) return c;
    return 0;
  }

  /** The node with the fewest GPUs free but at least one (whole nodes stay free for large jobs). */
  fullest(kind: Kind): string | undefined {
    const i = this.first(kind, 1);
    return i === undefined ? undefined : this.sorted[i]!.name;
  }

  /** Takes the `k` lowest free GPUs of a node. */
  take(name: string, k: number): number[] {
    const i = this.at.get(name)!;
    const n = this.sorted[i]!;
    this.file(i, -1);
    const gpus = n.free.slice(0, k);
    n.free = n.free.slice(k);
    this.file(i, +1);
    return gpus;
  }

  /** Gives GPUs back to a node. */
  give(name: string, gpus: number[]): void {
    const i = this.at.get(name)!;
    const n = this.sorted[i]!;
    this.file(i, -1);
    n.free = [...n.free, ...gpus].sort((a, b) => a - b);
    this.file(i, +1);
  }

  /** placeJob on these nodes: the same placement, the GPUs taken; undefined if it does not fit. */
  place(job: QueuedJob): Placement | undefined {
    const kind = kindOf(job.image);
    const { app, min } = job.resources;
    if (this.total[kind] < min) return undefined;
    // The AM's node: the fewest free GPUs that hold APP (for APP = 0: MIN, else any, else any node).
    const am = app === 0 ? (this.first(kind, min) ?? this.first(kind, 1) ?? this.first(kind, 0)) : this.first(kind, app);
    if (am === undefined) return undefined;
    const takes: Array<[number, number]> = [];
    let need = min;
    const onAm = Math.min(this.sorted[am]!.free.length, need);
    if (onAm > 0) takes.push([am, onAm]);
    need -= onAm;
    // The rest: the best-fitting node that holds all of it, else the largest pieces first.
    const whole = this.first(kind, Math.max(need, 1), am);
    if (whole !== undefined) {
      if (need > 0) takes.push([whole, need]);
      need = 0;
    }
    const b = this.buckets[kind];
    for (let c = b.length - 1; c > 0 && need > 0; c--) {
      for (const i of b[c] ?? []) {
        if (i === am) continue;
        const k = Math.min(c, need);
        takes.push([i, k]);
        need -= k;
        if (need <= 0) break;
      }
    }
    if (need > 0) return undefined;
    const grant: Grant = {};
    for (const [i, k] of takes) grant[this.sorted[i]!.name] = this.take(this.sorted[i]!.name, k);
    const amName = this.sorted[am]!.name;
    return { job: job.id, grant, am: { node: amName, gpus: (grant[amName] ?? []).slice(0, app) } };
  }

  /** Position of the first node (fewest free, then name) serving `kind` with at least `k` free. */
  private first(kind: Kind, k: number, except?: number): number | undefined {
    const b = this.buckets[kind];
    for (let c = k; c < b.length; c++) {
      for (const i of b[c] ?? []) if (i !== except) return i;
    }
    return undefined;
  }

  private file(i: number, sign: 1 | -1): void {
    const n = this.sorted[i]!;
    const c = n.free.length;
    for (const kind of KINDS) {
      if (!serves(n, kind)) continue;
      const b = (this.buckets[kind][c] ??= []);
      let lo = 0;
      let hi = b.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (b[mid]! < i) lo = mid + 1;
        else hi = mid;
      }
      if (sign > 0) b.splice(lo, 0, i);
      else if (b[lo] === i) b.splice(lo, 1);
      this.total[kind] += sign * c;
    }
  }
}
