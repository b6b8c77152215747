/** Output of `crane job usage`, `crane resource usage` and `craneadm report` (pure). */
import type { JobUsage, UsageReport } from '../actors/protocol.js';
import { localIso, table } from './format.js';

/** GPU-hours with 3 decimals (1 from 100 on). */
export function gpuHours(gpuSeconds: number): string {
  const h = gpuSeconds / 3600;
  return h >= 100 ? h.toFixed(1) : h.toFixed(3);
}

/** GPU-seconds with 1 decimal (whole from 1,000 on). */
export function gpuSecs(gpuSeconds: number): string {
  return gpuSeconds >= 1000 ? String(Math.round(gpuSeconds)) : gpuSeconds.toFixed(1);
}

/** `crane job usage`: a row per GPU, then the job's GPU-time. */
export function jobUsageText(u: JobUsage): string {
  const lines: string[] = [];
  if (u.gpus.length === 0) lines.push(`Job ${u.name} is ${u.state}: it holds no GPUs now.`);
  else {
    const rows = u.gpus.map((g) => [
      g.node,
      String(g.gpu),
      g.container ?? '-',
      g.util === undefined ? '-' : `${g.util}%`,
      g.memUsedMiB === undefined ? '-' : `${g.memUsedMiB} / ${g.memTotalMiB ?? 0} MiB`,
    ]);
    lines.push(table(['node', 'gpu', 'container', 'util', 'mem'], rows));
  }
  lines.push('', `GPU-seconds: ${gpuSecs(u.gpuSeconds)} (${gpuHours(u.gpuSeconds)} GPU-hours)`);
  return lines.join('\n');
}

function windowText(r: UsageReport): string {
  return r.since ? `since ${localIso(new Date(r.since))}` : 'since the first job';
}

function jobsTable(r: UsageReport): string {
  const rows = r.jobs.map((j) => [j.name, j.user, j.removed ? 'removed' : (j.state ?? ''), gpuHours(j.gpuSeconds), gpuSecs(j.gpuSeconds)]);
  return table(['job', 'user', 'state', 'gpu-hours', 'gpu-seconds'], rows);
}

/** `crane resource usage`: GPU-time per user (one's own; every user's for an admin), per job with -v. */
export function resourceUsageText(r: UsageReport, verbose: boolean): string {
  if (r.users.length === 0) return `No GPU usage ${windowText(r)}.`;
  const rows = r.users.map((u) => [u.user, gpuHours(u.gpuSeconds), gpuSecs(u.gpuSeconds), String(u.jobs)]);
  const parts = [`GPU usage ${windowText(r)}:`, table(['user', 'gpu-hours', 'gpu-seconds', 'jobs'], rows)];
  if (verbose) parts.push('', jobsTable(r));
  return parts.join('\n');
}

/** `craneadm report`: every user's GPU-time, jobs and share of the cluster's GPU-time. */
export function reportText(r: UsageReport, verbose: boolean): string {
  const head = `GPU-time ${windowText(r)} until ${localIso(new Date(r.until))}: ${gpuHours(r.totalGpuSeconds)} GPU-hours (${gpuSecs(r.totalGpuSeconds)} GPU-seconds)`;
  if (r.users.length === 0) return `${head}\nNo jobs held GPUs in this window.`;
  const rows = r.users.map((u) => [u.user, gpuHours(u.gpuSeconds), gpuSecs(u.gpuSeconds), `${(u.share * 100).toFixed(1)}%`, String(u.jobs)]);
  const parts = [head, table(['user', 'gpu-hours', 'gpu-seconds', 'share', 'jobs'], rows)];
  if (verbose) parts.push('', jobsTable(r));
  return parts.join('\n');
}
