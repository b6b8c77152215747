/**
 * (i) The scheduler on the real bus at scale: a cluster manager (this process) and 1,000
 * simulated node managers × 8 GPUs (two child processes, bench/sim-nodes.ts) on one embedded
 * nats-server; 10,000 jobs of mixed sizes (1–16 GPUs, a fifth elastic) submitted to the cluster
 * manager by one client, 64 requests in flight; simulated containers run 1–4 s.
 * Prints placements per second, p50/p99 job add → RUNNING while the cluster was not full, GPU
 * utilisation while jobs were queued, and the cluster manager process's memory.
 * Baseline in the same run: the bus round trip of a trivial request to the same cluster manager.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ActorSystem } from '../bus/actor.js';
import { connectBus } from '../bus/connect.js';
import { decode } from '../bus/codec.js';
import { EmbeddedNats } from '../bus/nats-server.js';
import { subjects } from '../bus/subjects.js';
import { clusterManagerSpec } from '../actors/cluster-manager/cluster-manager.js';
import { ClusterState } from '../actors/cluster-manager/state.js';
import type { JobSpec } from '../actors/protocol.js';
import { DIST, fmt, median, nowMs, percentile, result, sleep, tempDir } from './lib.js';

const NODES = Number(process.env.BENCH_NODES ?? 1_000);
const GPUS = 8;
const JOBS = Number(process.env.BENCH_JOBS ?? 10_000);
const CLUSTER = 'scale';
const sub = subjects(CLUSTER);

const nats = new EmbeddedNats({ stateDir: tempDir('crane-bench-scale-') });
const busUrl = await nats.start();
const nc = await connectBus(busUrl, 'bench-cm', sub.inbox);
const system = new ActorSystem(nc, 'bench');
await system.spawn(clusterManagerSpec({ cluster: CLUSTER, state: ClusterState.withRoot('x'), nodeTimeoutMs: 30_000 }));
const user = { id: 'u', username: 'root', isAdmin: true };

const t0 = nowMs();
const half = Math.ceil(NODES / 2);
const children = [0, 1].map((k) =>
  spawn(process.execPath, [join(DIST, 'bench', 'sim-nodes.js'), busUrl, CLUSTER, String(k * half), String(Math.min(half, NODES - k * half)), String(GPUS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, CRANE_LOG_LEVEL: 'silent' },
  }),
);
for (;;) {
  const { nodes } = await system.ask<{ nodes: unknown[] }>(sub.cm('nodes'), 'nodes', {}, { timeout: 10_000 });
  if (nodes.length >= NODES) break;
  await sleep(200);
}
const registeredMs = nowMs() - t0;

// Baseline: a bus round trip to the same cluster manager, busy with 1,000 nodes' heartbeats
// (`user.get` is a map lookup).
const rt: number[] = [];
for (let i = 0; i < 50; i++) {
  const a = nowMs();
  await system.ask(sub.cm('user.get'), 'user.get', { username: 'root' });
  rt.push(nowMs() - a);
}

const started = new Map<string, number>();
const endedAt = new Map<string, number>();
const sizeOf = new Map<string, number>();
const total = NODES * GPUS;
nc.subscribe(sub.jobEvents, {
  callback: (_e, m) => {
    const b = decode<{ id: string; state: string }>(m.data);
    if (b.state === 'RUNNING' && !started.has(b.id)) started.set(b.id, nowMs());
    else if (b.state === 'DONE' || b.state === 'ERROR') endedAt.set(b.id, nowMs());
  },
});

/**
 * When the cluster was first "full" (no 16-GPU job fits any more), rebuilt from the events; until
 * then placement speed is the scheduler's own, not the rate at which jobs end.
 */
function fullMoment(): { t: number; placed: number } {
  const ev = [...started].map(([id, t]) => ({ t, d: sizeOf.get(id) ?? 0 }));
  for (const [id, t] of endedAt) ev.push({ t, d: -(sizeOf.get(id) ?? 0) });
  ev.sort((a, b) => a.t - b.t);
  let busy = 0;
  let placed = 0;
  for (const e of ev) {
    busy += e.d;
    if (e.d > 0) placed++;
    if (busy > total - 16) return { t: e.t, placed };
  }
  return { t: Infinity, placed };
}

