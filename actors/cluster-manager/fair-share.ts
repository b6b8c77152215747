/**
 * The queue policy: which queued jobs start now, and why the others wait. A pure function of
 * (queue, nodes, what each user holds, users' weights and quotas) — tested and benchmarked alone.
 *
 *   1. Between users: weighted fair share on GPUs (dominant-resource fairness with one resource):
 *      the next job considered is the head of the user whose held GPUs ÷ weight is lowest.
 *   2. Within a user: higher --priority first, then arrival order (FIFO). A user's jobs never
 *      overtake each other: when a user's head waits, the rest of that user's jobs wait behind it.
 *   3. Quotas: a user never holds more than their quota; a job that would pass it waits.
 *   4. No starvation: the first job that does not fit holds a reservation on the GPUs that are
 *      free for it now; a later job may start (backfill) only on GPUs the reservation cannot use,
 *      so it never delays the reserved job. Without run-time estimates that is the only backfill
 *      that is safe.
 */
import { FreeNodes, kindOf, type Kind, type NodeCapacity, type Placement, type QueuedJob } from './scheduler.js';

export interface QueueEntry extends QueuedJob {
  user: string;
  /** Shown in reasons (default: the id's first 8 characters). */
  name?: string;
  /** Higher first within a user (default 0). */
  priority: number;
  /** Arrival order. */
  seq: number;
}

export interface UserShare {
  /** Fair-share weight (default 1): a user of weight 2 is entitled to twice the GPUs. */
  weight?: number;
  /** Most GPUs the user may hold at once (undefined: no limit). */
  quotaGpus?: number;
}

export interface PlanInput {
  queue: QueueEntry[];
  nodes: NodeCapacity[];
  /** GPUs each user's running jobs hold now. */
  held: Record<string, number>;
  users: Record<string, UserShare>;
}

export interface Waiting {
  /** 1-based place in the order the policy considers jobs. */
  position: number;
  reason: string;
}

export interface Plan {
  placements: Placement[];
  waiting: Map<string, Waiting>;
  /** The job holding the reservation, if one waits for GPUs. */
  reserved?: string;
  /** How many of `placements` came before the reservation (the rest are backfill). */
  placedBeforeReservation?: number;
  /** The nodes with the placements' GPUs taken (copies: the input is not changed). */
  nodes: NodeCapacity[];
}

const label = (j: QueueEntry) => j.name ?? j.id.slice(0, 8);

/**
 * Why each queued job waits, in the order given, made a Map only when first read: a pass over
 * 10,000 queued jobs pays for two arrays, not for a Map that is read only when someone lists jobs.
 */
class WaitList extends Map<string, Waiting> {
  private pending: string[] = [];

  /** The next place in the order: `id`, waiting for `reason`. */
  push(id: string, reason: string): void {
    this.pending.push(id, reason);
  }

  private fill(): void {
    const p = this.pending;
    if (p.length === 0) return;
    this.pending = [];
    const at = super.size;
    for (let k = 0; k < p.length; k += 2) super.set(p[k]!, { position: at + k / 2 + 1, reason: p[k + 1]! });
  }

  override get size(): number {
    return super.size + this.pending.length / 2;
  }
  override get(id: string): Waiting | undefined {
    this.fill();
    return super.get(id);
  }
  override has(id: string): boolean {
    this.fill();
    return super.has(id);
  }
  override set(id: string, w: Waiting): this {
    this.fill();
    return super.set(id, w);
  }
  override delete(id: string): boolean {
    this.fill();
    return super.delete(id);
  }
  override clear(): void {
    this.pending = [];
    super.clear();
  }
  override forEach(f: (w: Waiting, id: string, m: Map<string, Waiting>) => void, self?: unknown): void {
    this.fill();
    super.forEach(f, self);
  }
  override entries(): MapIterator<[string, Waiting]> {
    this.fill();
    return super.entries();
  }
  override keys(): MapIterator<string> {
    this.fill();
    return super.keys();
  }
  override values(): MapIterator<Waiting> {
    this.fill();
    return super.values();
  }
  override [Symbol.iterator](): MapIterator<[string, Waiting]> {
    return this.entries();
  }
}

