/**
 * (i) The scheduler on the real bus at scale: a cluster manager (its own process, state in memory:
 * bench/cm-proc.ts) and 1,000 simulated node managers × 8 GPUs (real node-manager actors in two
 * child processes, their containers simulated: bench/sim-nodes.ts) on one embedded nats-server;
 * this process is the client; 10,000 jobs of mixed
 * sizes (1–16 GPUs; a fifth elastic, MAX = 2× MIN, which grow into idle GPUs and are shrunk back
 * when a queued job needs them), all of one user, added straight on the bus as the gateway adds
 * them. Three phases:
 *
 *   light   200 jobs one at a time (each added once the one before is RUNNING): job add → RUNNING
 *           on an idle 1,000-node cluster;
 *   burst   the user's GPU quota is set to 16, 1,500 jobs (~6,200 GPUs) are added and wait over
 *           quota; the quota is lifted and one pass places them: placements per second of the
 *           scheduler on the bus (decision, RUNNING event, run request to the node);
 *   stream  the other 8,300 jobs from one client, 64 adds in flight, running 4–12 s, so the
 *           cluster saturates and a queue builds: placements per second and job add → RUNNING
 *           until the jobs' MIN GPUs fill it (no 16-GPU job could start even with every grown GPU
 *           taken back), then GPU utilisation (grown GPUs count) and free GPUs while jobs were
 *           queued, sampled through `resources` as a user sees them.
 *
 * Baselines in the same run: the bus round trip of a trivial request to the same cluster manager
 * (sequential, and the rate with 64 in flight), and its RSS with the nodes and no job.
 * Also printed: the cluster manager's scheduler passes in the stream (count, time; bench/cm-proc.ts
 * times them) and the CPU each process used in the stream phase.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ActorSystem } from '../bus/actor.js';
import { connectBus } from '../bus/connect.js';
import { decode } from '../bus/codec.js';
import { EmbeddedNats } from '../bus/nats-server.js';
import { subjects } from '../bus/subjects.js';
import type { JobSpec, ResourceSummary } from '../actors/protocol.js';
import { DIST, childPids, cpuMs, fmt, median, nowMs, percentile, procName, result, sleep, tempDir } from './lib.js';

const NODES = Number(process.env.BENCH_NODES ?? 1_000);
const GPUS = 8;
const JOBS = Number(process.env.BENCH_JOBS ?? 10_000);
const LIGHT = Math.min(200, Math.floor(JOBS / 10));
const BURST = Math.min(1_500, Math.floor((JOBS * 3) / 20));
const STREAM = JOBS - LIGHT - BURST;
const IN_FLIGHT = 64;
const CLUSTER = 'scale';
const sub = subjects(CLUSTER);
const total = NODES * GPUS;

const nats = new EmbeddedNats({ stateDir: tempDir('crane-bench-scale-') });
const busUrl = await nats.start();

// The cluster manager in its own process (bench/cm-proc.ts), answering figures on its stdin.
// BENCH_CM_NODE_ARGS: more node flags for it, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
const cmNodeArgs = process.env.BENCH_CM_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
const cmChild = spawn(process.execPath, ['--expose-gc', ...cmNodeArgs, join(DIST, 'bench', 'cm-proc.js'), busUrl, CLUSTER], {
  stdio: ['pipe', 'pipe', 'inherit'],
  env: { ...process.env, CRANE_LOG_LEVEL: 'silent' },
});
const cmLines: string[] = [];
let cmWaiter: (() => void) | undefined;
createInterface({ input: cmChild.stdout! }).on('line', (l) => {
  cmLines.push(l);
  cmWaiter?.();
});
async function cmLine(): Promise<any> {
  while (cmLines.length === 0) await new Promise<void>((res) => (cmWaiter = res));
  return JSON.parse(cmLines.shift()!);
}
async function cm(cmd: 'mark' | 'stats' | 'memory'): Promise<any> {
  cmChild.stdin!.write(`${cmd}\n`);
  return cmLine();
}
if ((await cmLine()) !== 'ready') throw new Error('the cluster manager did not start');
let natsPid = childPids(process.pid).find((p) => procName(p) === 'nats-server');
const children: ChildProcess[] = [cmChild];
// If this process fails, its children must not outlive it.
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  if (natsPid) process.kill(natsPid, 'SIGKILL');
});
process.on('uncaughtException', (err) => {
  console.error(err);
  process.exit(1);
});

const nc = await connectBus(busUrl, 'bench-client', sub.inbox);
const system = new ActorSystem(nc, 'bench-client');
const user = { id: 'u', username: 'root', isAdmin: true };

const t0 = nowMs();
const half = Math.ceil(NODES / 2);
const simNodes = [0, 1].map((k) =>
  spawn(process.execPath, [join(DIST, 'bench', 'sim-nodes.js'), busUrl, CLUSTER, String(k * half), String(Math.min(half, NODES - k * half)), String(GPUS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, CRANE_LOG_LEVEL: 'silent' },
  }),
);
children.push(...simNodes);
for (;;) {
  const { nodes } = await system.ask<{ nodes: unknown[] }>(sub.cm('nodes'), 'nodes', {}, { timeout: 10_000 });
  if (nodes.length >= NODES) break;
  await sleep(200);
}
const registeredMs = nowMs() - t0;
await sleep(1_000);

// Baselines: a bus round trip to the same cluster manager, busy with 1,000 nodes' heartbeats
// (`user.get` is a map lookup), one at a time and 64 in flight; its RSS with no job yet.
const rt: number[] = [];
for (let i = 0; i < 300; i++) {
  const a = nowMs();
  await system.ask(sub.cm('user.get'), 'user.get', { username: 'root' });
  rt.push(nowMs() - a);
}
let asked = 0;
const rateT0 = nowMs();
await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () => {
    while (asked++ < 10_000) await system.ask(sub.cm('user.get'), 'user.get', { username: 'root' });
  }),
);
const rtRate = 10_000 / ((nowMs() - rateT0) / 1000);
const memBase = (await cm('memory')) as { rss: number; heap: number };
const rssBase = memBase.rss;

// Job state events, as every client sees them.
const queuedAt = new Map<string, number>();
const started = new Map<string, number>();
const endedAt = new Map<string, number>();
let queuedNow = 0;
const startWaiters = new Map<string, () => void>();
nc.subscribe(sub.jobEvents, {
  callback: (_e, m) => {
    const b = decode<{ id: string; state: string }>(m.data);
    const t = nowMs();
    if (b.state === 'QUEUED' && !queuedAt.has(b.id)) {
      queuedAt.set(b.id, t);
      queuedNow++;
    } else if (b.state === 'RUNNING' && !started.has(b.id)) {
      started.set(b.id, t);
      if (queuedAt.has(b.id)) queuedNow--;
      startWaiters.get(b.id)?.();
    } else if (b.state === 'DONE' || b.state === 'ERROR') endedAt.set(b.id, t);
  },
});
await nc.flush();

let seed = 7;
const r = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
const SIZES = [1, 1, 1, 1, 2, 2, 2, 4, 4, 8, 8, 16];
const minOf = new Map<string, number>();
const addedAt = new Map<string, number>();
let named = 0;
function jobSpec(seconds: [number, number]): JobSpec {
  const min = SIZES[Math.floor(r() * SIZES.length)]!;
  return {
    name: `j${named++}`,
    tags: [],
    resources: { app: Math.min(min, 1 + Math.floor(r() * 2)), min, max: r() < 0.2 ? min * 2 : min },
    priority: 0,
    am: { image: 'sim', cmd: `sleep ${(seconds[0] + r() * (seconds[1] - seconds[0])).toFixed(2)}`, shell: false, init: false, env: {}, mounts: [], ports: [], shmSize: 1 },
  };
}
async function add(s: JobSpec): Promise<string> {
  const a = nowMs();
  const res = await system.ask<{ id: string }>(sub.cm('job.add'), 'job.add', { user, spec: s }, { timeout: 60_000 });
  minOf.set(res.id, s.resources.min);
  addedAt.set(res.id, a);
  return res.id;
}
const whenStarted = (id: string) => (started.has(id) ? Promise.resolve() : new Promise<void>((res) => startWaiters.set(id, res)));
async function until(what: string, ok: () => boolean, ms = 300_000): Promise<void> {
  const end = nowMs() + ms;
  while (!ok()) {
    if (nowMs() > end) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}
const quota = (gpus: number | null) => system.ask(sub.cm('user.quota'), 'user.quota', { username: 'root', gpus });

// --- light: one job at a time on an idle cluster -------------------------------------------
const light: number[] = [];
for (let i = 0; i < LIGHT; i++) {
  const a = nowMs();
  const id = await add(jobSpec([0.2, 0.5]));
  await whenStarted(id);
  light.push(started.get(id)! - a);
}
await until('the light jobs ended', () => endedAt.size >= LIGHT);

// --- burst: jobs queued over quota, then placed by one pass ----------------------------------
await quota(16);
const burstIds: string[] = [];
{
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next++ < BURST) burstIds.push(await add(jobSpec([2, 4])));
    }),
  );
}
await sleep(500);
const burstBefore = new Set(burstIds.filter((id) => started.has(id)));
await cm('mark');
const burstT0 = nowMs();
await quota(null);
const burstAnswered = nowMs() - burstT0;
await until('the burst placed', () => burstIds.every((id) => started.has(id)), 60_000);
const burstPlaced = burstIds.filter((id) => !burstBefore.has(id));
const burstLast = Math.max(...burstPlaced.map((id) => started.get(id)!)) - burstT0;
const burstFirst = Math.min(...burstPlaced.map((id) => started.get(id)!)) - burstT0;
const burstRate = burstPlaced.length / (burstLast / 1000);
const burstPass = Math.max(...((await cm('stats')).passes as number[]));
await until('the burst ended', () => burstIds.every((id) => endedAt.has(id)), 120_000);
await sleep(1_500);

// --- stream: 64 in flight until every job is added; the cluster saturates -------------------
const streamIds = new Set<string>();
const util: Array<{ t: number; busy: number; free: number; queued: number }> = [];
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    const at = nowMs();
    const queued = queuedNow;
    const res = await system.ask<ResourceSummary>(sub.cm('resources'), 'resources', {}).catch(() => undefined);
    if (res && queued > 0 && queuedNow > 0) util.push({ t: (at + nowMs()) / 2, busy: res.busy, free: res.free, queued: Math.min(queued, queuedNow) });
    await sleep(Math.max(0, 500 - (nowMs() - at)));
  }
})();
await cm('mark');
const pids = { cm: cmChild.pid!, nodes: simNodes.map((c) => c.pid!), nats: natsPid };
const cpuNow = () => ({ t: nowMs(), cm: cpuMs(pids.cm), client: cpuMs(process.pid), nodes: pids.nodes.map(cpuMs).reduce((a, b) => a + b, 0), nats: pids.nats ? cpuMs(pids.nats) : NaN });
const cpu0 = { cm: cpuMs(pids.cm), nodes: pids.nodes.map(cpuMs), nats: pids.nats ? cpuMs(pids.nats) : NaN };
// CPU of each process every 100 ms: how busy each was before the cluster filled.
const cpuTrace = [cpuNow()];
const cpuTimer = setInterval(() => cpuTrace.push(cpuNow()), 100);
const streamT0 = nowMs();
{
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next++ < STREAM) streamIds.add(await add(jobSpec([4, 12])));
    }),
  );
}
const submitMs = nowMs() - streamT0;
await until('every job placed', () => [...streamIds].every((id) => started.has(id)));
const lastStart = Math.max(...[...streamIds].map((id) => started.get(id)!));
const placedMs = lastStart - streamT0;
const cpu1 = { cm: cpuMs(pids.cm), nodes: pids.nodes.map(cpuMs), nats: pids.nats ? cpuMs(pids.nats) : NaN };
clearInterval(cpuTimer);
const passStats = (await cm('stats')) as { at: number[]; passes: number[]; elastic: number[] };
const streamPasses = passStats.passes;
const streamElastic = passStats.elastic;
sampling = false;
await sampler;
await until('every job ended', () => endedAt.size >= JOBS);
const mem = (await cm('memory')) as { rss: number; heap: number };
const rss = mem.rss;
const heap = mem.heap;

/** GPUs held at MIN by the stream's running jobs (and anything else still running) at time t. */
const events = [...started].map(([id, t]) => ({ t, d: minOf.get(id) ?? 0 }));
for (const [id, t] of endedAt) events.push({ t, d: -(minOf.get(id) ?? 0) });
events.sort((a, b) => a.t - b.t);
function minHeldAt(t: number): number {
  let busy = 0;
  for (const e of events) {
    if (e.t > t) break;
    busy += e.d;
  }
  return busy;
}
/** When the jobs' MIN GPUs first left no room for a 16-GPU job: from then on, jobs wait for others to end. */
let fullAt = Infinity;
let fullPlaced = 0;
{
  let busy = 0;
  for (const e of events) {
    busy += e.d;
    if (e.t < streamT0) continue;
    if (e.d > 0) fullPlaced++;
    if (busy > total - 16) {
      fullAt = e.t;
      break;
    }
  }
}
const placeRate = fullPlaced / ((Math.min(fullAt, lastStart) - streamT0) / 1000);
const unsaturated = [...streamIds].filter((id) => started.get(id)! <= fullAt).map((id) => started.get(id)! - addedAt.get(id)!);
const saturated = util.filter((s) => s.t >= fullAt && s.t <= lastStart);
const utilS = saturated.map((s) => s.busy / total);
const freeS = saturated.map((s) => s.free / total);
const minS = saturated.map((s) => minHeldAt(s.t) / total);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
// The passes before the cluster filled (their start times are epoch ms, from the other process).
const epoch = (t: number) => performance.timeOrigin + t;
const early = passStats.at.map((at, k) => ({ at, ms: passStats.passes[k]! })).filter((p) => p.at >= epoch(streamT0) && p.at <= epoch(Math.min(fullAt, lastStart)));
const earlyMs = early.reduce((a, p) => a + p.ms, 0);
// Share of one core each process used from the stream's start until the cluster filled (100 ms samples).
const cpuA = cpuTrace[0]!;
const cpuB = cpuTrace.find((c) => c.t >= Math.min(fullAt, lastStart)) ?? cpuTrace.at(-1)!;
const busy = (k: 'cm' | 'client' | 'nodes' | 'nats') => (cpuB[k] - cpuA[k]) / (cpuB.t - cpuA.t);
const cpuStream = { cm: cpu1.cm - cpu0.cm, nodes: cpu1.nodes.reduce((a, x, k) => a + x - cpu0.nodes[k]!, 0), nats: cpu1.nats - cpu0.nats };
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

