/**
 * `craneadm pseudocluster`: the gateway, the cluster manager and N node managers as separate
 * processes. A node that stops answering is shown LOST within the heartbeat timeout and its jobs
 * are requeued; when it comes back it kills what it still ran for them, so no GPU is used twice.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { CliCluster } from '../helpers/cli-cluster.js';

const c = new CliCluster();
const TIMEOUT_MS = 1_500;

interface Status {
  nodes: { name: string; pid: number; state: string; free: number[]; gpus: number[]; owners: Record<string, string> }[];
  processes: { name: string; pid?: number; state: string; restarts: number }[];
}

const status = async (): Promise<Status> => JSON.parse((await c.craneadm(['status', '--json'])).stdout);
const inspect = async (ref: string) => JSON.parse((await c.crane(['job', 'inspect', ref, '--json'])).stdout);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The node a RUNNING job holds GPUs on. */
async function runningOn(ref: string, not?: string): Promise<string> {
  return until(`${ref} RUNNING${not ? ` elsewhere than ${not}` : ''}`, async () => {
    const j = await inspect(ref);
    const node = Object.keys(j.acquired ?? {})[0];
    return j.state === 'RUNNING' && node && node !== not ? node : undefined;
  });
}

test.before(async () => {
  const r = await c.craneadm(['pseudocluster', '--nodes', '3', '--gpus-per-node', '2', '--node-timeout', `${TIMEOUT_MS}ms`, '--detach']);
  if (r.code !== 0) throw new Error(`pseudocluster did not start: ${r.stderr}`);
  await c.signin();
});
test.after.always(() => c.teardown());

test.serial('status lists every node and every process; each component is its own process', async (t) => {
  const s = await status();
  t.deepEqual(
    s.nodes.map((n) => [n.name, n.state, n.free.length, n.gpus.length]),
    [
      ['node-1', 'READY', 2, 2],
      ['node-2', 'READY', 2, 2],
      ['node-3', 'READY', 2, 2],
    ],
  );
  t.deepEqual(s.processes.map((p) => p.name), ['cluster-manager', 'gateway', 'node-1', 'node-2', 'node-3']);
  const pids = new Set(s.processes.map((p) => p.pid));
  t.is(pids.size, 5);
  for (const n of s.nodes) t.true(pids.has(n.pid), `${n.name} runs in its own process`);
  const text = (await c.craneadm(['status'])).stdout;
  t.regex(text, /^mode: +pseudocluster$/m);
  t.regex(text, /\nnode-2 +\d+ +0,1 +0,1 +2\/2 +READY/);
  t.is((await c.crane(['resource', 'all'])).stdout, 'Free: 6 / Busy: 0\n');
});

test.serial('a node that stops answering is LOST; its job is requeued elsewhere; back again, it gives its GPUs up', async (t) => {
  t.is((await c.crane(['job', 'add', 'host', '2', '-c', 'sleep 300', '-n', 'victim'])).code, 0);
  const first = await runningOn('victim');
  const pid = (await status()).nodes.find((n) => n.name === first)!.pid;
  // The host runtime keeps `<container>.pid` (the process group) while a host job runs.
  const pidDir = join(c.home, 'state', 'nodes', first, 'host-pids');
  const [pidFile] = readdirSync(pidDir);
  const sleeper = Number(readFileSync(join(pidDir, pidFile!), 'utf8'));
  t.true(alive(sleeper));

  process.kill(pid, 'SIGSTOP'); // hung, not dead: no heartbeats, its `sleep` still runs
  try {
    const t0 = Date.now();
    await until('node LOST', async () => (await status()).nodes.find((n) => n.name === first)?.state === 'LOST');
    t.true(Date.now() - t0 < TIMEOUT_MS + 2_500, 'noticed within the heartbeat timeout (+ a tick)');
    const second = await runningOn('victim', first);
    const j = await inspect('victim');
    t.deepEqual(
      j.history.map((h: { state: string }) => h.state),
      ['QUEUED', 'RUNNING', 'QUEUED', 'RUNNING'],
    );
    t.regex(j.history[2].reason, new RegExp(`node ${first} was lost: requeued`));
    t.not(second, first);
  } finally {
    process.kill(pid, 'SIGCONT');
  }

  // Back: it registers again only after killing the stale `sleep`, then all its GPUs are free.
  const back = await until('node READY again', async () => {
    const n = (await status()).nodes.find((x) => x.name === first);
    return n?.state === 'READY' ? n : undefined;
  });
  t.deepEqual(back.free, [0, 1]);
  t.false(alive(sleeper), 'the stale sleep was killed before the node counted as READY');
  t.deepEqual(readdirSync(pidDir), []);
  t.is((await c.crane(['resource', 'all'])).stdout, 'Free: 4 / Busy: 2\n');
  const owners = (await status()).nodes.flatMap((n) => Object.values(n.owners));
  t.deepEqual(owners, [(await inspect('victim')).id, (await inspect('victim')).id], 'two GPUs in use, both by victim');
  t.regex((await c.crane(['job', 'inspect', 'victim'])).stdout, /reason: "node node-\d was lost: requeued"/);
  t.false('reason' in (await inspect('victim')), 'a running job shows no reason');
  t.is((await c.crane(['job', 'rm', 'victim', '--force'])).code, 0);
});