let seed = 7;
const r = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
const sizes = [1, 1, 1, 1, 2, 2, 2, 4, 4, 8, 8, 16];
const addedAt = new Map<string, number>();
const utilSamples: number[] = [];
let submitted = 0;
const submitT0 = nowMs();
const sampler = setInterval(() => {
  void system.ask<{ free: number; total: number }>(sub.cm('resources'), 'resources', {}).then((res) => {
    const queued = submitted - started.size;
    if (queued > 0) utilSamples.push(1 - res.free / res.total);
  }, () => {});
}, 500);

async function worker(): Promise<void> {
  while (submitted < JOBS) {
    const i = submitted++;
    const min = sizes[Math.floor(r() * sizes.length)]!;
    const spec: JobSpec = {
      name: `j${i}`,
      tags: [],
      resources: { app: Math.min(min, 1 + Math.floor(r() * 2)), min, max: r() < 0.2 ? min * 2 : min },
      priority: 0,
      am: { image: 'sim', cmd: `sleep ${(1 + r() * 3).toFixed(2)}`, shell: false, init: false, env: {}, mounts: [], ports: [], shmSize: 1 },
    };
    const a = nowMs();
    const res = await system.ask<{ id: string }>(sub.cm('job.add'), 'job.add', { user, spec }, { timeout: 30_000 });
    sizeOf.set(res.id, min);
    addedAt.set(res.id, a);
  }
}
await Promise.all(Array.from({ length: 64 }, worker));
const submitMs = nowMs() - submitT0;
while (started.size < JOBS && nowMs() - submitT0 < 300_000) await sleep(100);
const placedMs = Math.max(...started.values()) - submitT0;
clearInterval(sampler);
const rss = process.memoryUsage().rss / 2 ** 20;

const fullAt = fullMoment();
const unsaturated = [...addedAt].filter(([id]) => started.has(id) && started.get(id)! <= fullAt.t).map(([id, a]) => started.get(id)! - a);
const placeRate = fullAt.placed / ((Math.min(fullAt.t, nowMs()) - submitT0) / 1000);
console.log(`# (i) ${fmt(NODES)} simulated node managers × ${GPUS} GPUs on the real bus (2 processes), ${fmt(JOBS)} jobs (1–16 GPUs) from one client, 64 in flight`);
console.log(`nodes registered in ${fmt(registeredMs / 1000, 1)} s; bus round trip to the cluster manager (baseline): p50 ${fmt(median(rt), 2)} ms`);
console.log(`placements until the cluster was full: ${fmt(fullAt.placed)} in ${fmt((fullAt.t - submitT0) / 1000, 2)} s → ${fmt(placeRate)}/s; all ${fmt(started.size)} placed in ${fmt(placedMs / 1000, 1)} s (submitted in ${fmt(submitMs / 1000, 1)} s → ${fmt(JOBS / (submitMs / 1000))} adds/s)`);
console.log(`job add → RUNNING before the cluster was full (${fmt(unsaturated.length)} jobs): p50 ${fmt(median(unsaturated), 1)} ms, p99 ${fmt(percentile(unsaturated, 99), 1)} ms → ${(median(unsaturated) / median(rt)).toFixed(1)}× the bus round trip`);
console.log(`GPU utilisation while jobs were queued: ${(median(utilSamples) * 100).toFixed(1)} % (median of ${utilSamples.length} samples; min ${(Math.min(...utilSamples) * 100).toFixed(1)} %)`);
console.log(`cluster manager process RSS with ${fmt(JOBS)} jobs: ${fmt(rss)} MiB`);
result('bus-scale', { nodes: NODES, gpus: GPUS, jobs: JOBS, registeredMs, rtP50: median(rt), placed: started.size, placedMs, submitMs, placeRate, fullPlaced: fullAt.placed, latencyP50: median(unsaturated), latencyP99: percentile(unsaturated, 99), unsaturated: unsaturated.length, utilisation: median(utilSamples), rssMiB: rss, total });
for (const c of children) c.kill('SIGTERM');
await system.stop();
await nc.close();
await nats.stop();
process.exit(0);