console.log(`# (i) ${fmt(NODES)} simulated node managers × ${GPUS} GPUs (2 processes) and a cluster manager (1 process) on the real bus, ${fmt(JOBS)} jobs (1–16 GPUs, a fifth elastic to 2× MIN) of one user from a client (this process)`);
console.log(`nodes registered in ${fmt(registeredMs / 1000, 1)} s; baselines: bus round trip to the cluster manager p50 ${fmt(median(rt), 3)} ms (p99 ${fmt(percentile(rt, 99), 2)}), ${fmt(rtRate)} round trips/s with ${IN_FLIGHT} in flight`);
console.log(`light (${LIGHT} jobs one at a time, idle cluster): job add → RUNNING p50 ${fmt(median(light), 2)} ms, p99 ${fmt(percentile(light, 99), 2)} ms → ${(median(light) / median(rt)).toFixed(1)}× the round trip`);
console.log(
  `burst (${fmt(burstPlaced.length)} jobs queued over quota, quota lifted): placed in ${fmt(burstLast, 0)} ms (first RUNNING after ${fmt(burstFirst, 0)} ms, quota reply ${fmt(burstAnswered, 0)} ms) → ${fmt(burstRate)} placements/s ` +
    `(${(burstRate / rtRate).toFixed(2)}× the round-trip rate); the pass that placed them took ${fmt(burstPass, 0)} ms`,
);
console.log(
  `stream (${fmt(STREAM)} jobs, ${IN_FLIGHT} in flight, 4–12 s): until the jobs' MIN GPUs filled the cluster (${fmt((fullAt - streamT0) / 1000, 2)} s): ${fmt(fullPlaced)} placed → ${fmt(placeRate)} placements/s (${(placeRate / rtRate).toFixed(2)}× the round-trip rate); ` +
    `all added in ${fmt(submitMs / 1000, 1)} s (${fmt(STREAM / (submitMs / 1000))} adds/s), all placed in ${fmt(placedMs / 1000, 1)} s`,
);
console.log(
  `  scheduler passes before that: ${fmt(early.length)} (${fmt(fullPlaced / Math.max(early.length, 1), 1)} placements each), p50 ${fmt(median(early.map((p) => p.ms)), 2)} ms, ${pct(earlyMs / (Math.min(fullAt, lastStart) - streamT0))} of the time; ` +
    `CPU used (of one core): cluster manager ${pct(busy('cm'))}, client ${pct(busy('client'))}, sim nodes ${pct(busy('nodes'))}, nats-server ${pct(busy('nats'))}`,
);
console.log(`  job add → RUNNING before that (${fmt(unsaturated.length)} jobs): p50 ${fmt(median(unsaturated), 1)} ms, p99 ${fmt(percentile(unsaturated, 99), 1)} ms → ${(median(unsaturated) / median(rt)).toFixed(0)}× the round trip (${IN_FLIGHT} adds in flight queue in the cluster manager's mailbox)`);
console.log(
  `  while saturated with jobs queued (${saturated.length} samples over ${fmt((lastStart - fullAt) / 1000, 1)} s, median ${fmt(median(saturated.map((s) => s.queued)))} queued): GPU utilisation mean ${pct(mean(utilS))} (min ${pct(Math.min(...utilS))}), ` +
    `jobs' MIN GPUs at the same moments ${pct(mean(minS))} (the rest: grown, or ended and not yet seen); free GPUs no queued job could use mean ${pct(mean(freeS))} (max ${pct(Math.max(...freeS))})`,
);
console.log(
  `  scheduler passes in the stream: ${fmt(streamPasses.length)}, p50 ${fmt(median(streamPasses), 2)} ms, p99 ${fmt(percentile(streamPasses, 99), 2)} ms (elastic phase p50 ${fmt(median(streamElastic), 2)} ms), ${pct(streamPasses.reduce((a, b) => a + b, 0) / cpuStream.cm)} of the cluster manager's CPU; ` +
    `CPU: cluster manager ${fmt(cpuStream.cm / STREAM, 2)} ms per job, sim nodes ${fmt(cpuStream.nodes / STREAM, 2)} ms, nats-server ${fmt(cpuStream.nats / STREAM, 2)} ms`,
);
console.log(
  `cluster manager process RSS with ${fmt(JOBS)} jobs: ${fmt(rss)} MiB (heap ${fmt(heap)} MiB) → ${(rss / rssBase).toFixed(2)}× the same process with the nodes and no job, ${fmt(rssBase)} MiB (heap ${fmt(memBase.heap)} MiB): +${fmt(((rss - rssBase) * 1024) / JOBS, 1)} KiB per job`,
);
result('bus-scale', {
  nodes: NODES,
  gpus: GPUS,
  jobs: JOBS,
  total,
  registeredMs,
  rtP50: median(rt),
  rtP99: percentile(rt, 99),
  rtRate,
  light: LIGHT,
  lightP50: median(light),
  lightP99: percentile(light, 99),
  burst: burstPlaced.length,
  burstMs: burstLast,
  burstRate,
  burstPassMs: burstPass,
  stream: STREAM,
  submitMs,
  placedMs,
  fullMs: fullAt - streamT0,
  fullPlaced,
  placeRate,
  latencyP50: median(unsaturated),
  latencyP99: percentile(unsaturated, 99),
  unsaturated: unsaturated.length,
  samples: saturated.length,
  utilisation: mean(utilS),
  utilisationMin: Math.min(...utilS),
  minHeld: mean(minS),
  grown: mean(utilS) - mean(minS),
  free: mean(freeS),
  earlyPasses: early.length,
  earlyPassP50: median(early.map((p) => p.ms)),
  earlyPassShare: earlyMs / (Math.min(fullAt, lastStart) - streamT0),
  earlyCpu: { cm: busy('cm'), client: busy('client'), nodes: busy('nodes'), nats: busy('nats') },
  passes: streamPasses.length,
  passP50: median(streamPasses),
  passP99: percentile(streamPasses, 99),
  elasticP50: median(streamElastic),
  cpuPerJob: { cm: cpuStream.cm / STREAM, nodes: cpuStream.nodes / STREAM, nats: cpuStream.nats / STREAM },
  rssBaseMiB: rssBase,
  heapBaseMiB: memBase.heap,
  rssMiB: rss,
  heapMiB: heap,
});
for (const c of children) c.kill('SIGTERM');
children.length = 0;
await system.stop();
await nc.close();
await nats.stop();
natsPid = undefined;
process.exit(0);