/**
 * The plan works on an index of the free GPUs (FreeNodes): a job that cannot fit is turned down in
 * O(1) from the free totals, one that can is placed in O(GPUs per node), so a pass stays cheap for
 * a long queue on many nodes.
 */
export function planQueue(input: PlanInput): Plan {
  const pool = new FreeNodes(input.nodes);
  const held = { ...input.held };
  const byUser = new Map<string, { jobs: QueueEntry[]; next: number }>();
  for (const j of input.queue) {
    const q = byUser.get(j.user);
    if (q) q.jobs.push(j);
    else byUser.set(j.user, { jobs: [j], next: 0 });
  }
  for (const q of byUser.values()) q.jobs.sort((a, b) => b.priority - a.priority || a.seq - b.seq);

  const placements: Placement[] = [];
  const waiting = new WaitList();
  let reservation: { job: QueueEntry; kind: Kind; total: number; best: number } | undefined;
  let placedBeforeReservation: number | undefined;
  const wait = (j: QueueEntry, reason: string) => waiting.push(j.id, reason);
  const share = (u: string) => (held[u] ?? 0) / Math.max(input.users[u]?.weight ?? 1, 1e-9);

  while (byUser.size > 0) {
    // The user furthest below their fair share goes next (ties: the earlier head).
    let user = '';
    let head: QueueEntry | undefined;
    for (const [u, q] of byUser) {
      const h = q.jobs[q.next]!;
      if (!head || share(u) < share(user) || (share(u) === share(user) && h.seq < head.seq)) [user, head] = [u, h];
    }
    const q = byUser.get(user)!;
    const job = head!;
    const blockRest = (why: string) => {
      const reason = `behind your job ${label(job)} (${why})`;
      for (let k = q.next + 1; k < q.jobs.length; k++) wait(q.jobs[k]!, reason);
      byUser.delete(user);
    };

    const quota = input.users[user]?.quotaGpus;
    if (quota !== undefined && (held[user] ?? 0) + job.resources.min > quota) {
      wait(job, `over quota: you hold ${held[user] ?? 0} of ${quota} GPUs and it needs ${job.resources.min}`);
      blockRest('over quota');
      continue;
    }

    const p = pool.place(job);
    // A backfill must leave the reservation what was free for it (in all, and on its best node).
    if (p && reservation) {
      const r = reservation;
      const keeps = pool.total[r.kind] >= Math.min(r.job.resources.min, r.total) && pool.best(r.kind) >= Math.min(r.job.resources.app, r.best);
      if (!keeps) {
        for (const [name, gpus] of Object.entries(p.grant)) pool.give(name, gpus);
        wait(job, `behind a reservation for job ${label(r.job)}`);
        blockRest('it waits behind a reservation');
        continue;
      }
    }
    if (p) {
      placements.push(p);
      held[user] = (held[user] ?? 0) + job.resources.min;
      if (++q.next === q.jobs.length) byUser.delete(user);
      continue;
    }
    if (reservation) {
      wait(job, `behind a reservation for job ${label(reservation.job)}`);
      blockRest('it waits behind a reservation');
      continue;
    }
    const kind = kindOf(job.image);
    const free = { total: pool.total[kind], best: pool.best(kind) };
    reservation = { job, kind, ...free };
    placedBeforeReservation = placements.length;
    const missing = job.resources.min - free.total;
    wait(job, missing > 0 ? `waiting for ${missing} more GPU${missing === 1 ? '' : 's'} (${free.total} of ${job.resources.min} free; reserved)` : `waiting for ${job.resources.app} GPUs on one node for its app manager (reserved)`);
    blockRest('it waits for GPUs');
  }
  return { placements, waiting, reserved: reservation?.job.id, placedBeforeReservation, nodes: pool.nodes() };
}
