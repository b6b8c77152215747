/**
 * (d) Gang scheduling: 100 jobs of 2 GPUs each running `sleep 1`, all submitted at once to
 * `craneadm standalone --gpus 8` (4 run at a time: 25 waves, ideal makespan 25 s). Makespan is
 * from the first submit to the last DONE (job state events on the bus). Baseline in the same run:
 * 100 `sh -c 'sleep 1'` spawned straight from node, 4 at once (what a perfect scheduler with no
 * overhead would take on this machine).
 */
import { checkAllDone, fmt, hostJob, JobWatcher, mean, median, nowMs, percentile, ratio, result, runJobs, runMain, spawnMany, startCluster } from './lib.js';

const JOBS = 100;
const GPUS = 8;
const PER_JOB = 2;
const IDEAL_MS = ((JOBS * PER_JOB) / GPUS) * 1000;
const TARGET_MS = 27_500;
const SLURM_MS = 50_000;

runMain(async () => {
  const c = await startCluster({ gpus: String(GPUS) });
  let r;
  let w: JobWatcher;
  try {
    w = await JobWatcher.open(c.busUrl, c.cluster);
    await runJobs(c, w, 8, () => hostJob('true', PER_JOB), 8); // warm-up
    r = await runJobs(c, w, JOBS, () => hostJob('sleep 1', PER_JOB), 8);
    await w.close();
  } finally {
    await c.stop();
  }
  const bad = checkAllDone(r.events);
  if (bad) console.log(`warning: ${bad}`);
  const makespan = r.lastAt - r.firstAt;

  // Per job: how long it ran (RUNNING → DONE as the bus saw it), and the GPU idle gaps: for each
  // wave after the first, the time from a job's DONE to the RUNNING of the job that took its GPUs.
  const runMs = r.ids.map((id) => w.ended.get(id)!.seenAt - w.started.get(id)!);
  const starts = r.ids.map((id) => w.started.get(id)!).sort((a, b) => a - b);
  const ends = r.ids.map((id) => w.ended.get(id)!.seenAt).sort((a, b) => a - b);
  // FIFO with equal jobs: the k-th start after the first 4 follows the (k-4)-th end.
  const slots = GPUS / PER_JOB;
  const gaps = starts.slice(slots).map((s, k) => s - ends[k]!);
  const busy = runMs.reduce((a, b) => a + b, 0) * PER_JOB;
  const util = busy / (GPUS * makespan);

  const baseMs = await spawnMany(JOBS, 'sleep 1', slots);

  console.log(`# (d) ${JOBS} jobs × ${PER_JOB} GPUs \`sleep 1\` on \`craneadm standalone --gpus ${GPUS}\` (${slots} at a time), all submitted by one client (8 in flight)`);
  console.log(
    `makespan: ${fmt(makespan / 1000, 2)} s from first submit to last DONE vs ideal ${fmt(IDEAL_MS / 1000)} s → ${ratio(makespan, IDEAL_MS)} (target ≤ ${fmt(TARGET_MS / 1000, 1)} s; Slurm 22.05: ${SLURM_MS / 1000} s)`,
  );
  console.log(`baseline: ${JOBS} \`sh -c 'sleep 1'\` from node, ${slots} at once: ${fmt(baseMs / 1000, 2)} s → Crane ${ratio(makespan, baseMs)} of it, +${fmt((makespan - baseMs) / JOBS, 1)} ms per job`);
  console.log(
    `  job run time (RUNNING→DONE) median ${fmt(median(runMs))} ms; scheduler hand-over (DONE event → next RUNNING event) median ${fmt(median(gaps), 1)} ms, p99 ${fmt(percentile(gaps, 99), 1)} ms; first start ${fmt(starts[0]! - r.firstAt, 1)} ms after the first submit; GPU utilisation ${fmt(util * 100, 1)}%`,
  );
  result('gang', { jobs: JOBS, gpus: GPUS, perJob: PER_JOB, makespanMs: makespan, idealMs: IDEAL_MS, baseMs, gapMedianMs: median(gaps), gapMeanMs: mean(gaps), util, target: TARGET_MS, slurm: SLURM_MS });
});
