/**
 * Elastic policy: pure functions from (nodes, running jobs, the queue's reservation) to decisions,
 * beside the queue policy of fair-share.ts.
 *
 *   grow     idle GPUs go to running jobs below MAX, the user furthest below their fair share
 *            first, but only while no queued job waits for GPUs (a job below MIN — it lost a node
 *            its cargos ran on — is topped up even then);
 *   reclaim  when the job holding the reservation cannot start, GPUs above MIN of running jobs are
 *            taken back (from the users furthest above their share, idle GPUs first, then the
 *            newest cargos'); if that is not enough, lower-priority jobs of the same user are
 *            paused. Nothing is taken unless it makes the reserved job fit, and no more than it
 *            needs;
 *   cargo    a cargo's containers inside its job's free GPUs, all or nothing, on as few nodes as
 *            possible (largest containers first, onto nodes the cargo already uses).
 */
import type { Grant, ResourceSpec } from '../protocol.js';
import type { UserShare } from './fair-share.js';
import { gpuCount, holds, minus } from './grant.js';
import { placeJob, type NodeCapacity, type QueuedJob } from './scheduler.js';

export interface ElasticJob {
  id: string;
  user: string;
  priority: number;
  /** Arrival order. */
  seq: number;
  resources: ResourceSpec;
  /** The AM's image: it decides which nodes the job's GPUs may be on. */
  image: string;
  grant: Grant;
  /** The AM's GPUs: only a pause takes them. */
  am: Grant;
  /** GPUs cargo containers use, with their cargo's creation order (higher: newer). */
  cargoGpus: Array<{ node: string; gpu: number; age: number }>;
  /** GPUs being taken back already (a shrink under way). */
  reclaiming: Grant;
  /** A pause is under way. */
  pausing?: boolean;
}

const eligible = (n: NodeCapacity, image: string) => (image === 'host' ? n.hostJobs : n.docker);
const share = (user: string, held: Record<string, number>, users: Record<string, UserShare>) => (held[user] ?? 0) / Math.max(users[user]?.weight ?? 1, 1e-9);

// --- grow -----------------------------------------------------------------------------------

export interface GrowInput {
  /** Free GPUs now (after the queue's placements). */
  nodes: NodeCapacity[];
  jobs: ElasticJob[];
  held: Record<string, number>;
  users: Record<string, UserShare>;
  /** A queued job waits for GPUs: then only jobs below MIN grow (to MIN). */
  queueWaits: boolean;
}

/** GPUs to add to each job (job id -> grant); jobs that get nothing are absent. */
export function planGrow(i: GrowInput): Map<string, Grant> {
  const nodes = i.nodes.map((n) => ({ ...n, free: [...n.free] }));
  const held = { ...i.held };
  const out = new Map<string, Grant>();
  const want = new Map<string, number>();
  for (const j of i.jobs) {
    if (j.pausing || gpuCount(j.reclaiming) > 0) continue;
    const target = i.queueWaits ? j.resources.min : j.resources.max;
    const need = target - gpuCount(j.grant);
    if (need > 0) want.set(j.id, need);
  }
  const canGrow = (j: ElasticJob) => {
    const quota = i.users[j.user]?.quotaGpus;
    return (want.get(j.id) ?? 0) > 0 && (quota === undefined || (held[j.user] ?? 0) < quota) && nodes.some((n) => n.free.length > 0 && eligible(n, j.image));
  };
  for (;;) {
    // One GPU at a time to the job whose user is furthest below their share: growth is shared fairly.
    let pick: ElasticJob | undefined;
    for (const j of i.jobs) {
      if (!canGrow(j)) continue;
      if (!pick) pick = j;
      else {
        const d = share(j.user, held, i.users) - share(pick.user, held, i.users);
        if (d < 0 || (d === 0 && (j.priority > pick.priority || (j.priority === pick.priority && j.seq < pick.seq)))) pick = j;
      }
    }
    if (!pick) break;
    // A node the job holds most GPUs on first (its cargos fit better), else the fullest node.
    let best: (typeof nodes)[number] | undefined;
    for (const n of nodes) {
      if (n.free.length === 0 || !eligible(n, pick.image)) continue;
      if (!best) best = n;
      else {
        const a = pick.grant[n.name]?.length ?? 0;
        const b = pick.grant[best.name]?.length ?? 0;
        if (a > b || (a === b && (n.free.length < best.free.length || (n.free.length === best.free.length && n.name < best.name)))) best = n;
      }
    }
    const gpu = best!.free.shift()!;
    const add = out.get(pick.id) ?? {};
    add[best!.name] = [...(add[best!.name] ?? []), gpu];
    out.set(pick.id, add);
    held[pick.user] = (held[pick.user] ?? 0) + 1;
    want.set(pick.id, want.get(pick.id)! - 1);
  }
  return out;
}

