/**
 * (f) Start-up of `craneadm pseudocluster --nodes N --gpus-per-node 8 --detach` for N = 10, 50,
 * 200: the wall time of that command (it returns once every node registered), then `craneadm
 * status --json` to confirm N nodes READY, the summed RSS of all its processes (the pseudocluster
 * process, its nats-server, the gateway, the cluster manager and the N node managers) and their CPU
 * time at ready. Each N once, on a fresh CRANE_HOME, stopped (`craneadm stop`) and waited until
 * every process is gone before the next; a run longer than CAP_MS is killed and reported as a
 * timeout. The cluster runs at the default log level (info, to $CRANE_HOME/logs/), as a user's
 * does; its "component running" lines give the per-process start-up.
 * Baselines in the same run: N bare `node -e "console.log('ready');setInterval(()=>{},1000)"`
 * started at once until all printed their line (what N Node processes cost here whatever they do),
 * and `node -e 0` once.
 *
 * (g) job add → RUNNING: 200 host jobs `sleep 0.2` (1 GPU) submitted one at a time (the next once
 * the previous ended), from just before POST /v1/jobs to the RUNNING event on the bus; on
 * `craneadm standalone --gpus 8` and on `craneadm pseudocluster --nodes 3 --gpus-per-node 8`
 * (lib.ts addToRunning, which takes any cluster's API socket and bus URL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  addToRunning,
  childPids,
  cpuMs,
  CRANEADM,
  fmt,
  median,
  nowMs,
  percentile,
  procName,
  ratio,
  result,
  rssKiB,
  runMain,
  runNode,
  sleep,
  startCluster,
  tempDir,
} from './lib.js';

const NODES = [10, 50, 200];
const GPUS_PER_NODE = 8;
const CAP_MS = 150_000;
const TARGET_N = 50;
const TARGET_MS = 10_000;
const SETTLE_MS = 2_000;
const LAT_JOBS = 200;
const LAT_WARMUP = 5;

const mib = (kib: number) => kib / 1024;
const sec = (ms: number) => `${fmt(ms / 1000, 2)} s`;
const alive = (pid: number) => existsSync(`/proc/${pid}`) && procName(pid) !== undefined;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const safe = <T>(f: () => T, dflt: T): T => {
  try {
    return f();
  } catch {
    return dflt;
  }
};

// ---- baselines --------------------------------------------------------------------------------

/** N bare node processes started at once; ms until every one printed its ready line. */
async function bareNodes(n: number): Promise<{ ms: number; rssKiB: number; cpuMs: number }> {
  const children: ChildProcess[] = [];
  const t0 = nowMs();
  const ready = Array.from({ length: n }, () => {
    const child = spawn(process.execPath, ['-e', "console.log('ready');setInterval(()=>{},1000)"], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(child);
    return new Promise<void>((res, rej) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d).includes('ready\n') && res());
      child.once('error', rej);
      child.once('exit', () => rej(new Error('a bare node exited before it was ready')));
    });
  });
  try {
    await Promise.all(ready);
    const ms = nowMs() - t0;
    const cpu = sum(children.map((c) => safe(() => cpuMs(c.pid!), 0)));
    await sleep(SETTLE_MS);
    const rss = sum(children.map((c) => safe(() => rssKiB(c.pid!).rss, 0)));
    return { ms, rssKiB: rss, cpuMs: cpu };
  } finally {
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null || c.signalCode !== null ? undefined : new Promise<void>((r) => (c.once('exit', () => r()), c.kill('SIGKILL'))),
      ),
    );
  }
}

// ---- pseudocluster start-up ---------------------------------------------------------------------

interface Status {
  pid: number;
  startedAt: string;
  nodes: { name: string; state: string; pid?: number }[];
  processes?: { name: string; pid?: number; state: string; startedAt?: string; restarts: number }[];
}

