// Compose script (see compose-cluster.test.ts): `craneadm promote` / `demote` in an HA cluster of
// three hosts: host1 ran `init --ha`, host2 and host3 joined as workers. Bad inputs change
// nothing; host2 is promoted (its job requeued with --force) and the state gets a replica there;
// host1, which holds the lease, is demoted from host3 (a worker) and the lease moves to host2;
// host1 is promoted again from itself, and host2 demoted back. No job, user or session is lost.
import { assert, eventually, hostIp, initHa, onHost, onHostOk } from '../helpers/compose-host.js';

interface Status {
  manager?: string;
  stateReplicas?: number;
  nodes: { name: string; state: string; manager?: boolean }[];
}
interface Job {
  name: string;
  state: string;
  acquired: Record<string, number[]>;
}

const status = async (host: string) => JSON.parse(await onHostOk(host, ['craneadm', 'status', '--json'], { timeoutMs: 10_000 })) as Status;
const roles = (s: Status) => s.nodes.map((n) => `${n.name} ${n.state} ${n.manager ? 'manager' : 'worker'}`).join(', ');
const crane = (host: string, ...args: string[]) => onHostOk(host, ['crane', ...args]);
const jobs = async (host: string) => JSON.parse(await crane(host, 'job', 'list', '-a', '--json')) as Job[];
const t0 = Date.now();
const step = (what: string) => console.log(`promote: ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

/** One `error:` line on stderr, exit 1. */
async function refused(host: string, argv: string[], line: string): Promise<void> {
  const r = await onHost(host, argv);
  assert.equal(r.stderr, `error: ${line}\n`, `${argv.join(' ')}: ${r.stdout}`);
  assert.equal(r.code, 1);
}

async function signin(host: string, pw: string): Promise<void> {
  await onHostOk(host, ['crane', 'user', 'signin', '-u', 'root', '--password-stdin'], { input: pw });
}

export default async function main(): Promise<void> {
  const { token, seed } = await initHa('host1');
  for (const h of ['host2', 'host3']) assert.equal(await onHostOk(h, ['craneadm', 'join', '--gpus', '2', token, seed]), `${h} joined cluster 'crane' (2 GPUs)\n`);
  assert.equal(roles(await status('host1')), 'host1 READY manager, host2 READY worker, host3 READY worker');
  step('an HA cluster of one manager and two workers');

  // Bad input: one line, exit 1, nothing changes.
  await refused('host1', ['craneadm', 'promote', 'nope'], "no node 'nope' in this cluster (craneadm status lists them)");
  await refused('host2', ['craneadm', 'demote', 'nope'], "no node 'nope' in this cluster (craneadm status lists them)");
  await refused('host1', ['craneadm', 'promote', 'host1'], 'host1 is a manager host already');
  await refused('host1', ['craneadm', 'demote', 'host3'], "host3 is a worker host already (craneadm status shows each node's role)");
  await refused('host2', ['craneadm', 'demote', 'host1'], "cannot demote host1: it is the cluster's last manager host (promote another host first)");

  // A job on every host; promoting host2 would restart its node manager: refused without --force.
  const pw = (await onHostOk('host1', ['cat', '/var/lib/crane/root-password'])).trim();
  await signin('host1', pw);
  for (const name of ['a', 'b', 'c']) await crane('host1', 'job', 'add', 'host', '2', '-c', `echo ${name}; sleep 600`, '-n', name);
  const running = await eventually(async () => {
    const js = await jobs('host1');
    assert.deepEqual(js.map((j) => j.state), ['RUNNING', 'RUNNING', 'RUNNING']);
    return js;
  });
  const on = (host: string, js: Job[]) => js.find((j) => j.acquired[host])!.name;
  const onHost2 = on('host2', running);
  const onHost3 = on('host3', running);
  await refused('host1', ['craneadm', 'promote', 'host2'], `1 job(s) run on host2 (${onHost2}): craneadm promote host2 --force requeues them`);
  assert.equal(roles(await status('host1')), 'host1 READY manager, host2 READY worker, host3 READY worker', 'nothing changed');
  assert.equal((await jobs('host1')).find((j) => j.name === onHost2)!.state, 'RUNNING');
  step('bad input refused');

  // Promote host2: its job is requeued (and runs again there), the state gets a second replica.
  assert.equal(await onHostOk('host1', ['craneadm', 'promote', 'host2', '--force'], { timeoutMs: 90_000 }), `host2 is a manager host now; requeued: ${onHost2}\n`);
  step('host2 promoted');
  assert.equal(roles(await status('host1')), 'host1 READY manager, host2 READY manager, host3 READY worker');
  await eventually(async () => assert.equal((await status('host1')).stateReplicas, 2), 20_000, 250);
  step('the state has 2 replicas');
  await refused('host2', ['craneadm', 'leave', '--force'], 'this host is one of the cluster\'s manager hosts: craneadm demote host2 first, then leave');

  // Demote host1 from host3: it holds the lease, which moves to host2; host3 was a leaf node of
  // host1 and finds host2 by itself.
  assert.equal((await status('host2')).manager, 'host1/cluster-manager');
  const demote1 = await onHostOk('host3', ['craneadm', 'demote', 'host1', '--force'], { timeoutMs: 90_000 });
  assert.match(demote1, /^host1 is a worker host now; requeued: [abc]\n$/);
  step('host1 demoted');
  const s2 = await status('host2');
  assert.equal(s2.manager, 'host2/cluster-manager');
  assert.equal(s2.stateReplicas, 1);
  assert.equal(roles(s2), 'host1 READY worker, host2 READY manager, host3 READY worker');
  await signin('host2', pw);
  await eventually(async () => assert.deepEqual((await jobs('host2')).map((j) => j.state), ['RUNNING', 'RUNNING', 'RUNNING']), 15_000);

  // host1 promotes itself again (under a new JetStream server name), then host2 goes back to
  // being a worker (from itself): the lease comes back to host1.
  const requeued = async (host: string) => {
    const name = (await jobs('host2')).find((j) => j.state === 'RUNNING' && j.acquired[host])?.name;
    return name ? `; requeued: ${name}` : '';
  };
  const r1 = await requeued('host1');
  assert.equal(await onHostOk('host1', ['craneadm', 'promote', 'host1', '--force'], { timeoutMs: 90_000 }), `host1 is a manager host now${r1}\n`);
  await eventually(async () => assert.equal((await status('host2')).stateReplicas, 2), 20_000, 250);
  step('host1 promoted again, 2 replicas');
  const r2 = await requeued('host2');
  assert.equal(await onHostOk('host2', ['craneadm', 'demote', 'host2', '--force'], { timeoutMs: 90_000 }), `host2 is a worker host now${r2}\n`);
  step('host2 demoted back');
  const s1 = await status('host1');
  assert.equal(s1.manager, 'host1/cluster-manager');
  assert.equal(s1.stateReplicas, 1);
  // host3 moves its leaf connection from host2 to host1 meanwhile: never long enough to be lost.
  await eventually(async () => assert.equal(roles(await status('host1')), 'host1 READY manager, host2 READY worker, host3 READY worker'), 10_000);
  const history = JSON.parse(await crane('host1', 'job', 'inspect', onHost3, '--json')).history.map((h: { state: string }) => h.state);
  assert.deepEqual(history, ['QUEUED', 'RUNNING'], `${onHost3} ran on host3 throughout, never requeued`);
  await eventually(async () => {
    const js = await jobs('host3').catch(async () => (await signin('host3', pw), jobs('host3')));
    assert.deepEqual(js.map((j) => `${j.name} ${j.state}`).sort(), ['a RUNNING', 'b RUNNING', 'c RUNNING']);
  }, 15_000);
  step('every job runs, root signs in on any host');
}
