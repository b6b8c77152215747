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
import { placeJob, type NodeCapacity, type Placement, type QueuedJob } from './scheduler.js';

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
}

const eligibleFor = (job: QueuedJob) => (n: NodeCapacity) => (job.image === 'host' ? n.hostJobs : n.docker);

/** Free GPUs a job could use, in all and on its best node. */
function freeFor(job: QueuedJob, nodes: NodeCapacity[]): { total: number; best: number } {
  let total = 0;
  let best = 0;
  for (const n of nodes.filter(eligibleFor(job))) {
    total += n.free.length;
    best = Math.max(best, n.free.length);
  }
  return { total, best };
}

const label = (j: QueueEntry) => j.name ?? j.id.slice(0, 8);

const copyNodes = (nodes: NodeCapacity[]) => nodes.map((n) => ({ ...n, free: [...n.free] }));

export function planQueue(input: PlanInput): Plan {
  const work = copyNodes(input.nodes);
  const held = { ...input.held };
  const byUser = new Map<string, QueueEntry[]>();
  for (const j of input.queue) byUser.set(j.user, [...(byUser.get(j.user) ?? []), j]);
  for (const jobs of byUser.values()) jobs.sort((a, b) => b.priority - a.priority || a.seq - b.seq);

  const placements: Placement[] = [];
  const waiting = new Map<string, Waiting>();
  let position = 0;
  let reservation: { job: QueueEntry; total: number; best: number } | undefined;
  let placedBeforeReservation: number | undefined;
  const wait = (j: QueueEntry, reason: string) => waiting.set(j.id, { position: ++position, reason });
  const share = (u: string) => (held[u] ?? 0) / Math.max(input.users[u]?.weight ?? 1, 1e-9);

  while (byUser.size > 0) {
    // The user furthest below their fair share goes next (ties: the earlier head).
    let user = '';
    for (const [u, jobs] of byUser) {
      if (!user || share(u) < share(user) || (share(u) === share(user) && jobs[0]!.seq < byUser.get(user)![0]!.seq)) user = u;
    }
    const jobs = byUser.get(user)!;
    const job = jobs[0]!;
    const blockRest = (why: string) => {
      for (const later of jobs.slice(1)) wait(later, `behind your job ${label(job)} (${why})`);
      byUser.delete(user);
    };

    const quota = input.users[user]?.quotaGpus;
    if (quota !== undefined && (held[user] ?? 0) + job.resources.min > quota) {
      wait(job, `over quota: you hold ${held[user] ?? 0} of ${quota} GPUs and it needs ${job.resources.min}`);
      blockRest('over quota');
      continue;
    }

    // Nothing free anywhere: no placement to try (keeps a long queue cheap to plan).
    const trial = work.some((n) => n.free.length > 0) ? copyNodes(work) : work;
    const p = trial === work ? undefined : placeJob(job, trial);
    const keepsReservation = () => {
      if (!reservation) return true;
      const after = freeFor(reservation.job, trial);
      return after.total >= Math.min(reservation.job.resources.min, reservation.total) && after.best >= Math.min(reservation.job.resources.app, reservation.best);
    };
    if (p && keepsReservation()) {
      placements.push(p);
      work.splice(0, work.length, ...trial);
      held[user] = (held[user] ?? 0) + job.resources.min;
      jobs.shift();
      if (jobs.length === 0) byUser.delete(user);
      continue;
    }
    if (p || reservation) {
      wait(job, `behind a reservation for job ${label(reservation!.job)}`);
      blockRest('it waits behind a reservation');
      continue;
    }
    const free = freeFor(job, work);
    reservation = { job, ...free };
    placedBeforeReservation = placements.length;
    const missing = job.resources.min - free.total;
    wait(job, missing > 0 ? `waiting for ${missing} more GPU${missing === 1 ? '' : 's'} (${free.total} of ${job.resources.min} free; reserved)` : `waiting for ${job.resources.app} GPUs on one node for its app manager (reserved)`);
    blockRest('it waits for GPUs');
  }
  return { placements, waiting, reserved: reservation?.job.id, placedBeforeReservation };
}
