/**
 * (h) The scheduling policy alone (actors/cluster-manager: fair-share.ts, elastic.ts), on simulated
 * clusters of 100 / 1,000 / 5,000 nodes × 8 GPUs, 10,000 jobs of mixed sizes (1–16 GPUs, a fifth
 * elastic up to 2× MIN), four users of different weights.
 *
 * First pass: all 10,000 jobs queued on an empty cluster, one pass — the largest a pass gets.
 * Steady passes: a discrete-event simulation in whole seconds where the jobs arrive as a Poisson
 * stream offering 1.2× the cluster's GPUs (so it starts empty, elastic jobs grow into idle GPUs,
 * then it saturates and their growth is taken back for queued jobs) and run 60–600 s. In every
 * second in which jobs arrive or end, one pass runs as ClusterManager.schedule() runs it: the
 * queue pass (planQueue), then the elastic phase — planReclaim for the job holding the
 * reservation (a cooperative AM gives the GPUs back at once, and the pass that follows places
 * that job on them first), else planGrow into idle GPUs. Held GPUs count growth.
 *
 * Prints per size: the first pass and the steady passes while jobs were queued, p50 / p99, of the
 * queue and elastic phases together and of the elastic phase alone; placements per second of
 * scheduler time; GPU utilisation and free GPUs while jobs were queued (free then means no queued
 * job could use them: the pass just placed all it could); and the heap of a cluster manager state
 * holding 10,000 jobs. Baseline in the same run: a plain FIFO first-fit pass (placeJob in arrival
 * order, no fairness, no reasons, no elasticity) on the same first state and on sampled steady
 * states.
 */
import { planGrow, planReclaim, type ElasticJob } from '../actors/cluster-manager/elastic.js';
import { planQueue, type QueueEntry } from '../actors/cluster-manager/fair-share.js';
import { gpuCount, minus, plus } from '../actors/cluster-manager/grant.js';
import { placeJob, type NodeCapacity } from '../actors/cluster-manager/scheduler.js';
import { ClusterState } from '../actors/cluster-manager/state.js';
import type { Grant } from '../actors/protocol.js';
import { fmt, median, nowMs, percentile, result } from './lib.js';

const GPUS = 8;
const JOBS = 10_000;
const USERS = { ana: 1, ben: 1, cho: 2, dev: 0.5 } as const;
/** Offered load of the arrival stream: 1.2× the cluster's GPU-seconds. */
const LOAD = 1.2;
const users = Object.fromEntries(Object.entries(USERS).map(([u, w]) => [u, { weight: w }]));

function rng(seed: number) {
  return () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
}

type SimJob = QueueEntry & { duration: number };

