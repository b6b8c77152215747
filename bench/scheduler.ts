/**
 * (h) The scheduling policy alone (actors/cluster-manager/fair-share.ts), on simulated clusters of
 * 100 / 1,000 / 5,000 nodes × 8 GPUs and 10,000 queued jobs of mixed sizes (1–16 GPUs, a fifth
 * elastic), four users of different weights. A discrete-event simulation: at t = 0 everything
 * is queued; each time jobs end, one scheduler pass runs, as the cluster manager does.
 *
 * Prints: the first pass (empty cluster, full queue) and the median steady-state pass per size,
 * placements per second of scheduler time, GPU utilisation and free-but-unusable GPUs while the
 * queue is not empty, and the heap of a cluster manager state holding 10,000 jobs. Baseline in
 * the same run: a plain FIFO first-fit pass (placeJob in arrival order, no fairness, no reasons).
 */
import { planQueue, type QueueEntry } from '../actors/cluster-manager/fair-share.js';
import { placeJob, type NodeCapacity } from '../actors/cluster-manager/scheduler.js';
import { ClusterState } from '../actors/cluster-manager/state.js';
import { fmt, median, nowMs, percentile, result } from './lib.js';

const GPUS = 8;
const JOBS = 10_000;
const USERS = { ana: 1, ben: 1, cho: 2, dev: 0.5 } as const;

function rng(seed: number) {
  return () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
}

function workload(seed: number): Array<QueueEntry & { duration: number }> {
  const r = rng(seed);
  const sizes = [1, 1, 1, 1, 2, 2, 2, 4, 4, 8, 8, 16];
  const users = Object.keys(USERS);
  return Array.from({ length: JOBS }, (_, i) => {
    const min = sizes[Math.floor(r() * sizes.length)]!;
    const app = Math.min(min, GPUS, 1 + Math.floor(r() * 2));
    const max = r() < 0.2 ? min * 2 : min;
    return {
      id: `job-${i}`,
      user: users[Math.floor(r() * users.length)]!,
      priority: r() < 0.1 ? 1 : 0,
      seq: i,
      image: 'host',
      resources: { app, min, max },
      duration: 60 + Math.floor(r() * 540),
    };
  });
}

const cluster = (n: number): NodeCapacity[] =>
  Array.from({ length: n }, (_, i) => ({ name: `n${i}`, free: Array.from({ length: GPUS }, (_, g) => g), total: GPUS, docker: false, hostJobs: true }));

function fifoPass(queue: QueueEntry[], nodes: NodeCapacity[]): number {
  const work = nodes.map((n) => ({ ...n, free: [...n.free] }));
  let placed = 0;
  for (const j of queue) if (placeJob(j, work)) placed++;
  return placed;
}

