// Compose script (see compose-cluster.test.ts): three manager hosts of an HA cluster (`init --ha`,
// `join --manager`) share a replicated JetStream; the host of the active cluster manager is killed
// outright and another manager takes over within 10 s: no job, user or session is lost.
import { assert, eventually, hostIp, initHa, killHost, onHost, onHostOk } from '../helpers/compose-host.js';

interface Status {
  manager?: string;
  stateReplicas?: number;
  leaders?: { state?: string; meta?: string };
  nodes: { name: string; state: string }[];
}
interface Job {
  name: string;
  state: string;
  acquired: Record<string, number[]>;
  history: { state: string; reason?: string }[];
}

const status = async (host: string) => JSON.parse(await onHostOk(host, ['craneadm', 'status', '--json'], { timeoutMs: 5_000 })) as Status;
const crane = (host: string, ...args: string[]) => onHostOk(host, ['crane', ...args]);
const jobs = async (host: string) => JSON.parse(await crane(host, 'job', 'list', '-a', '--json')) as Job[];
const byName = (js: Job[]) => Object.fromEntries(js.map((j) => [j.name, j]));

export default async function main(): Promise<void> {
  const { token, seed } = await initHa('host1');
  for (const h of ['host2', 'host3']) {
    const out = await onHostOk(h, ['craneadm', 'join', '--manager', '--advertise', await hostIp(h), '--gpus', '2', token, seed]);
    assert.equal(out, `${h} joined cluster 'crane' as a manager (2 GPUs)\n`);
  }
  // The state and the logs are replicated on all three manager hosts.
  await eventually(async () => assert.equal((await status('host1')).stateReplicas, 3), 15_000);
  assert.equal((await onHost('host2', ['test', '-e', '/var/lib/crane/root-password'])).code, 1, 'only the init host holds the root password');

  const pw = (await onHostOk('host1', ['cat', '/var/lib/crane/root-password'])).trim();
  await onHostOk('host2', ['crane', 'user', 'signin', '-u', 'root', '--password-stdin'], { input: pw });
  const alicePw = /^password: (\S+)$/m.exec(await onHostOk('host1', ['craneadm', 'user', 'add', 'alice']))?.[1];
  assert.ok(alicePw);
  for (const name of ['a', 'b', 'c']) await crane('host2', 'job', 'add', 'host', '2', '-c', `echo ${name} on $(hostname); sleep 300`, '-n', name);
  const before = await eventually(async () => {
    const js = byName(await jobs('host2'));
    for (const n of ['a', 'b', 'c']) assert.equal(js[n]?.state, 'RUNNING', JSON.stringify(js[n]));
    return js;
  });
  const onHost1 = Object.values(before).find((j) => j.acquired.host1)!.name;
  assert.equal((await status('host2')).manager, 'host1/cluster-manager');
  // The active manager's host hands its JetStream leaderships to the others once their replicas
  // have caught up: its death then costs no Raft election on top of the lease's TTL.
  const leaders = await eventually(async () => {
    const l = (await status('host1')).leaders;
    assert.ok(l?.state && l.meta && l.state !== 'host1' && l.meta !== 'host1', JSON.stringify(l));
    return l!;
  }, 20_000, 250);
  console.log(`failover: before the kill the state's leader is ${leaders.state}, the meta group's ${leaders.meta}`);

  // The manager host disappears without a word.
  await killHost('host1');
  const killedAt = Date.now();
  const manager = await eventually(async () => {
    const m = (await status('host2')).manager;
    assert.match(m ?? '', /^host[23]\/cluster-manager$/);
    return m!;
  }, 15_000, 100);
  const takeoverMs = Date.now() - killedAt;
  console.log(`failover: ${manager} took over ${takeoverMs} ms after host1 was killed`);
  assert.ok(takeoverMs <= 10_000, `took ${takeoverMs} ms`);

  // Sessions, users and jobs survived: the jobs on host2 and host3 never stopped, the one on
  // host1 went back to the queue when host1 was declared lost.
  await onHostOk('host3', ['crane', 'user', 'signin', '-u', 'alice', '--password-stdin'], { input: alicePw });
  await onHostOk('host3', ['crane', 'user', 'signin', '-u', 'root', '--password-stdin'], { input: pw });
  const after = await eventually(async () => {
    const js = byName(await jobs('host2'));
    assert.equal(js[onHost1]?.state, 'QUEUED');
    return js;
  }, 15_000);
  assert.deepEqual(Object.keys(after).sort(), ['a', 'b', 'c']);
  assert.equal(after[onHost1]!.history.at(-1)!.reason, 'node host1 was lost: requeued');
  for (const j of Object.values(after).filter((j) => j.name !== onHost1)) {
    assert.deepEqual(j.history.map((h) => h.state), ['QUEUED', 'RUNNING'], `${j.name} ran on`);
  }
  assert.match(await crane('host3', 'job', 'log', onHost1), new RegExp(`^${onHost1} on host1\n$`));

  // The new manager schedules: a job killed on host2 or host3 makes room for the requeued one.
  const other = Object.values(after).find((j) => j.name !== onHost1)!.name;
  await crane('host2', 'job', 'kill', other, '--force', '-y');
  await eventually(async () => assert.equal(byName(await jobs('host2'))[onHost1]?.state, 'RUNNING'), 10_000);
  const nodes = (await status('host3')).nodes.map((n) => `${n.name} ${n.state}`);
  assert.deepEqual(nodes, ['host1 LOST', 'host2 READY', 'host3 READY']);
  console.log(`failover: jobs, users and sessions survived; ${onHost1} requeued and running again`);
}
