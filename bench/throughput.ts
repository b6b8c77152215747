/**
 * (c) Throughput: 500 trivial host jobs (`true`, 1 GPU each) submitted by one API client (one
 * keep-alive HTTP agent on crane-cli.sock, 8 requests in flight) to `craneadm standalone --gpus 8`
 * in its own process; time from the first submit to the last DONE (job state events on the bus).
 * Baseline in the same run: 500 `sh -c true` spawned straight from node, 8 at once, as the node
 * manager spawns them, so the ratio is Crane's own overhead. ROUNDS rounds, each on a fresh
 * cluster after 50 warm-up jobs, alternating with the baseline; medians are reported.
 */
import { checkAllDone, cpuMs, fmt, hostJob, JobWatcher, median, ratio, result, runJobs, runMain, spawnMany, startCluster } from './lib.js';

const JOBS = 500;
const GPUS = 8;
const IN_FLIGHT = 8;
const WARMUP = 50;
const ROUNDS = 3;
const TARGET = 150;
const SLURM = 61;

async function crane(): Promise<{ ms: number; submitMs: number; cpuPerJob: number; natsCpuPerJob: number }> {
  const c = await startCluster({ gpus: String(GPUS) });
  try {
    const w = await JobWatcher.open(c.busUrl, c.cluster);
    await runJobs(c, w, WARMUP, () => hostJob('true', 1), IN_FLIGHT);
    const np = c.natsPid()!;
    const cpu0 = cpuMs(c.pid);
    const ncpu0 = cpuMs(np);
    const r = await runJobs(c, w, JOBS, () => hostJob('true', 1), IN_FLIGHT);
    const cpu = cpuMs(c.pid) - cpu0;
    const ncpu = cpuMs(np) - ncpu0;
    await w.close();
    const bad = checkAllDone(r.events);
    if (bad) console.log(`warning: ${bad}`);
    return { ms: r.lastAt - r.firstAt, submitMs: r.submittedAt - r.firstAt, cpuPerJob: cpu / JOBS, natsCpuPerJob: ncpu / JOBS };
  } finally {
    await c.stop();
  }
}

runMain(async () => {
  await spawnMany(50, 'true', GPUS); // warm-up
  const runs: Awaited<ReturnType<typeof crane>>[] = [];
  const bases: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    bases.push(await spawnMany(JOBS, 'true', GPUS));
    const r = await crane();
    runs.push(r);
    console.log(
      `  round ${i + 1}: Crane ${fmt((JOBS * 1000) / r.ms, 1)} jobs/s (${fmt(r.ms)} ms; all submitted at ${fmt(r.submitMs)} ms; cluster node CPU ${fmt(r.cpuPerJob, 2)} ms/job, nats-server ${fmt(r.natsCpuPerJob, 2)} ms/job), bare spawns ${fmt((JOBS * 1000) / bases[i]!, 1)}/s (${fmt(bases[i]!)} ms)`,
    );
  }
  const ms = median(runs.map((r) => r.ms));
  const baseMs = median(bases);
  const rate = (JOBS * 1000) / ms;
  const baseRate = (JOBS * 1000) / baseMs;
  const cpuPerJob = median(runs.map((r) => r.cpuPerJob));
  console.log(`# (c) ${JOBS} host jobs \`true\` (1 GPU each) on \`craneadm standalone --gpus ${GPUS}\`, one API client with ${IN_FLIGHT} requests in flight, ${WARMUP} warm-up jobs; median of ${ROUNDS} rounds`);
  console.log(`throughput: ${fmt(rate, 1)} jobs/s (${fmt(ms)} ms from first submit to last DONE) (target ≥ ${TARGET}/s; Slurm 22.05: ${SLURM}/s)`);
  console.log(`baseline: ${JOBS} \`sh -c true\` spawned from node, ${GPUS} at once: ${fmt(baseRate, 1)}/s (${fmt(baseMs)} ms) → Crane ${ratio(rate, baseRate)} of the bare spawn rate (${ratio(ms, baseMs)} the time)`);
  console.log(`  cluster node process CPU: ${fmt(cpuPerJob, 2)} ms per job (median); its one thread is the bottleneck: submissions end with the last DONE`);
  result('throughput', { jobs: JOBS, gpus: GPUS, inFlight: IN_FLIGHT, rounds: ROUNDS, ms, rate, baseMs, baseRate, cpuPerJobMs: cpuPerJob, target: TARGET, slurm: SLURM });
});
