/**
 * (e) Memory: RSS of `craneadm standalone --gpus 8` in its own process: the node process and its
 * nats-server child, each and summed; idle (after start-up settles) and again with 1,000 finished
 * jobs (host `true`). Baseline in the same run: RSS of a bare `node -e 'setInterval(()=>{},1000)'`.
 * Also VmHWM (the peak RSS) of the cluster's node process.
 */
import { spawn } from 'node:child_process';
import { checkAllDone, fmt, hostJob, JobWatcher, ratio, result, rssKiB, runJobs, runMain, sleep, startCluster } from './lib.js';

const JOBS = 1_000;
const SETTLE_MS = 3_000;
const mib = (kib: number) => kib / 1024;

async function bareNode(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' });
  await sleep(SETTLE_MS);
  const { rss } = rssKiB(child.pid!);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  return rss;
}

runMain(async () => {
  const base = await bareNode();
  const c = await startCluster({ gpus: '8' });
  let idle: { node: number; nats: number };
  let loaded: { node: number; nats: number; hwm: number };
  try {
    const natsPid = c.natsPid();
    if (!natsPid) throw new Error('no nats-server child found');
    const sample = () => ({ node: rssKiB(c.pid).rss, nats: rssKiB(natsPid).rss, hwm: rssKiB(c.pid).hwm });
    await sleep(SETTLE_MS);
    idle = sample();
    const w = await JobWatcher.open(c.busUrl, c.cluster);
    const r = await runJobs(c, w, JOBS, () => hostJob('true', 1), 8);
    await w.close();
    const bad = checkAllDone(r.events);
    if (bad) console.log(`warning: ${bad}`);
    await sleep(SETTLE_MS);
    loaded = sample();
  } finally {
    await c.stop();
  }
  const sum = (x: { node: number; nats: number }) => x.node + x.nats;
  console.log(`# (e) RSS of \`craneadm standalone --gpus 8\` (node process + its nats-server), ${SETTLE_MS / 1000} s after start-up and after the jobs ended`);
  console.log(`idle: ${fmt(mib(sum(idle)), 1)} MiB (node ${fmt(mib(idle.node), 1)} + nats-server ${fmt(mib(idle.nats), 1)}) vs bare node ${fmt(mib(base), 1)} MiB → node ${ratio(idle.node, base)}, sum ${ratio(sum(idle), base)}`);
  console.log(
    `${fmt(JOBS)} finished jobs: ${fmt(mib(sum(loaded)), 1)} MiB (node ${fmt(mib(loaded.node), 1)} + nats-server ${fmt(mib(loaded.nats), 1)}) → node ${ratio(loaded.node, base)}, sum ${ratio(sum(loaded), base)}; +${fmt(mib(sum(loaded) - sum(idle)), 1)} MiB over idle (${fmt((sum(loaded) - sum(idle)) / JOBS, 1)} KiB per job); node peak (VmHWM) ${fmt(mib(loaded.hwm), 1)} MiB`,
  );
  result('rss', {
    baseKiB: base,
    idleNodeKiB: idle.node,
    idleNatsKiB: idle.nats,
    idleSumKiB: sum(idle),
    jobs: JOBS,
    loadedNodeKiB: loaded.node,
    loadedNatsKiB: loaded.nats,
    loadedSumKiB: sum(loaded),
    nodeHwmKiB: loaded.hwm,
  });
});