test.serial('a node-manager process killed outright is restarted; its job runs again', async (t) => {
  t.is((await c.crane(['job', 'add', 'host', '1', '-c', 'sleep 300', '-n', 'again'])).code, 0);
  const node = await runningOn('again');
  const before = (await status()).processes.find((p) => p.name === node)!;
  process.kill(before.pid!, 'SIGKILL');

  const after = await until('the node process restarted', async () => {
    const p = (await status()).processes.find((x) => x.name === node);
    return p && p.restarts === before.restarts + 1 && p.state === 'running' ? p : undefined;
  });
  t.not(after.pid, before.pid);
  await until('again requeued and RUNNING', async () => {
    const j = await inspect('again');
    return j.state === 'RUNNING' && j.history.length === 4;
  });
  t.regex((await inspect('again')).history[2].reason, /requeued/);
  t.is((await c.crane(['resource', 'all'])).stdout, 'Free: 5 / Busy: 1\n');
  t.is((await c.crane(['job', 'rm', 'again', '--force'])).code, 0);
});

test.serial('the cluster-manager process killed outright loses nothing: users, sessions, jobs, logs, a running job', async (t) => {
  const pw = await c.addUser('carol');
  const carol = c.otherUser();
  t.is((await carol.signin('carol', pw)).code, 0);
  t.is((await carol.crane(['job', 'add', 'host', '1', '-c', 'echo kept; echo err >&2', '-n', 'done-before'])).code, 0);
  t.is((await carol.crane(['job', 'wait', 'done-before'])).code, 0);
  t.is((await carol.crane(['job', 'add', 'host', '2', '-c', 'sleep 4; echo after', '-n', 'runs-through'])).code, 0);
  const node = await runningOn('runs-through');
  t.is((await carol.crane(['job', 'add', 'host', '1:6', '-c', 'true', '-n', 'waits'])).code, 0);

  const cm = (await status()).processes.find((p) => p.name === 'cluster-manager')!;
  process.kill(cm.pid!, 'SIGKILL');
  await until('the cluster manager restarted', async () => {
    const p = (await status().catch(() => undefined))?.processes.find((x) => x.name === 'cluster-manager');
    return p?.state === 'running' && p.pid !== cm.pid;
  });

  const who = await until('carol still signed in', async () => {
    const r = await carol.crane(['user', 'whoami']);
    return r.code === 0 ? r : undefined;
  });
  t.regex(who.stdout, /username: carol/);
  t.is((await carol.crane(['job', 'log', 'done-before'])).stdout, 'kept\n[stderr] err\n');
  const list = (await carol.crane(['job', 'list', '-a', '--json'])).stdout;
  const jobs = JSON.parse(list) as { name: string; state: string; queuePosition?: number }[];
  // On a loaded machine the restart may outlast runs-through's 4 s: then it ended, under the new manager.
  const states = Object.fromEntries(jobs.map((j) => [j.name, j.state]));
  t.is(states['done-before'], 'DONE');
  t.true(['RUNNING', 'DONE'].includes(states['runs-through']!), states['runs-through']);
  t.true(['QUEUED', 'RUNNING', 'DONE'].includes(states.waits!), states.waits);
  t.is(jobs.length, 3);
  const through = await inspect('runs-through');
  t.is(through.am.node, node, 'the running job kept its node');
  t.deepEqual(through.history.map((h: { state: string }) => h.state).slice(0, 2), ['QUEUED', 'RUNNING']);
  t.false(through.history.slice(2).some((h: { state: string }) => h.state !== 'DONE'), 'never requeued');
  // It ends normally under the new cluster manager; then the queued job gets the GPUs.
  t.is((await carol.crane(['job', 'wait', 'runs-through'])).code, 0);
  t.is((await carol.crane(['job', 'log', 'runs-through'])).stdout, 'after\n');
  t.is((await carol.crane(['job', 'wait', 'waits'])).code, 0);
  await carol.crane(['job', 'rm', 'done-before', 'runs-through', 'waits']);
  await carol.teardown();
});

test.serial('bad counts are refused with one line; craneadm stop ends every process it started', async (t) => {
  for (const bad of [['--nodes', '0'], ['--nodes', 'x'], ['--gpus-per-node', '-1']]) {
    const r = await c.craneadm(['pseudocluster', ...bad]);
    t.is(r.code, 1, bad.join(' '));
    t.regex(r.stderr, /^error: invalid --(nodes|gpus-per-node) '.*': expected a whole number/);
    t.is(r.stderr.split('\n').filter(Boolean).length, 1);
  }
  const pids = (await status()).processes.map((p) => p.pid!);
  t.is((await c.craneadm(['stop'])).stdout.trim(), 'stopped');
  await until('every process gone', async () => pids.every((p) => !alive(p)), 10_000);
  t.pass();
});
