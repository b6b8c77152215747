/**
 * The answers of the cluster manager's `job.usage` and `usage` verbs, from its state (pure: the
 * state and the time in, the answer out).
 */
import { CraneError } from '../../bus/errors.js';
import type { JobGpuUsage, JobUsage, UsageReport, UserInfo } from '../protocol.js';
import { accountOf, gpuSeconds, heldGpus, usageReport, type Accountable } from './accounting.js';
import { liveContainers } from './cargos.js';
import type { ClusterState, JobRecord } from './state.js';

/** A job's GPUs now (node, index, the container holding it when known, the latest sample) and its GPU-seconds. */
export function jobUsage(s: ClusterState, r: JobRecord, now: number): JobUsage {
  const v = r.view;
  const gpus: JobGpuUsage[] = [];
  // node/gpu -> the container using it: the AM's GPUs, and those of the job's live cargo containers.
  const holder = new Map<string, string>();
  if (v.am) for (const g of v.am.gpus) holder.set(`${v.am.node}/${g}`, v.am.container);
  for (const { c } of liveContainers(r)) for (const g of c.gpus) holder.set(`${c.node}/${g}`, c.id);
  if (heldGpus(r) > 0) {
    for (const [node, indices] of Object.entries(v.acquired).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))) {
      const n = s.nodes.get(node);
      // A LOST node's last sample is no longer the GPU's usage.
      const live = n?.state === 'READY' ? n : undefined;
      for (const gpu of indices) {
        const sample = live?.usage?.find((x) => x.gpu === gpu);
        const container = holder.get(`${node}/${gpu}`);
        gpus.push({
          node,
          gpu,
          ...(container ? { container } : {}),
          ...(sample ? { util: sample.util, memUsedMiB: sample.memUsedMiB, memTotalMiB: sample.memTotalMiB, sampledAt: new Date(live!.lastHeartbeat).toISOString() } : {}),
        });
      }
    }
  }
  return { id: v.id, name: v.name, user: v.user, state: v.state, gpus, gpuSeconds: Math.round(gpuSeconds(r, undefined, now) * 1000) / 1000 };
}

export interface UsageRequest {
  /** The asking user (through the gateway): an admin sees every user's usage, others their own. */
  user?: UserInfo;
  /** Every user's (the admin daemon's report; the gateway never sends it). */
  all?: boolean;
  /** Window, epoch ms; since absent: from the first record; until absent: now. */
  since?: number;
  until?: number;
}

/** GPU-seconds per user and per job in a window, over live jobs and removed jobs' accounts. */
export function usageFor(s: ClusterState, b: UsageRequest, now: number): UsageReport {
  if (!b.all && !b.user) throw new CraneError('invalid', 'usage needs a user (or all, for the admin report)');
  const ms = (v: unknown, what: string) => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new CraneError('invalid', `invalid ${what}: expected a time`);
    return v;
  };
  const since = ms(b.since, 'since');
  const until = ms(b.until, 'until') ?? now;
  if (since !== undefined && since > until) throw new CraneError('invalid', `the window starts (${new Date(since).toISOString()}) after it ends (${new Date(until).toISOString()})`);
  const only = b.all || b.user!.isAdmin ? undefined : b.user!.username;
  const records: Accountable[] = [];
  for (const r of s.jobs.values()) if (!only || r.view.user === only) records.push({ ...accountOf(r), state: r.view.state });
  for (const a of s.accounts.values()) if (!only || a.user === only) records.push({ ...a, removed: true });
  return usageReport(records, { since, until });
}

/** The window of a `?since=&until=` query (ISO-8601 times) as epoch ms; one clear line if invalid. */
export function usageWindow(query: Record<string, string | string[] | undefined>): { since?: number; until?: number } {
  const time = (name: string) => {
    const raw = query[name];
    const v = Array.isArray(raw) ? raw.at(-1) : raw;
    if (v === undefined || v === '') return undefined;
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw new CraneError('invalid', `invalid ${name} '${v}': use an ISO-8601 time`);
    return t;
  };
  const since = time('since');
  const until = time('until');
  return { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) };
}
