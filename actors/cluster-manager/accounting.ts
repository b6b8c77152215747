/**
 * GPU-time accounting, pure: a job keeps segments `{at, gpus}` (from `at` on it held `gpus` GPUs;
 * 0 closes), appended whenever its grant changes (noteGrant); GPU-seconds are the integral of
 * those segments over a window. A removed job leaves an AccountRecord (`acct.<id>` in the store)
 * so reports still count it.
 */
import type { JobState, UsageReport } from '../protocol.js';
import { isTerminal } from './job-states.js';
import type { JobRecord } from './state.js';

export interface UsageSegment {
  /** epoch ms */
  at: number;
  gpus: number;
}

/** What accounting keeps of a job, and all it keeps of a removed one. */
export interface AccountRecord {
  id: string;
  name: string;
  user: string;
  usage: UsageSegment[];
}

/** A record a report counts: a job (its state) or a removed job's account. */
export type Accountable = AccountRecord & { state?: JobState; removed?: boolean };

/** GPUs a job holds now: its grant, none once it ended (an ended job's grant stays for inspect). */
export function heldGpus(r: JobRecord): number {
  if (isTerminal(r.view.state)) return 0;
  return Object.values(r.view.acquired).reduce((n, g) => n + g.length, 0);
}

/**
 * Notes the job's grant as of `at`: a segment with the GPUs it holds now, unless that is what it
 * already held. Two changes at the same instant keep the last; time never runs backwards.
 */
export function noteGrant(r: JobRecord, at: number): void {
  const gpus = heldGpus(r);
  const segs = r.usage ?? [];
  const last = segs.at(-1);
  if ((last?.gpus ?? 0) === gpus) return;
  const t = Math.max(at, last?.at ?? at);
  if (last && last.at === t) {
    segs.pop();
    if ((segs.at(-1)?.gpus ?? 0) === gpus) {
      r.usage = segs;
      return;
    }
  }
  segs.push({ at: t, gpus });
  r.usage = segs;
}

/** GPU-seconds of the segments within [since, until] (an open last segment runs until `until`). */
export function gpuSeconds(r: { usage?: readonly UsageSegment[] }, since = -Infinity, until = Date.now()): number {
  const segs = r.usage ?? [];
  let ms = 0;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (!s.gpus) continue;
    const from = Math.max(s.at, since);
    const to = Math.min(segs[i + 1]?.at ?? until, until);
    if (to > from) ms += (to - from) * s.gpus;
  }
  return ms / 1000;
}

export function accountOf(r: JobRecord): AccountRecord {
  return { id: r.view.id, name: r.view.name, user: r.view.user, usage: r.usage ?? [] };
}

/** Whether a job ever held a GPU (only those leave an account when removed). */
export function everHeldGpus(r: { usage?: readonly UsageSegment[] }): boolean {
  return (r.usage ?? []).some((s) => s.gpus > 0);
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/**
 * GPU-seconds per user and per job in [since, until]: only jobs with GPU-time in the window
 * count; users and jobs most first; each user's share of the total.
 */
export function usageReport(records: Iterable<Accountable>, window: { since?: number; until: number }): UsageReport {
  const jobs: UsageReport['jobs'] = [];
  const users = new Map<string, { gpuSeconds: number; jobs: number }>();
  let total = 0;
  for (const r of records) {
    const gs = gpuSeconds(r, window.since, window.until);
    if (gs <= 0) continue;
    total += gs;
    jobs.push({ id: r.id, name: r.name, user: r.user, gpuSeconds: round(gs), ...(r.state ? { state: r.state } : {}), ...(r.removed ? { removed: true } : {}) });
    const u = users.get(r.user) ?? { gpuSeconds: 0, jobs: 0 };
    u.gpuSeconds += gs;
    u.jobs++;
    users.set(r.user, u);
  }
  const byMost = <T extends { gpuSeconds: number }>(a: T, b: T) => b.gpuSeconds - a.gpuSeconds;
  return {
    ...(window.since !== undefined && Number.isFinite(window.since) ? { since: new Date(window.since).toISOString() } : {}),
    until: new Date(window.until).toISOString(),
    totalGpuSeconds: round(total),
    users: [...users]
      .map(([user, u]) => ({ user, gpuSeconds: round(u.gpuSeconds), jobs: u.jobs, share: total > 0 ? u.gpuSeconds / total : 0 }))
      .sort((a, b) => byMost(a, b) || a.user.localeCompare(b.user)),
    jobs: jobs.sort((a, b) => byMost(a, b) || a.name.localeCompare(b.name)),
  };
}
