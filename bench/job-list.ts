/**
 * (b) `crane job list` wall time with 1,000 jobs in the cluster. The cluster is `craneadm
 * standalone --gpus 8` in its own process; the 1,000 jobs are host jobs `true` (1 GPU), all DONE
 * before timing starts. The user shell signs in once (`crane user signin -u root --password-stdin`,
 * token stored in its XDG config) and then runs the compiled binary, `node dist/cli/crane.js ...`,
 * exactly as a user would (stdout is a pipe, so no colours). Timed, interleaved, RUNS times each:
 *   - `node -e 0`                 (the baseline: a bare node start),
 *   - `crane --version`           (CLI start-up, no request),
 *   - `crane job list`            (the default: active jobs only; the server still filters 1,000),
 *   - `crane job list -a`         (all 1,000 jobs: the headline figure).
 */
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { ActorSystem } from '../bus/actor.js';
import { subjects } from '../bus/subjects.js';
import { Api, checkAllDone, CRANE, fmt, hostJob, JobWatcher, median, nowMs, ratio, result, runJobs, runMain, runNode, startCluster } from './lib.js';

const JOBS = 1_000;
const RUNS = 15;
const TARGET_MS = 150;

runMain(async () => {
  const c = await startCluster({ gpus: '8' });
  try {
    const w = await JobWatcher.open(c.busUrl, c.cluster);
    const t0 = nowMs();
    const r = await runJobs(c, w, JOBS, () => hostJob('true', 1), 8);
    await w.close();
    const bad = checkAllDone(r.events);
    if (bad) console.log(`warning: ${bad}`);

    // A user's shell: CRANE_HOME points at the cluster (its local socket is the default target).
    const env = c.env;
    const password = readFileSync(`${c.home}/root-password`, 'utf8').trim();
    const si = await runNode([CRANE, 'user', 'signin', '-u', 'root', '--password-stdin'], env, password);
    if (si.code !== 0) throw new Error(`crane user signin failed: ${si.stderr}`);

    const cmds = {
      node: ['-e', '0'],
      version: [CRANE, '--version'],
      list: [CRANE, 'job', 'list'],
      listAll: [CRANE, 'job', 'list', '-a'],
    } as const;
    type K = keyof typeof cmds;
    const ms: Record<K, number[]> = { node: [], version: [], list: [], listAll: [] };
    let lines = 0;
    const once = async (k: K, keep: boolean) => {
      const x = await runNode([...cmds[k]], env);
      if (x.code !== 0) throw new Error(`node ${cmds[k].join(' ')} exited ${x.code}: ${x.stderr.slice(-500)}`);
      if (k === 'listAll') lines = x.stdout.trimEnd().split('\n').length;
      if (keep) ms[k].push(x.ms);
    };
    const keys = Object.keys(cmds) as K[];
    for (const k of keys) await once(k, false); // page cache, compile cache
    for (let i = 0; i < RUNS; i++) {
      // Rotate the order so no command always follows the same one.
      for (let j = 0; j < keys.length; j++) await once(keys[(i + j) % keys.length]!, true);
    }

    // The server side alone: GET /v1/jobs (all 1,000) from this process, one keep-alive connection.
    const api = new Api(c.cliSocket, 1);
    api.token = c.token;
    const http: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = nowMs();
      const body = await api.ok<{ jobs: unknown[] }>('GET', '/v1/jobs');
      http.push(nowMs() - t);
      if (body.jobs.length !== JOBS) throw new Error(`GET /v1/jobs returned ${body.jobs.length} jobs`);
    }
    api.close();

    // Where the server time goes: the same list asked on the bus, from this process, at each hop.
    const nc = await connect({ servers: c.busUrl, name: 'bench-hops' });
    const sys = new ActorSystem(nc, 'bench');
    const sub = subjects(c.cluster);
    const root = { id: '00000000-0000-0000-0000-000000000000', username: 'root', isAdmin: true };
    const hop = async (f: () => Promise<{ jobs: unknown[] }>) => {
      const xs: number[] = [];
      for (let i = 0; i < RUNS + 3; i++) {
        const t = nowMs();
        const b = await f();
        if (i >= 3) xs.push(nowMs() - t);
        if (b.jobs.length !== JOBS) throw new Error(`the bus list returned ${b.jobs.length} jobs`);
      }
      return median(xs);
    };
    const cmMs = await hop(() => sys.ask(sub.cm('job.list'), 'job.list', { states: [], tags: [], user: root }, { timeout: 10_000 }));
    const gwMs = await hop(() => sys.ask(sub.gateway('jobs.list'), 'jobs.list', { token: c.token, params: {}, query: {} }, { timeout: 10_000 }));
    await nc.close();

    const m = Object.fromEntries(keys.map((k) => [k, median(ms[k])])) as Record<K, number>;
    const h = median(http);
    console.log(`# (b) ${JOBS} jobs (host \`true\`, DONE) in \`craneadm standalone --gpus 8\` (submitted and ended in ${fmt((nowMs() - t0) / 1000, 1)} s); medians of ${RUNS} interleaved runs`);
    console.log(
      `crane job list -a (${JOBS} jobs, ${lines} lines): ${fmt(m.listAll)} ms vs \`node -e 0\` ${fmt(m.node)} ms → ${ratio(m.listAll, m.node)}, +${fmt(m.listAll - m.node)} ms over bare node (target ≤ ${TARGET_MS} ms)`,
    );
    console.log(`crane job list (default, active only: none): ${fmt(m.list)} ms → ${ratio(m.list, m.node)} of node -e 0`);
    console.log(`crane --version (start-up only, no request): ${fmt(m.version)} ms → ${ratio(m.version, m.node)} of node -e 0`);
    console.log(`  breakdown of -a: node ${fmt(m.node)} + CLI start-up ${fmt(m.version - m.node)} + request and table ${fmt(m.listAll - m.version)} ms (GET /v1/jobs alone, measured from the bench: ${fmt(h, 1)} ms)`);
    console.log(
      `  server hops (median): cluster manager job.list over the bus ${fmt(cmMs, 1)} ms; through the gateway ${fmt(gwMs, 1)} ms (+${fmt(gwMs - cmMs, 1)}); through the HTTP bridge ${fmt(h, 1)} ms (+${fmt(h - gwMs, 1)})`,
    );
    result('job-list', { jobs: JOBS, cmd: 'crane job list -a', listAllMs: m.listAll, listMs: m.list, versionMs: m.version, nodeMs: m.node, httpMs: h, cmMs, gwMs, lines, target: TARGET_MS });
  } finally {
    await c.stop();
  }
});
