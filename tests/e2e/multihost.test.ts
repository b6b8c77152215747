/**
 * `craneadm init` / `join` / `leave` with two member hosts on this machine: each "host" has its
 * own CRANE_RUN_DIR (standard sockets) and CRANE_STATE_DIR, so they share nothing but the bus
 * link. The compose tests (tests/int/compose-cluster.test.ts) run the same across containers.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { run, type RunOptions } from '../helpers/cli-cluster.js';

class Host {
  readonly dir = mkdtempSync(join(tmpdir(), 'crane-host-'));
  readonly env: NodeJS.ProcessEnv;
  constructor(readonly name: string) {
    this.env = {
      PATH: process.env.PATH,
      HOME: this.dir,
      CRANE_HOME: join(this.dir, 'home'),
      CRANE_RUN_DIR: join(this.dir, 'run'),
      CRANE_STATE_DIR: join(this.dir, 'state'),
      XDG_CONFIG_HOME: join(this.dir, 'config'),
      CRANE_LOG_LEVEL: process.env.CRANE_LOG_LEVEL ?? 'info',
    };
  }
  craneadm = (args: string[], o?: RunOptions) => run('craneadm', args, this.env, o);
  crane = (args: string[], o?: RunOptions) => run('crane', args, this.env, o);
  rootPassword = () => readFileSync(join(this.dir, 'state', 'root-password'), 'utf8').trim();
  async teardown() {
    await this.craneadm(['leave', '--force']).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const h1 = new Host('h1');
const h2 = new Host('h2');
const LEAF = 17_000 + Math.floor(Math.random() * 2_000);
let joinArgs: string[] = [];

test.before(async () => {
  const init = await h1.craneadm(['init', '--advertise', '127.0.0.1', '--leaf-port', String(LEAF), '--gpus', '2', '--name', 'h1', '--cluster', 'mh']);
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  const m = /^ {2}craneadm (join \S+ \S+)$/m.exec(init.stdout);
  if (!m) throw new Error(`no join command in: ${init.stdout}`);
  joinArgs = m[1]!.split(' ');
});
test.after.always(() => Promise.all([h2.teardown(), h1.teardown()]));

test.serial('a wrong token changes nothing; a bad one is one line', async (t) => {
  const [, token, seed] = joinArgs as [string, string, string];
  const payload = JSON.parse(Buffer.from(token.slice(7), 'base64url').toString());
  const wrong = `crane1.${Buffer.from(JSON.stringify({ ...payload, secret: 'not-the-secret' })).toString('base64url')}`;
  const r = await h2.craneadm(['join', wrong, seed, '--name', 'h2', '--gpus', '2']);
  t.is(r.code, 1);
  t.is(r.stderr, `error: the cluster at ${seed} refused this host: the join token is wrong or stale\n`);
  t.is((await h2.craneadm(['leave'])).stderr, 'error: this host is not a member of a cluster\n', 'nothing was left behind');

  const garbage = await h2.craneadm(['join', 'crane1.garbage', seed]);
  t.deepEqual([garbage.code, garbage.stderr], [1, 'error: invalid join token: copy the whole token that craneadm init printed\n']);
  const other = `crane1.${Buffer.from(JSON.stringify({ ...payload, v: '9.9.9' })).toString('base64url')}`;
  const version = await h2.craneadm(['join', other, seed]);
  t.is(version.code, 1);
  t.regex(version.stderr, /^error: this host runs Crane \S+ but the cluster runs 9\.9\.9: install Crane 9\.9\.9 here first\n$/);
  // None of them changed anything: h2 is no member, the cluster has its one node.
  t.is((await h2.craneadm(['leave'])).stderr, 'error: this host is not a member of a cluster\n');
  t.deepEqual(JSON.parse((await h1.craneadm(['status', '--json'])).stdout).nodes.map((n: { name: string }) => n.name), ['h1']);
});

test.serial('join, then a job whose MIN needs both hosts runs across them', async (t) => {
  const j = await h2.craneadm([...joinArgs, '--name', 'h2', '--gpus', '2']);
  t.is(j.code, 0, j.stderr);
  t.is(j.stdout, "h2 joined cluster 'mh' (2 GPUs)\n");
  const s = await h1.craneadm(['status']);
  t.regex(s.stdout, /^this host: +h1 \(manager\)$/m);
  t.regex(s.stdout, /\nh1 +\d+ +0,1 +0,1 +2\/2 +READY +manager\nh2 +\d+ +0,1 +0,1 +2\/2 +READY +worker\n/);
  t.regex((await h2.craneadm(['status'])).stdout, new RegExp(`^this host: +h2 \\(worker, joined 127\\.0\\.0\\.1:${LEAF}\\)$`, 'm'));

  // Sign in on h2's socket: every host serves the user API.
  t.is((await h2.crane(['user', 'signin', '-u', 'root', '--password-stdin'], { input: h1.rootPassword() })).code, 0);
  t.is((await h2.crane(['job', 'add', 'host', '1:4', '-c', 'echo $CRANE_GPUS; sleep 30', '-n', 'span'])).code, 0);
  const job = JSON.parse((await h2.crane(['job', 'inspect', 'span', '--json'])).stdout);
  t.is(job.state, 'RUNNING');
  t.deepEqual(job.acquired, { h1: [0, 1], h2: [0, 1] });
  t.is((await h2.crane(['resource', 'all'])).stdout, 'Free: 0 / Busy: 4\n');
  // This cluster was not started with --ha: no promote, and nothing changes.
  const promote = await h1.craneadm(['promote', 'h2', '--force']);
  t.deepEqual([promote.code, promote.stderr], [1, 'error: promote needs a cluster started with craneadm init --ha\n']);
  t.regex((await h1.craneadm(['status'])).stdout, /\nh2 +\d+ +0,1 +- +0\/2 +READY +worker\n/);
});

test.serial('leave refuses while a job holds GPUs here; --force requeues it; the manager needs --force', async (t) => {
  const refused = await h2.craneadm(['leave']);
  t.is(refused.code, 1);
  t.is(refused.stderr, 'error: 1 job(s) run on h2 (span): craneadm leave --force requeues them\n');
  const left = await h2.craneadm(['leave', '--force']);
  t.is(left.stdout, "h2 left cluster 'mh'; requeued: span\n");
  const s = await h1.craneadm(['status', '--json']);
  t.deepEqual(JSON.parse(s.stdout).nodes.map((n: { name: string }) => n.name), ['h1']);
  t.is((await h1.crane(['user', 'signin', '-u', 'root', '--password-stdin'], { input: h1.rootPassword() })).code, 0);
  const job = JSON.parse((await h1.crane(['job', 'inspect', 'span', '--json'])).stdout);
  t.is(job.state, 'QUEUED');
  t.is(job.history.at(-1).reason, 'node h2 left the cluster: requeued');
  t.is((await h1.craneadm(['leave'])).stderr, 'error: this host runs the cluster manager: leaving stops the cluster for every host; use --force\n');
  for (const verb of ['promote', 'demote']) {
    const r = await h1.craneadm([verb, 'nope']);
    t.deepEqual([r.code, r.stderr], [1, "error: no node 'nope' in this cluster (craneadm status lists them)\n"]);
  }
  const member = readFileSync(join(h1.dir, 'state', 'member.json'), 'utf8');
  const init = await h1.craneadm(['init']);
  t.is(init.code, 1);
  t.regex(init.stderr, /^error: this host is already a member of cluster 'mh' as manager h1 \(craneadm status; craneadm leave\)\n$/);
  t.is(readFileSync(join(h1.dir, 'state', 'member.json'), 'utf8'), member, 'init changed nothing');
  const notMember = await h2.craneadm(['leave']);
  t.deepEqual([notMember.code, notMember.stderr], [1, 'error: this host is not a member of a cluster\n']);
});
