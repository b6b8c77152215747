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
 *            needs — then, if all it needs is idle, idle GPUs above MIN for the jobs queued behind
 *            it as well (their MIN in total), so a queue that forms while jobs have grown is served
 *            in one round, not one job per pass;
 *   cargo    a cargo's containers inside its job's free GPUs, all or nothing, on as few nodes as
 *            possible (largest containers first, onto nodes the cargo already uses).
 */
import type { Grant, ResourceSpec } from '../protocol.js';
import type { UserShare } from './fair-share.js';
import { gpuCount, minus } from './grant.js';
import { byCodeUnit, FreeNodes, kindOf, type NodeCapacity, type QueuedJob } from './scheduler.js';

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

/**
 * GPUs to add to each job (job id -> grant); jobs that get nothing are absent. The job of the user
 * furthest below their share goes first, and takes as much of one node as it may before another
 * user would be further below theirs: fair, yet a pass over an empty cluster of 1,000 nodes is a
 * few hundred steps, not one per GPU.
 */
export function planGrow(i: GrowInput): Map<string, Grant> {
  const held = { ...i.held };
  const out = new Map<string, Grant>();
  const want = new Map<string, number>();
  for (const j of i.jobs) {
    if (j.pausing || gpuCount(j.reclaiming) > 0) continue;
    const quota = i.users[j.user]?.quotaGpus;
    const target = i.queueWaits ? j.resources.min : j.resources.max;
    const need = Math.min(target - gpuCount(j.grant), quota === undefined ? Infinity : quota - (held[j.user] ?? 0));
    if (need > 0) want.set(j.id, need);
  }
  if (want.size === 0) return out;
  // Nodes bucketed by free GPUs: the fullest node in O(GPUs per node).
  const free = new FreeNodes(i.nodes, byCodeUnit);
  const growing = i.jobs.filter((j) => want.has(j.id));
  for (;;) {
    // The job whose user is furthest below their share (then priority, then age) that can grow.
    let pick: ElasticJob | undefined;
    let second = Infinity;
    for (const j of growing) {
      if ((want.get(j.id) ?? 0) <= 0 || free.fullest(kindOf(j.image)) === undefined) continue;
      const quota = i.users[j.user]?.quotaGpus;
      if (quota !== undefined && (held[j.user] ?? 0) >= quota) continue;
      const sj = share(j.user, held, i.users);
      if (!pick) pick = j;
      else {
        const sp = share(pick.user, held, i.users);
        if (sj < sp || (sj === sp && (j.priority > pick.priority || (j.priority === pick.priority && j.seq < pick.seq)))) {
          if (pick.user !== j.user) second = Math.min(second, sp);
          pick = j;
        } else if (j.user !== pick.user) second = Math.min(second, sj);
      }
    }
    if (!pick) break;
    // A node the job holds most GPUs on first (its cargos fit better), else the fullest node.
    const own = Object.keys(pick.grant)
      .filter((n) => free.count(n) > 0 && free.serves(n, kindOf(pick!.image)))
      .sort((a, b) => (pick!.grant[b]?.length ?? 0) - (pick!.grant[a]?.length ?? 0) || a.localeCompare(b))[0];
    const node = own ?? free.fullest(kindOf(pick.image))!;
    // As many as keeps this user at or below the next user's share (at least one).
    const weight = Math.max(i.users[pick.user]?.weight ?? 1, 1e-9);
    const room = second === Infinity ? Infinity : Math.max(1, Math.floor((second - share(pick.user, held, i.users)) * weight));
    const k = Math.min(want.get(pick.id)!, free.count(node), room);
    const gpus = free.take(node, k);
    const add = out.get(pick.id) ?? {};
    add[node] = [...(add[node] ?? []), ...gpus];
    out.set(pick.id, add);
    held[pick.user] = (held[pick.user] ?? 0) + k;
    want.set(pick.id, want.get(pick.id)! - k);
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
  /**
   * The jobs queued behind it, in order (read only as far as needed). When the head's GPUs are all
   * idle ones, idle GPUs above MIN are taken back for these too, up to their MIN in total (jobs of
   * another kind of node, or over their user's quota, do not count).
   */
  behind?: Iterable<QueuedJob & { user: string }>;
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
  /** The age of the cargo using it; undefined: idle. */
  age?: number;
}

/**
 * What to take back so that `head` fits; undefined when nothing needs taking (it fits once the
 * GPUs already being taken back are free) or when even everything allowed would not make it fit.
 */
export function planReclaim(i: ReclaimInput): Reclaim | undefined {
  // Nothing to take from anyone (no job above MIN, none to pause): nothing to weigh either.
  const canGive = (j: ElasticJob) => !j.pausing && j.id !== i.head.id && (gpuCount(j.grant) - gpuCount(j.reclaiming) > j.resources.min || (j.user === i.head.user && j.priority < i.head.priority));
  if (!i.jobs.some(canGive)) return undefined;
  // The head fits when its eligible nodes have MIN GPUs free in all and APP on one of them (what
  // placeJob needs): counting free GPUs per eligible node is enough. `base` counts what is free and
  // what is being taken back already; a set of candidates is weighed in O(its size), not O(nodes).
  const base = new Map<string, number>();
  for (const n of i.nodes) if (eligible(n, i.head.image)) base.set(n.name, n.free.length);
  const counted = new Set<string>();
  for (const j of i.jobs) {
    for (const [n, gs] of Object.entries(j.reclaiming)) {
      for (const g of gs) {
        if (!base.has(n) || counted.has(`${n}/${g}`)) continue;
        counted.add(`${n}/${g}`);
        base.set(n, base.get(n)! + 1);
      }
    }
  }
  let baseTotal = 0;
  let baseBest = 0;
  for (const k of base.values()) {
    baseTotal += k;
    if (k > baseBest) baseBest = k;
  }
  const { app, min } = i.head.resources;
  /** Free counts as candidates are added: the head fits once `fitsNow()`. */
  const tally = () => {
    const m = new Map<string, number>();
    let total = baseTotal;
    let best = baseBest;
    return {
      add(c: Candidate) {
        const b = base.get(c.node);
        if (b === undefined || (counted.size > 0 && counted.has(`${c.node}/${c.gpu}`))) return;
        const k = (m.get(c.node) ?? b) + 1;
        m.set(c.node, k);
        total++;
        if (k > best) best = k;
      },
      fitsNow: () => total >= min && best >= app,
    };
  };
  const fits = (extra: Candidate[]) => {
    const t = tally();
    for (const c of extra) t.add(c);
    return t.fitsNow();
  };
  if (fits([])) return undefined;

  // GPUs above MIN, from the users furthest above their share, the newest jobs first.
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
      .filter(([node]) => base.has(node))
      .flatMap(([node, gs]) => gs.map((gpu) => ({ job: j, node, gpu, age: ages.get(`${node}/${gpu}`) })))
      // Idle GPUs first, then those of the newest cargos.
      .sort((a, b) => (a.age === undefined ? -1 : b.age === undefined ? 1 : b.age - a.age));
    for (const c of mine) {
      if (spare-- <= 0) break;
      surplus.push(c);
    }
    // Far more candidates than the head could need are never looked at (unless jobs behind it count).
    if (surplus.length > 4 * min + 64 && !i.behind) break;
  }
  let chosen: Candidate[] = [];
  const now = tally();
  for (const c of surplus) {
    chosen.push(c);
    now.add(c);
    if (now.fitsNow()) break;
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
  // Idle GPUs for the jobs behind it too, when the head needs nothing but idle GPUs (they are free
  // at once, and the next pass places the head and then them).
  if (i.behind && pause.length === 0 && chosen.every((c) => c.age === undefined)) {
    const taken = new Set(chosen);
    const idle = surplus.filter((c) => c.age === undefined && !taken.has(c));
    const kind = kindOf(i.head.image);
    const held = { ...i.held, [i.head.user]: (i.held[i.head.user] ?? 0) + i.head.resources.min };
    let want = 0;
    for (const j of idle.length ? i.behind : []) {
      if (want >= idle.length) break;
      if (j.id === i.head.id || kindOf(j.image) !== kind) continue;
      const quota = i.users[j.user]?.quotaGpus;
      if (quota !== undefined && (held[j.user] ?? 0) + j.resources.min > quota) continue;
      held[j.user] = (held[j.user] ?? 0) + j.resources.min;
      want += j.resources.min;
    }
    chosen.push(...idle.slice(0, want));
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