interface StartRun {
  nodes: number;
  outcome: 'ready' | 'timeout' | 'failed';
  ms: number;
  why?: string;
  readyNodes?: number;
  restarts?: number;
  /** Why restarted processes died: the first complaint in their logs. */
  restartWhy?: string[];
  rssKiB?: number;
  rss?: { main: number; nats: number; cm: number; gateway: number; nodes: number; nodeMedian: number };
  cpuMs?: number;
  nodeCpuMedianMs?: number;
  /** From t0 (the detach command's spawn), ms. */
  phases?: { firstSpawn: number; lastSpawn: number; lastNodeRunning: number; nodeSpawnToRunningMedian: number; nodeSpawnToRunningMax: number };
  /** Node processes that had logged "component running" when a failed/timed-out run ended. */
  runningAtEnd?: number;
  stopMs?: number;
  /** From the cluster manager's log: nodes that registered, heartbeat losses, re-registrations. */
  cm?: { registered: number; lost: number; lostNodes: number; again: number };
}

/** Every process of the cluster in `home`: those whose command line names it (nats-server -sd, the
 * node managers' state dirs), their parent (the pseudocluster process) and its children. */
function clusterPids(home: string): number[] {
  const named: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const cmd = safe(() => readFileSync(`/proc/${e}/cmdline`, 'utf8'), '');
    if (cmd.includes(home)) named.push(Number(e));
  }
  const parents = new Set<number>();
  for (const p of named) {
    const stat = safe(() => readFileSync(`/proc/${p}/stat`, 'utf8'), '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid > 1 && procName(ppid) === 'node' && ppid !== process.pid) parents.add(ppid);
  }
  const all = new Set([...named, ...parents]);
  for (const p of parents) for (const c of childPids(p)) all.add(c);
  return [...all];
}

/** Waits until none of `pids` exists; SIGKILLs what is left after `graceMs`. Returns the ms waited. */
async function waitGone(pids: number[], graceMs: number): Promise<number> {
  const t0 = nowMs();
  while (pids.some(alive)) {
    if (nowMs() - t0 > graceMs) {
      for (const p of pids.filter(alive)) safe(() => process.kill(p, 'SIGKILL'), undefined);
      while (pids.some(alive)) await sleep(50);
      break;
    }
    await sleep(50);
  }
  return nowMs() - t0;
}

/** "component running" time (epoch ms) from a component's log, if it logged it. */
function runningAt(home: string, name: string): number | undefined {
  const text = safe(() => readFileSync(join(home, 'logs', `${name}.log`), 'utf8'), '');
  for (const line of text.split('\n')) {
    if (!line.includes('component running')) continue;
    const t = safe(() => JSON.parse(line).time as number, NaN);
    if (Number.isFinite(t)) return t;
  }
  return undefined;
}

/** First line of a component's log that is not an info/debug record (e.g. "component failed to start: ..."). */
function firstComplaint(home: string, name: string): string {
  const text = safe(() => readFileSync(join(home, 'logs', `${name}.log`), 'utf8'), '');
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const rec = safe(() => JSON.parse(line) as { level?: number; msg?: string; err?: string }, undefined);
    if (!rec) return line.slice(0, 200);
    if ((rec.level ?? 0) >= 40) return `${rec.msg}${rec.err ? `: ${rec.err}` : ''}`.slice(0, 200);
  }
  return '(nothing in its log)';
}

function cmSummary(home: string): StartRun['cm'] {
  const text = safe(() => readFileSync(join(home, 'logs', 'cluster-manager.log'), 'utf8'), '');
  const registered = new Set<string>();
  const lostNodes = new Set<string>();
  let lost = 0;
  let again = 0;
  for (const line of text.split('\n')) {
    const rec = safe(() => JSON.parse(line) as { msg?: string; node?: string; again?: boolean }, undefined);
    if (!rec?.node) continue;
    if (rec.msg === 'node registered') {
      registered.add(rec.node);
      if (rec.again) again++;
    } else if (rec.msg?.startsWith('node lost')) {
      lost++;
      lostNodes.add(rec.node);
    }
  }
  return { registered: registered.size, lost, lostNodes: lostNodes.size, again };
}