// --- reclaim ----------------------------------------------------------------------------------

export interface ReclaimInput {
  /** Free GPUs now. */
  nodes: NodeCapacity[];
  jobs: ElasticJob[];
  held: Record<string, number>;
  users: Record<string, UserShare>;
  /** The queued job holding the reservation. */
  head: QueuedJob & { user: string; priority: number };
}

export interface Reclaim {
  /** GPUs to take back from each job (it keeps at least MIN). */
  take: Map<string, Grant>;
  /** Jobs to pause (all their GPUs). */
  pause: string[];
}

interface Candidate {
  job: ElasticJob;
  node: string;
  gpu: number;
}

/**
 * What to take back so that `head` fits; undefined when nothing needs taking (it fits once the
 * GPUs already being taken back are free) or when even everything allowed would not make it fit.
 */
export function planReclaim(i: ReclaimInput): Reclaim | undefined {
  const base = i.nodes.map((n) => ({ ...n, free: [...n.free] }));
  const byName = new Map(base.map((n) => [n.name, n]));
  const give = (pool: Map<string, NodeCapacity>, node: string, gpu: number) => {
    const n = pool.get(node);
    if (n && !n.free.includes(gpu)) n.free.push(gpu);
  };
  for (const j of i.jobs) for (const [n, gs] of Object.entries(j.reclaiming)) for (const g of gs) give(byName, n, g);
  const fits = (extra: Candidate[]) => {
    const pool = new Map([...byName].map(([k, n]) => [k, { ...n, free: [...n.free] }]));
    for (const c of extra) give(pool, c.node, c.gpu);
    for (const n of pool.values()) n.free.sort((a, b) => a - b);
    return placeJob({ ...i.head }, [...pool.values()]) !== undefined;
  };
  if (fits([])) return undefined;

  // GPUs above MIN, from the users furthest above their share, the newest jobs first.
  const ok = (c: { node: string }) => {
    const n = byName.get(c.node);
    return !!n && eligible(n, i.head.image);
  };
  const donors = i.jobs
    .filter((j) => !j.pausing && j.id !== i.head.id)
    .sort((a, b) => share(b.user, i.held, i.users) - share(a.user, i.held, i.users) || b.seq - a.seq);
  const surplus: Candidate[] = [];
  for (const j of donors) {
    let spare = gpuCount(j.grant) - gpuCount(j.reclaiming) - j.resources.min;
    if (spare <= 0) continue;
    const ages = new Map(j.cargoGpus.map((c) => [`${c.node}/${c.gpu}`, c.age]));
    const free = minus(minus(j.grant, j.am), j.reclaiming);
    const mine = Object.entries(free)
      .flatMap(([node, gs]) => gs.map((gpu) => ({ job: j, node, gpu, age: ages.get(`${node}/${gpu}`) })))
      .filter(ok)
      // Idle GPUs first, then those of the newest cargos.
      .sort((a, b) => (a.age === undefined ? -1 : b.age === undefined ? 1 : b.age - a.age));
    for (const c of mine) {
      if (spare-- <= 0) break;
      surplus.push(c);
    }
  }
  let chosen: Candidate[] = [];
  for (const c of surplus) {
    chosen.push(c);
    if (fits(chosen)) break;
  }
  const pause: ElasticJob[] = [];
  if (!fits(chosen)) {
    // Lower-priority jobs of the same user, the lowest and newest first: all their GPUs.
    const victims = i.jobs
      .filter((j) => !j.pausing && j.user === i.head.user && j.priority < i.head.priority)
      .sort((a, b) => a.priority - b.priority || b.seq - a.seq);
    for (const v of victims) {
      pause.push(v);
      chosen = chosen.filter((c) => c.job !== v);
      for (const [node, gs] of Object.entries(v.grant)) for (const gpu of gs) chosen.push({ job: v, node, gpu });
      if (fits(chosen)) break;
    }
    if (!fits(chosen)) return undefined;
  }
  // No more than needed: drop what the fit does not depend on (the newest choices first).
  const paused = new Set(pause.map((p) => p.id));
  for (let k = chosen.length - 1; k >= 0; k--) {
    const c = chosen[k]!;
    if (paused.has(c.job.id)) continue;
    const without = chosen.filter((_, x) => x !== k);
    if (fits(without)) chosen = without;
  }
  const take = new Map<string, Grant>();
  for (const c of chosen) {
    if (paused.has(c.job.id)) continue;
    const g = take.get(c.job.id) ?? {};
    g[c.node] = [...(g[c.node] ?? []), c.gpu].sort((a, b) => a - b);
    take.set(c.job.id, g);
  }
  return { take, pause: pause.map((p) => p.id) };
}

