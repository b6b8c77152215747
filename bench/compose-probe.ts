/**
 * Runs inside a host container of a compose cluster (bench/compose-cluster.ts starts it with
 * `docker exec HOST node /opt/crane/dist/bench/compose-probe.js JOBS WARMUP`): signs in as root on
 * this host's standard socket and measures job add → RUNNING exactly as the standalone figure is
 * measured (lib.ts addToRunning: POST /v1/jobs, then the RUNNING event on this host's bus, with
 * the member's bus credentials). Prints `RESULT {runningMs, replyMs, notDone}`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addToRunning, Api, result, runMain } from './lib.js';

/** The job bench/compose-cluster.ts times (its CMD: keep the two the same). */
const CMD = 'echo up; sleep 0.2';

runMain(async () => {
  const jobs = Number(process.argv[2] ?? 100);
  const warmup = Number(process.argv[3] ?? 5);
  const stateDir = process.env.CRANE_STATE_DIR ?? '/var/lib/crane';
  const socket = join(process.env.CRANE_RUN_DIR ?? '/var/run/crane', 'crane-cli.sock');
  const member = JSON.parse(readFileSync(join(stateDir, 'member.json'), 'utf8')) as { cluster: string; user: string; secret: string };
  const { busUrl } = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as { busUrl: string };
  const api = new Api(socket, 1);
  const password = readFileSync(join(stateDir, 'root-password'), 'utf8').trim();
  const { token } = await api.ok<{ token: string }>('POST', '/v1/auth/signin', { username: 'root', password });
  api.close();
  const r = await addToRunning(socket, busUrl, token, { jobs, warmup, cluster: member.cluster, cmd: CMD, auth: { user: member.user, pass: member.secret } });
  result('compose-probe', r);
});