function workload(seed: number): SimJob[] {
  const r = rng(seed);
  const sizes = [1, 1, 1, 1, 2, 2, 2, 4, 4, 8, 8, 16];
  const names = Object.keys(USERS);
  return Array.from({ length: JOBS }, (_, i) => {
    const min = sizes[Math.floor(r() * sizes.length)]!;
    const app = Math.min(min, GPUS, 1 + Math.floor(r() * 2));
    const max = r() < 0.2 ? min * 2 : min;
    return {
      id: `job-${i}`,
      user: names[Math.floor(r() * names.length)]!,
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

interface Running {
  job: SimJob;
  grant: Grant;
  am: Grant;
  end: number;
}

/** Mean GPUs (MIN) and seconds of the workload's jobs: what an arrival rate offers the cluster. */
function offeredPerJob(jobs: SimJob[]): number {
  return jobs.reduce((s, j) => s + j.resources.min * j.duration, 0) / jobs.length;
}

/** The batch: every job queued on an empty cluster, one pass (queue + elastic phase) and FIFO; the median of `reps`. */
function firstPass(nodesCount: number, reps: number) {
  const runs = Array.from({ length: reps }, () => firstPassOnce(nodesCount));
  const mid = (f: (x: (typeof runs)[number]) => number) => median(runs.map(f));
  return { ms: mid((x) => x.ms), elasticMs: mid((x) => x.elasticMs), placed: runs[0]!.placed, fifoMs: mid((x) => x.fifoMs), fifoPlaced: runs[0]!.fifoPlaced, reps };
}

function firstPassOnce(nodesCount: number) {
  const jobs = workload(42);
  const nodes = cluster(nodesCount);
  const t0 = nowMs();
  const plan = planQueue({ queue: jobs, nodes, held: {}, users });
  const te = nowMs();
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const running: ElasticJob[] = plan.placements.map((p) => {
    const j = byId.get(p.job)!;
    return { id: j.id, user: j.user, priority: j.priority, seq: j.seq, resources: j.resources, image: j.image, grant: p.grant, am: { [p.am.node]: p.am.gpus }, cargoGpus: [], reclaiming: {} };
  });
  const held: Record<string, number> = {};
  for (const r of running) held[r.user] = (held[r.user] ?? 0) + gpuCount(r.grant);
  const head = plan.reserved ? byId.get(plan.reserved) : undefined;
  // As the cluster manager hands them over: with a job waiting, none grows (each holds MIN).
  const elastic = running.filter((r) => (head && r.user === head.user && r.priority < head.priority) || (!head && r.resources.min !== r.resources.max));
  const rec = head ? planReclaim({ nodes: plan.nodes, jobs: elastic, held, users, head, behind: jobs }) : undefined;
  if (!rec) planGrow({ nodes: plan.nodes, jobs: elastic, held, users, queueWaits: !!head });
  const t1 = nowMs();
  const f0 = nowMs();
  const fifoPlaced = fifoPass(jobs, nodes);
  const fifoMs = nowMs() - f0;
  return { ms: t1 - t0, elasticMs: t1 - te, placed: plan.placements.length, fifoMs, fifoPlaced };
}

function simulate(nodesCount: number, maxPasses: number, fifoSamples: number) {
  const jobs = workload(42);
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const nodes = cluster(nodesCount);
  const nodeByName = new Map(nodes.map((n) => [n.name, n]));
  const total = nodesCount * GPUS;
  // Poisson arrivals offering LOAD × the cluster's GPU-seconds, in whole seconds.
  const rate = (LOAD * total) / offeredPerJob(jobs);
  const r = rng(4242);
  let at = 0;
  const arrivals = jobs.map((j) => ({ job: j, t: Math.floor((at += -Math.log(1 - r()) / rate)) }));
  let nextArrival = 0;
  let queue: SimJob[] = [];
  const running = new Map<string, Running>();
  let earmark: { job: string; gpus: Grant } | undefined;
  /** Per pass: its time (queue + elastic phase), the elastic phase's, and whether jobs were queued. */
  const passes: number[] = [];
  const elasticMs: number[] = [];
  const queuedAtPass: boolean[] = [];
  const fifo: Array<{ ms: number; passMs: number }> = [];
  let placements = 0;
  let grows = 0;
  let grownGpus = 0;
  let reclaims = 0;
  let reclaimedGpus = 0;
  let pauses = 0;
  let schedMs = 0;
  let t = 0;
  // GPU-seconds while jobs were queued after a pass (span), and over the whole run.
  let busyArea = 0;
  let freeArea = 0;
  let grownQueuedArea = 0;
  let span = 0;
  let allBusy = 0;
  let allMin = 0;
  let allSpan = 0;

  const take = (g: Grant) => {
    for (const [name, gpus] of Object.entries(g)) {
      const n = nodeByName.get(name)!;
      const drop = new Set(gpus);
      n.free = n.free.filter((x) => !drop.has(x));
    }
  };
  const give = (g: Grant) => {
    for (const [name, gpus] of Object.entries(g)) {
      const n = nodeByName.get(name)!;
      n.free = [...n.free, ...gpus].sort((a, b) => a - b);
    }
  };
  const held = () => {
    const h: Record<string, number> = {};
    for (const x of running.values()) h[x.job.user] = (h[x.job.user] ?? 0) + gpuCount(x.grant);
    return h;
  };
  const placed = new Set<string>();
  const start = (job: SimJob, grant: Grant, am: { node: string; gpus: number[] }) => {
    take(grant);
    // A paused job starts again from the beginning (its AM is started anew).
    running.set(job.id, { job, grant, am: am.gpus.length ? { [am.node]: am.gpus } : {}, end: t + job.duration });
    placements++;
    placed.add(job.id);
  };
  const sampleEvery = Math.max(1, Math.floor(maxPasses / fifoSamples));

  /** One pass as ClusterManager.schedule() runs it; true if it took GPUs back (a pass follows at once). */
  const pass = (): boolean => {
    const sampleFifo = queue.length > 0 && passes.length % sampleEvery === 0;
    const fifoQueue = sampleFifo ? [...queue] : [];
    const fifoNodes = sampleFifo ? nodes.map((n) => ({ ...n, free: [...n.free] })) : [];
    const h = held();
    queuedAtPass.push(queue.length > 0);
    const t0 = nowMs();
    // GPUs freed for the reserved job are its own: it goes first.
    let free = nodes;
    if (earmark) {
      const em = earmark;
      const work = nodes.map((n) => ({ ...n, free: [...n.free] }));
      const j = byId.get(em.job)!;
      const p = placeJob(j, work);
      if (p) {
        earmark = undefined;
        queue = queue.filter((x) => x.id !== em.job);
        start(j, p.grant, p.am);
        h[j.user] = (h[j.user] ?? 0) + gpuCount(p.grant);
      } else free = work.map((n) => ({ ...n, free: n.free.filter((g) => !em.gpus[n.name]?.includes(g)) }));
    }
    const plan = queue.length ? planQueue({ queue, nodes: free, held: h, users }) : undefined;
    const tq = nowMs();
    if (plan?.placements.length) {
      const placed = new Set(plan.placements.map((p) => p.job));
      for (const p of plan.placements) {
        const j = byId.get(p.job)!;
        start(j, p.grant, p.am);
        h[j.user] = (h[j.user] ?? 0) + gpuCount(p.grant);
      }
      queue = queue.filter((j) => !placed.has(j.id));
    }
    const after = plan?.nodes ?? free;
    // The elastic phase, with the jobs the cluster manager hands it (those the policy could act on).
    const te = nowMs();
    const reserved = plan?.reserved;
    const head = reserved && !earmark ? byId.get(reserved) : undefined;
    const list: ElasticJob[] = [];
    let elastic = false;
    for (const x of running.values()) {
      const n = gpuCount(x.grant);
      const { min, max } = x.job.resources;
      if (n < max) elastic = true;
      if (!(n < max && !reserved) && n <= min && !(head && x.job.user === head.user && x.job.priority < head.priority)) continue;
      list.push({ id: x.job.id, user: x.job.user, priority: x.job.priority, seq: x.job.seq, resources: x.job.resources, image: x.job.image, grant: x.grant, am: x.am, cargoGpus: [], reclaiming: {} });
    }
    let grow: Map<string, Grant> | undefined;
    let rec: ReturnType<typeof planReclaim>;
    if (head) rec = planReclaim({ nodes: after, jobs: list, held: h, users, head, behind: queue });
    if (!rec && elastic) grow = planGrow({ nodes: after, jobs: list, held: h, users, queueWaits: !!reserved });
    const t1 = nowMs();
    if (rec && head) {
      // A cooperative AM gives the GPUs back at once; a paused job goes back to the queue.
      let gpus: Grant = {};
      for (const [id, g] of rec.take) {
        const x = running.get(id)!;
        x.grant = minus(x.grant, g);
        give(g);
        gpus = plus(gpus, g);
      }
      for (const id of rec.pause) {
        const x = running.get(id)!;
        running.delete(id);
        give(x.grant);
        gpus = plus(gpus, x.grant);
        queue.push(x.job);
        pauses++;
      }
      earmark = { job: head.id, gpus };
      reclaims++;
      reclaimedGpus += gpuCount(gpus);
    }
    for (const [id, g] of grow ?? []) {
      const x = running.get(id)!;
      take(g);
      x.grant = plus(x.grant, g);
      grows++;
      grownGpus += gpuCount(g);
    }
    const ms = tq - t0 + (t1 - te);
    passes.push(ms);
    elasticMs.push(t1 - te);
    if (queuedAtPass.at(-1)) schedMs += ms;
    if (sampleFifo) {
      const f0 = nowMs();
      fifoPass(fifoQueue, fifoNodes);
      fifo.push({ ms: nowMs() - f0, passMs: ms });
    }
    return !!rec;
  };

  while (passes.length < maxPasses && (nextArrival < arrivals.length || queue.length > 0 || running.size > 0)) {
    // What happens at t: jobs end, jobs arrive; then one pass (and one more at once after a shrink).
    for (const x of [...running.values()]) {
      if (x.end !== t) continue;
      running.delete(x.job.id);
      give(x.grant);
    }
    while (nextArrival < arrivals.length && arrivals[nextArrival]!.t === t) queue.push(arrivals[nextArrival++]!.job);
    for (let k = 0; pass() && k < 10; k++);
    // Advance to the next second something happens; account GPU-seconds over the interval.
    let next = nextArrival < arrivals.length ? arrivals[nextArrival]!.t : Infinity;
    for (const x of running.values()) next = Math.min(next, x.end);
    if (next === Infinity) break;
    const free = nodes.reduce((acc, n) => acc + n.free.length, 0);
    let minHeld = 0;
    for (const x of running.values()) minHeld += x.job.resources.min;
    if (queue.length > 0) {
      busyArea += (total - free) * (next - t);
      freeArea += free * (next - t);
      grownQueuedArea += (total - free - minHeld) * (next - t);
      span += next - t;
    }
    allBusy += (total - free) * (next - t);
    allMin += minHeld * (next - t);
    allSpan += next - t;
    t = next;
  }
  // Steady: the passes while jobs were queued; once the queue is empty a pass only grows jobs.
  const steady = passes.map((_, k) => k).filter((k) => queuedAtPass[k]);
  const idle = passes.map((_, k) => k).filter((k) => !queuedAtPass[k]);
  return {
    nodes: nodesCount,
    arrivalsPerSec: rate,
    simSeconds: t,
    arrived: nextArrival,
    steadyPassMs: median(steady.map((k) => passes[k]!)),
    p99PassMs: percentile(steady.map((k) => passes[k]!), 99),
    elasticP50Ms: median(steady.map((k) => elasticMs[k]!)),
    elasticP99Ms: percentile(steady.map((k) => elasticMs[k]!), 99),
    steadyPasses: steady.length,
    idleElasticP50Ms: median(idle.map((k) => elasticMs[k]!)),
    idleElasticP99Ms: percentile(idle.map((k) => elasticMs[k]!), 99),
    idlePasses: idle.length,
    passes: passes.length,
    placements,
    jobsPlaced: placed.size,
    queuedAtEnd: queue.length,
    grows,
    grownGpus,
    reclaims,
    reclaimedGpus,
    pauses,
    placementsPerSec: placements / (schedMs / 1000),
    utilisation: span ? busyArea / (span * total) : 0,
    freeWhileQueued: span ? freeArea / (span * total) : 0,
    grownWhileQueued: span ? grownQueuedArea / (span * total) : 0,
    queuedSeconds: span,
    utilisationAll: allSpan ? allBusy / (allSpan * total) : 0,
    utilisationMinAll: allSpan ? allMin / (allSpan * total) : 0,
    fifoSteadyMs: median(fifo.map((f) => f.ms)),
    fifoSteadyPassMs: median(fifo.map((f) => f.passMs)),
    fifoSamples: fifo.length,
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

/** Nodes, most passes simulated, FIFO samples in them, repetitions of the first pass. */
const sizes: Array<[number, number, number, number]> = [
  [100, 6_000, 30, 5],
  [1_000, 6_000, 30, 5],
  [5_000, 3_000, 10, 3],
];
const runs = sizes.map(([n, passes, fifo, reps]) => ({ ...simulate(n, passes, fifo), first: firstPass(n, reps) }));
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
console.log(`# (h) scheduler policy alone: ${fmt(JOBS)} jobs (1–16 GPUs, 20 % elastic to 2× MIN), 4 users with weights 1/1/2/0.5, N nodes × ${GPUS} GPUs; a pass = queue pass + elastic phase`);
for (const r of runs) {
  const f = r.first;
  console.log(
    `N=${fmt(r.nodes)}: first pass (${fmt(JOBS)} queued, empty cluster; median of ${f.reps}) ${fmt(f.ms, 1)} ms, elastic phase ${fmt(f.elasticMs, 2)} ms, ${fmt(f.placed)} placed; FIFO first-fit baseline ${fmt(f.fifoMs, 1)} ms (${fmt(f.fifoPlaced)} placed) → ${(f.ms / f.fifoMs).toFixed(2)}×`,
  );
  console.log(
    `  arrivals ${fmt(r.arrivalsPerSec, 2)}/s (1.2× the GPUs), ${fmt(r.simSeconds)} s simulated, ${fmt(r.passes)} passes: while jobs were queued (${fmt(r.steadyPasses)} passes) p50 ${fmt(r.steadyPassMs, 2)} ms, p99 ${fmt(r.p99PassMs, 2)} ms; ` +
      `elastic phase alone p50 ${fmt(r.elasticP50Ms, 3)} ms, p99 ${fmt(r.elasticP99Ms, 3)} ms (queue empty, ${fmt(r.idlePasses)} passes: p50 ${fmt(r.idleElasticP50Ms, 3)} ms, p99 ${fmt(r.idleElasticP99Ms, 3)} ms)`,
  );
  console.log(
    `  FIFO first-fit baseline on sampled queued states: ${fmt(r.fifoSteadyMs, 2)} ms vs ${fmt(r.fifoSteadyPassMs, 2)} ms for the pass (median of ${r.fifoSamples}) → ${(r.fifoSteadyPassMs / r.fifoSteadyMs).toFixed(2)}×; ` +
      `${fmt(r.placementsPerSec)} placements/s of scheduler time (${fmt(r.placements)} placements of ${fmt(r.jobsPlaced)} jobs; ${fmt(r.arrived - r.jobsPlaced)} of ${fmt(r.arrived)} arrived not yet placed)`,
  );
  console.log(
    (r.queuedSeconds
      ? `  while jobs were queued (${fmt(r.queuedSeconds)} s): GPU utilisation ${pct(r.utilisation)} (grown GPUs ${pct(r.grownWhileQueued)}), free GPUs no queued job could use ${pct(r.freeWhileQueued)}; `
      : '  no job was left queued after a pass (the cluster never saturated): utilisation while queued n/a; ') +
      `whole run ${pct(r.utilisationAll)} (MIN alone ${pct(r.utilisationMinAll)}); ${fmt(r.grows)} grows (${fmt(r.grownGpus)} GPUs), ${fmt(r.reclaims)} reclaims (${fmt(r.reclaimedGpus)} GPUs), ${fmt(r.pauses)} pauses`,
  );
}
const heap = stateHeapMiB();
console.log(`cluster-manager state with ${fmt(JOBS)} jobs: ${fmt(heap, 1)} MiB of heap (${fmt((heap * 1024) / JOBS, 1)} KiB per job)`);
result('scheduler', { jobs: JOBS, gpusPerNode: GPUS, load: LOAD, runs, heapMiB: heap });