// --- cargo placement ------------------------------------------------------------------------

export interface CargoContainerNeed {
  gpus: number;
  image: string;
}

/**
 * Places a cargo's containers on the job's free GPUs (`free`: node -> indices, every node of the
 * job's grant, with [] where none is free: a container without GPUs goes there too), all or
 * nothing; each container's GPUs on one node; as few nodes as possible. Returns one placement per
 * container, in the order given, or undefined when they do not all fit.
 */
export function placeCargo(free: Grant, containers: CargoContainerNeed[], nodeServes: (node: string, image: string) => boolean): Array<{ node: string; gpus: number[] }> | undefined {
  const left = new Map(Object.entries(free).map(([n, gs]) => [n, [...gs].sort((a, b) => a - b)]));
  const nodes = [...left.keys()];
  const used = new Set<string>();
  const out: Array<{ node: string; gpus: number[] } | undefined> = containers.map(() => undefined);
  const order = containers.map((c, k) => ({ c, k })).sort((a, b) => b.c.gpus - a.c.gpus || a.k - b.k);
  let rest = containers.reduce((a, c) => a + c.gpus, 0);
  const room = (n: string) => left.get(n)!.length;
  const tightest = (ns: string[]) => [...ns].sort((a, b) => room(a) - room(b) || a.localeCompare(b))[0];
  for (const { c, k } of order) {
    const fitting = nodes.filter((n) => room(n) >= c.gpus && nodeServes(n, c.image));
    // A node the cargo uses already (the tightest fit); else the tightest node that holds all
    // that is left of the cargo; else the node with the most free GPUs (the fewest nodes).
    const reuse = tightest(fitting.filter((n) => used.has(n)));
    const whole = tightest(fitting.filter((n) => room(n) >= rest));
    const most = [...fitting].sort((a, b) => room(b) - room(a) || a.localeCompare(b))[0];
    const node = reuse ?? whole ?? most;
    rest -= c.gpus;
    if (node === undefined) return undefined;
    const gs = left.get(node)!;
    out[k] = { node, gpus: gs.splice(0, c.gpus) };
    used.add(node);
  }
  return out as Array<{ node: string; gpus: number[] }>;
}

/** True if `g` holds every GPU of `part`. */
export function within(part: Grant, g: Grant): boolean {
  return Object.entries(part).every(([n, gs]) => gs.every((x) => holds(g, n, x)));
}