function simulate(nodesCount: number, maxPasses: number) {
  const jobs = workload(42);
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const nodes = cluster(nodesCount);
  const nodeByName = new Map(nodes.map((n) => [n.name, n]));
  const total = nodesCount * GPUS;
  let queue: QueueEntry[] = [...jobs];
  const held: Record<string, number> = {};
  const running: Array<{ id: string; end: number; grant: Record<string, number[]> }> = [];
  const passes: number[] = [];
  let placements = 0;
  let schedMs = 0;
  let t = 0;
  let busyArea = 0;
  let unusableArea = 0;
  let span = 0;

  const fifoT0 = nowMs();
  const fifoPlaced = fifoPass(queue, nodes);
  const fifoFirstMs = nowMs() - fifoT0;

  for (let pass = 0; pass < maxPasses && queue.length > 0; pass++) {
    const t0 = nowMs();
    const plan = planQueue({ queue, nodes, held, users: Object.fromEntries(Object.entries(USERS).map(([u, w]) => [u, { weight: w }])) });
    const ms = nowMs() - t0;
    passes.push(ms);
    schedMs += ms;
    placements += plan.placements.length;
    const placed = new Set<string>();
    for (const p of plan.placements) {
      const j = byId.get(p.job)!;
      placed.add(p.job);
      for (const [name, gpus] of Object.entries(p.grant)) {
        const n = nodeByName.get(name)!;
        n.free = n.free.filter((g) => !gpus.includes(g));
      }
      held[j.user] = (held[j.user] ?? 0) + j.resources.min;
      running.push({ id: j.id, end: t + j.duration, grant: p.grant });
    }
    queue = queue.filter((j) => !placed.has(j.id));
    // Advance to the next completion(s); account utilisation over the interval.
    running.sort((a, b) => a.end - b.end);
    const next = running[0]?.end ?? t;
    const free = nodes.reduce((s, n) => s + n.free.length, 0);
    if (queue.length > 0) {
      busyArea += (total - free) * (next - t);
      unusableArea += free * (next - t);
      span += next - t;
    }
    t = next;
    while (running.length && running[0]!.end === t) {
      const done = running.shift()!;
      const j = byId.get(done.id)!;
      held[j.user]! -= j.resources.min;
      for (const [name, gpus] of Object.entries(done.grant)) {
        const n = nodeByName.get(name)!;
        n.free = [...n.free, ...gpus].sort((a, b) => a - b);
      }
    }
  }
  return {
    nodes: nodesCount,
    firstPassMs: passes[0]!,
    firstPlacements: running.length === 0 ? 0 : undefined,
    steadyPassMs: median(passes.slice(1)),
    p99PassMs: percentile(passes.slice(1), 99),
    passes: passes.length,
    placements,
    placementsPerSec: placements / (schedMs / 1000),
    utilisation: span ? busyArea / (span * total) : 0,
    freeWhileQueued: span ? unusableArea / (span * total) : 0,
    fifoFirstMs,
    fifoPlaced,
  };
}

function stateHeapMiB(): number {
  const jobs = workload(7);
  global.gc?.();
  const before = process.memoryUsage().heapUsed;
  const s = ClusterState.withRoot('hash');
  for (const j of jobs) {
    const at = new Date().toISOString();
    s.jobs.set(j.id, {
      seq: j.seq,
      view: {
        id: `${j.id}-0000-0000-0000-000000000000`,
        name: j.id,
        user: j.user,
        tags: ['bench'],
        spec: { name: j.id, tags: ['bench'], resources: j.resources, priority: 0, am: { image: 'host', cmd: 'python train.py --epochs 10', shell: false, init: true, env: {}, mounts: [], ports: [], shmSize: 64 << 20 } },
        state: 'DONE',
        history: [{ state: 'QUEUED', at }, { state: 'RUNNING', at }, { state: 'DONE', at }],
        acquired: { n1: [0, 1] },
        exitCode: 0,
      },
    });
  }
  global.gc?.();
  const mib = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  if (s.jobs.size !== JOBS) throw new Error('state lost jobs');
  return mib;
}

const sizes: Array<[number, number]> = [
  [100, 3_000],
  [1_000, 3_000],
  [5_000, 1_500],
];
const runs = sizes.map(([n, passes]) => simulate(n, passes));
console.log(`# (h) scheduler policy alone: ${fmt(JOBS)} queued jobs (1–16 GPUs, 20 % elastic), 4 users with weights 1/1/2/0.5, N nodes × ${GPUS} GPUs; one pass per completion`);
for (const r of runs) {
  console.log(
    `N=${fmt(r.nodes)}: first pass ${fmt(r.firstPassMs, 1)} ms (FIFO first-fit baseline ${fmt(r.fifoFirstMs, 1)} ms → ${(r.firstPassMs / r.fifoFirstMs).toFixed(2)}×); ` +
      `steady pass p50 ${fmt(r.steadyPassMs, 2)} ms, p99 ${fmt(r.p99PassMs, 2)} ms over ${fmt(r.passes)} passes; ${fmt(r.placementsPerSec)} placements/s of scheduler time`,
  );
  console.log(`  while jobs were queued: GPU utilisation ${(r.utilisation * 100).toFixed(1)} %, free GPUs no queued job could use ${(r.freeWhileQueued * 100).toFixed(1)} %`);
}
const heap = stateHeapMiB();
console.log(`cluster-manager state with ${fmt(JOBS)} jobs: ${fmt(heap, 1)} MiB of heap (${fmt((heap * 1024) / JOBS, 1)} KiB per job)`);
result('scheduler', { jobs: JOBS, gpusPerNode: GPUS, runs, heapMiB: heap });
