/**
 * (j) job add → RUNNING on the 3-host compose cluster vs a standalone, in the same run.
 *
 * The cluster: compose-files/hosts.yml (three crane/crane:dev containers on one Docker network,
 * running this checkout); host1 runs `craneadm init --gpus 0` (the manager host, without GPUs, so
 * every job runs on another host: the cross-host path), host2 and host3 `craneadm join --gpus 2`.
 * Measured from inside host1 by bench/compose-probe.ts: JOBS host jobs `echo up; sleep 0.2` (1 GPU)
 * one at a time after WARMUP, from just before POST /v1/jobs on host1's socket to the RUNNING
 * event on host1's bus (published when the job is placed), and to its first output line there
 * (its process ran on the worker host: the run request and the line crossed the leaf links)
 * (lib.ts addToRunning). Baseline: `craneadm standalone --gpus 8` on this machine, measured the
 * same way. The compose project is always removed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { addToRunning, fmt, percentile, ratio, REPO, result, runMain, startCluster } from './lib.js';

const JOBS = 100;
const WARMUP = 5;
const CMD = 'echo up; sleep 0.2';

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

function run(argv: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): Promise<Out> {
  return new Promise((res) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code: code ?? 1, stdout, stderr });
    });
  });
}

async function ok(argv: string[], env?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<string> {
  const r = await run(argv, env, timeoutMs);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-400)}`);
  return r.stdout;
}

const stats = (r: { runningMs: number[]; replyMs: number[]; outputMs: number[] }) => ({
  p50: percentile(r.runningMs, 50),
  p99: percentile(r.runningMs, 99),
  max: Math.max(...r.runningMs),
  replyP50: percentile(r.replyMs, 50),
  outputP50: percentile(r.outputMs, 50),
  outputP99: percentile(r.outputMs, 99),
  jobs: r.runningMs.length,
});

async function standalone() {
  const c = await startCluster({ gpus: '8' });
  try {
    return stats(await addToRunning(c.cliSocket, c.busUrl, c.token, { jobs: JOBS, warmup: WARMUP, cluster: c.cluster, cmd: CMD }));
  } finally {
    await c.stop();
  }
}

async function composeCluster() {
  const project = `cranebench${randomBytes(3).toString('hex')}`;
  const env = { ...process.env, CRANE_DEV_PATH: REPO };
  const dc = ['docker-compose', '--ansi', 'never', '-p', project, '-f', join(REPO, 'compose-files', 'hosts.yml')];
  const exec = (host: string, ...argv: string[]) => ok(['docker', 'exec', `${project}_${host}_1`, ...argv], env, 180_000);
  try {
    await ok([...dc, 'up', '-d'], env);
    const ip1 = (await ok(['docker', 'inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', `${project}_host1_1`])).trim();
    const t0 = Date.now();
    const init = await exec('host1', 'craneadm', 'init', '--advertise', ip1, '--gpus', '0');
    const join = /^ {2}craneadm join (\S+) (\S+)$/m.exec(init);
    if (!join) throw new Error(`no join command in: ${init}`);
    for (const h of ['host2', 'host3']) await exec(h, 'craneadm', 'join', '--gpus', '2', join[1]!, join[2]!);
    const formedMs = Date.now() - t0;
    const out = await exec('host1', 'node', '/opt/crane/dist/bench/compose-probe.js', String(JOBS), String(WARMUP));
    const line = out.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`the probe printed no RESULT: ${out.slice(-400)}`);
    const r = JSON.parse(line.slice(7)) as { runningMs: number[]; replyMs: number[]; outputMs: number[]; notDone: number };
    if (r.notDone) console.log(`  warning: ${r.notDone} jobs did not end DONE`);
    return { ...stats(r), formedMs };
  } finally {
    await run([...dc, 'down', '-v', '--remove-orphans', '-t', '1'], env, 60_000);
  }
}

runMain(async () => {
  if (spawnSync('docker', ['info'], { stdio: 'ignore' }).status !== 0) throw new Error('no Docker engine (docker info fails): start dockerd');
  await ok(['bash', join(REPO, 'images', 'build.sh')], process.env, 600_000);
  console.log(`# (j) job add → RUNNING, ${JOBS} host jobs \`${CMD}\` (1 GPU) one at a time after ${WARMUP} warm-up jobs, POST /v1/jobs → RUNNING event on the bus (at placement), and → its first output line on the bus`);
  const sa = await standalone();
  console.log(`standalone --gpus 8 (this machine): p50 ${fmt(sa.p50, 1)} ms, p99 ${fmt(sa.p99, 1)} ms (max ${fmt(sa.max, 1)}; POST → 201 p50 ${fmt(sa.replyP50, 1)} ms); first output p50 ${fmt(sa.outputP50, 1)} ms, p99 ${fmt(sa.outputP99, 1)} ms`);
  const cc = await composeCluster();
  console.log(
    `3-host compose cluster (client and manager on host1, jobs on host2/host3; formed in ${fmt(cc.formedMs / 1000, 1)} s): p50 ${fmt(cc.p50, 1)} ms, p99 ${fmt(cc.p99, 1)} ms (max ${fmt(cc.max, 1)}; POST → 201 p50 ${fmt(cc.replyP50, 1)} ms) → ${ratio(cc.p50, sa.p50)} p50, ${ratio(cc.p99, sa.p99)} p99 of standalone; first output p50 ${fmt(cc.outputP50, 1)} ms, p99 ${fmt(cc.outputP99, 1)} ms → ${ratio(cc.outputP50, sa.outputP50)} p50`,
  );
  result('compose-cluster', { jobs: JOBS, standalone: sa, compose: cc });
});