async function startPseudocluster(n: number): Promise<StartRun> {
  const home = tempDir('crane-bench-pc-');
  const xdg = join(home, 'xdg');
  mkdirSync(xdg);
  const env: NodeJS.ProcessEnv = { ...process.env, CRANE_HOME: home, XDG_CONFIG_HOME: xdg, NO_COLOR: '1', CRANE_LOG_LEVEL: 'info' };
  delete env.CRANE_SOCKET;
  delete env.CRANE_ADM_SOCKET;
  delete env.CRANE_TOKEN;
  const run: StartRun = { nodes: n, outcome: 'failed', ms: NaN };
  let pids: number[] = [];
  try {
    const t0Epoch = Date.now();
    const r = await runNode([CRANEADM, 'pseudocluster', '--nodes', String(n), '--gpus-per-node', String(GPUS_PER_NODE), '--detach'], env, '', CAP_MS);
    run.ms = r.ms;
    if (r.code === 0 && r.stdout.includes('is ready')) {
      run.outcome = 'ready';
      const st = await runNode([CRANEADM, 'status', '--json'], env);
      if (st.code !== 0) throw new Error(`craneadm status --json exited ${st.code}: ${st.stderr.slice(-500)}`);
      const s = JSON.parse(st.stdout) as Status;
      const procs = s.processes ?? [];
      const natsPid = childPids(s.pid).find((p) => procName(p) === 'nats-server');
      pids = [s.pid, ...(natsPid ? [natsPid] : []), ...procs.flatMap((p) => (p.pid ? [p.pid] : []))];
      run.readyNodes = s.nodes.filter((x) => x.state === 'READY').length;
      run.restarts = sum(procs.map((p) => p.restarts));
      run.cm = cmSummary(home);
      run.restartWhy = procs.filter((p) => p.restarts).map((p) => `${p.name}: ${firstComplaint(home, p.name)}`);
      // CPU at ready (before the settle), per process kind.
      const cpuOf = (pid?: number) => (pid ? safe(() => cpuMs(pid), 0) : 0);
      const nodeProcs = procs.filter((p) => p.name.startsWith('node-'));
      run.cpuMs = sum(pids.map(cpuOf));
      run.nodeCpuMedianMs = median(nodeProcs.map((p) => cpuOf(p.pid)));
      // Phases, from the supervisor's spawn times and the components' own "component running".
      const spawned = procs.map((p) => Date.parse(p.startedAt ?? '')).filter(Number.isFinite);
      const nodeSpans = nodeProcs.flatMap((p) => {
        const at = runningAt(home, p.name);
        return at === undefined || !p.startedAt ? [] : [{ spawn: Date.parse(p.startedAt), at }];
      });
      if (spawned.length && nodeSpans.length) {
        run.phases = {
          firstSpawn: Math.min(...spawned) - t0Epoch,
          lastSpawn: Math.max(...spawned) - t0Epoch,
          lastNodeRunning: Math.max(...nodeSpans.map((x) => x.at)) - t0Epoch,
          nodeSpawnToRunningMedian: median(nodeSpans.map((x) => x.at - x.spawn)),
          nodeSpawnToRunningMax: Math.max(...nodeSpans.map((x) => x.at - x.spawn)),
        };
      }
      await sleep(SETTLE_MS);
      const rssOf = (pid?: number) => (pid ? safe(() => rssKiB(pid).rss, 0) : 0);
      const byName = (name: string) => procs.find((p) => p.name === name)?.pid;
      const nodeRss = nodeProcs.map((p) => rssOf(p.pid));
      run.rss = { main: rssOf(s.pid), nats: rssOf(natsPid), cm: rssOf(byName('cluster-manager')), gateway: rssOf(byName('gateway')), nodes: sum(nodeRss), nodeMedian: median(nodeRss) };
      run.rssKiB = sum(pids.map(rssOf));
      const t1 = nowMs();
      const stop = await runNode([CRANEADM, 'stop'], env, '', 30_000);
      if (stop.code !== 0) console.log(`  warning: craneadm stop exited ${stop.code}: ${stop.stderr.trim().slice(-300)}`);
      await waitGone([...new Set([...pids, ...clusterPids(home)])], 30_000);
      run.stopMs = nowMs() - t1;
    } else {
      run.outcome = r.ms >= CAP_MS - 100 ? 'timeout' : 'failed';
      const log = safe(() => readFileSync(join(home, 'pseudocluster.log'), 'utf8'), '');
      const lines = `${r.stderr}\n${log}`.split('\n').filter((l) => /did not|error|exited|failed/i.test(l));
      const why = (lines.find((l) => /did not register/.test(l)) ?? lines.at(-1) ?? `exit ${r.code}`).trim();
      // "node(s) node-1, node-2, ... did not register within 30 s": say how many, not which.
      const m = /node\(s\) (.*) did not register within (.*)$/.exec(why);
      run.why = m ? `${m[1]!.split(', ').length} nodes not READY at the cluster's own ${m[2]} deadline, e.g. ${m[1]!.split(', ').slice(0, 3).join(', ')}` : why.slice(0, 300);
      run.cm = cmSummary(home);
      const names = safe(() => readdirSync(join(home, 'logs')), [] as string[]).filter((f) => f.startsWith('node-'));
      run.runningAtEnd = names.filter((f) => runningAt(home, f.replace(/\.log$/, '')) !== undefined).length;
    }
  } finally {
    // Whatever happened: SIGTERM the pseudocluster process (it stops its children), then SIGKILL.
    const left = [...new Set([...pids, ...clusterPids(home)])].filter(alive);
    if (left.length) {
      for (const p of left) if (procName(p) === 'node' && childPids(p).length) safe(() => process.kill(p, 'SIGTERM'), undefined);
      await waitGone(left, 15_000);
    }
    rmSync(home, { recursive: true, force: true });
  }
  return run;
}

const cmLine = (c: StartRun['cm']) =>
  c ? `cluster manager: ${c.registered} nodes registered, ${c.lost} "node lost: no heartbeat" (${c.lostNodes} nodes), ${c.again} re-registrations` : '';

// ---- job add → RUNNING ------------------------------------------------------------------------

async function latencyOn(args?: string[]) {
  const c = await startCluster(args ? { args } : { gpus: '8' });
  try {
    const r = await addToRunning(c.cliSocket, c.busUrl, c.token, { jobs: LAT_JOBS, warmup: LAT_WARMUP, cluster: c.cluster });
    if (r.notDone) console.log(`  warning: ${r.notDone} jobs did not end DONE`);
    return { p50: percentile(r.runningMs, 50), p99: percentile(r.runningMs, 99), replyP50: percentile(r.replyMs, 50), max: Math.max(...r.runningMs) };
  } finally {
    await c.stop();
  }
}

// ---- main -------------------------------------------------------------------------------------------

runMain(async () => {
  await runNode(['-e', '0']); // page cache
  const nodeE0 = await runNode(['-e', '0']);
  console.log(`# (f) \`craneadm pseudocluster --nodes N --gpus-per-node ${GPUS_PER_NODE} --detach\` start → ready (all N nodes registered), each N once, cap ${CAP_MS / 1000} s; baseline N bare \`node\` started at once until each printed a line; \`node -e 0\`: ${fmt(nodeE0.ms)} ms`);
  const starts: Array<StartRun & { base: Awaited<ReturnType<typeof bareNodes>> }> = [];
  for (const n of NODES) {
    const base = await bareNodes(n);
    const run = await startPseudocluster(n);
    starts.push({ ...run, base });
    const b = `${n} bare node ${sec(base.ms)} (${fmt(mib(base.rssKiB))} MiB, CPU ${sec(base.cpuMs)})`;
    if (run.outcome !== 'ready') {
      console.log(`N=${n}: ${run.outcome.toUpperCase()} after ${sec(run.ms)} (${run.why}) vs ${b}`);
      console.log(`  by then ${run.runningAtEnd} of ${n} node processes had logged "component running"; ${cmLine(run.cm)}`);
      continue;
    }
    console.log(
      `N=${n}: ${sec(run.ms)} to ready, ${run.readyNodes}/${n} nodes READY${run.restarts ? `, ${run.restarts} restarts` : ''} vs ${b} → ${ratio(run.ms, base.ms)} (${ratio(run.ms, nodeE0.ms)} node -e 0)`,
    );
    const rs = run.rss!;
    console.log(
      `  RSS ${fmt(mib(run.rssKiB!))} MiB (pseudocluster ${fmt(mib(rs.main))} + nats-server ${fmt(mib(rs.nats))} + cluster manager ${fmt(mib(rs.cm))} + gateway ${fmt(mib(rs.gateway))} + ${n} nodes ${fmt(mib(rs.nodes))}, median ${fmt(mib(rs.nodeMedian), 1)} MiB each) vs bare ${fmt(mib(base.rssKiB))} MiB → ${ratio(run.rssKiB!, base.rssKiB)}`,
    );
    console.log(`  ${cmLine(run.cm)}`);
    if (run.restartWhy?.length) console.log(`  restarted: ${run.restartWhy.join('; ')}`);
    const ph = run.phases;
    console.log(
      `  CPU at ready ${sec(run.cpuMs!)} (node manager median ${fmt(run.nodeCpuMedianMs!)} ms vs bare node ${fmt(base.cpuMs / n)} ms; ${fmt(run.cpuMs! / run.ms, 2)} of 2 cores busy)` +
        (ph
          ? `; first component spawned at ${sec(ph.firstSpawn)}, last at ${sec(ph.lastSpawn)}, node spawn → "component running" median ${sec(ph.nodeSpawnToRunningMedian)} (max ${sec(ph.nodeSpawnToRunningMax)}), last node running at ${sec(ph.lastNodeRunning)}, ready at ${sec(run.ms)}; stop + gone ${sec(run.stopMs!)}`
          : ''),
    );
  }

  console.log(`# (g) job add → RUNNING, ${LAT_JOBS} host jobs \`sleep 0.2\` (1 GPU) one at a time (next after the previous ended), ${LAT_WARMUP} warm-up jobs, POST /v1/jobs → RUNNING event on the bus`);
  const sa = await latencyOn();
  console.log(`standalone --gpus 8: p50 ${fmt(sa.p50, 1)} ms, p99 ${fmt(sa.p99, 1)} ms (max ${fmt(sa.max, 1)}; POST → 201 p50 ${fmt(sa.replyP50, 1)} ms)`);
  const pc = await latencyOn(['pseudocluster', '--nodes', '3', '--gpus-per-node', '8']);
  console.log(`pseudocluster 3 × 8: p50 ${fmt(pc.p50, 1)} ms, p99 ${fmt(pc.p99, 1)} ms (max ${fmt(pc.max, 1)}; POST → 201 p50 ${fmt(pc.replyP50, 1)} ms) → ${ratio(pc.p50, sa.p50)} p50, ${ratio(pc.p99, sa.p99)} p99 of standalone`);

  result('pseudocluster', {
    gpusPerNode: GPUS_PER_NODE,
    capMs: CAP_MS,
    targetNodes: TARGET_N,
    targetMs: TARGET_MS,
    nodeMs: nodeE0.ms,
    starts: starts.map((s) => ({
      nodes: s.nodes,
      outcome: s.outcome,
      ms: s.ms,
      why: s.why,
      readyNodes: s.readyNodes,
      restarts: s.restarts,
      cm: s.cm,
      rssKiB: s.rssKiB,
      cpuMs: s.cpuMs,
      phases: s.phases,
      baseMs: s.base.ms,
      baseRssKiB: s.base.rssKiB,
      baseCpuMs: s.base.cpuMs,
    })),
    latency: { jobs: LAT_JOBS, standalone: sa, pseudocluster: { nodes: 3, gpusPerNode: 8, ...pc } },
  });
});
