// Compose script (see compose-cluster.test.ts): a 3-host cluster built as an administrator would
// build it. host1 runs `craneadm init`, host2 and host3 `craneadm join`; a job whose MIN needs two
// hosts runs across them; a host leaves with --force while a job runs there; a wrong token is
// refused and changes nothing.
import { assert, eventually, hostIp, onHost, onHostOk } from '../helpers/compose-host.js';

interface Node {
  name: string;
  state: string;
  free: number[];
}
interface Job {
  state: string;
  acquired: Record<string, number[]>;
  history: { state: string; reason?: string }[];
}

const status = async (host: string) => JSON.parse(await onHostOk(host, ['craneadm', 'status', '--json'])) as { nodes: Node[] };
const crane = (host: string, ...args: string[]) => onHostOk(host, ['crane', ...args]);
const inspect = async (host: string, job: string) => JSON.parse(await crane(host, 'job', 'inspect', job, '--json')) as Job;

export default async function main(): Promise<void> {
  const ip1 = await hostIp('host1');
  const t0 = Date.now();
  const init = await onHostOk('host1', ['craneadm', 'init', '--advertise', ip1, '--gpus', '2']);
  const join = /^ {2}(craneadm join \S+ \S+)$/m.exec(init)?.[1];
  assert.ok(join, init);
  assert.match(join, new RegExp(`${ip1.replace(/\./g, '\\.')}:7422$`));
  const [, , token, seed] = join.split(' ') as [string, string, string, string];

  // A wrong token (another cluster's secret): refused, and host3 stays out.
  const payload = JSON.parse(Buffer.from(token.slice(7), 'base64url').toString());
  const wrong = `crane1.${Buffer.from(JSON.stringify({ ...payload, secret: 'stale' })).toString('base64url')}`;
  const refused = await onHost('host3', ['craneadm', 'join', wrong, seed, '--gpus', '2']);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, `error: the cluster at ${seed} refused this host: the join token is wrong or stale\n`);

  for (const h of ['host2', 'host3']) assert.equal(await onHostOk(h, ['craneadm', 'join', token, seed, '--gpus', '2']), `${h} joined cluster 'crane' (2 GPUs)\n`);
  console.log(`cluster of 3 formed in ${Date.now() - t0} ms`);
  const promote = await onHost('host1', ['craneadm', 'promote', 'host2']);
  assert.deepEqual([promote.code, promote.stderr], [1, 'error: promote needs a cluster started with craneadm init --ha\n']);
  const nodes = (await status('host1')).nodes;
  assert.deepEqual(nodes.map((n) => [n.name, n.state, n.free.length]), [['host1', 'READY', 2], ['host2', 'READY', 2], ['host3', 'READY', 2]]);

  // Users sign in on any host; a job whose MIN (3) is more than one host has runs across two.
  const pw = (await onHostOk('host1', ['cat', '/var/lib/crane/root-password'])).trim();
  await onHostOk('host2', ['crane', 'user', 'signin', '-u', 'root', '--password-stdin'], { input: pw });
  const addedAt = Date.now();
  await crane('host2', 'job', 'add', 'host', '1:3', '-c', 'echo on $(hostname) with GPUs $CRANE_GPUS; sleep 120', '-n', 'span');
  const span = await eventually(async () => {
    const j = await inspect('host2', 'span');
    assert.equal(j.state, 'RUNNING');
    return j;
  });
  console.log(`job add → RUNNING on the 3-host cluster: ${Date.now() - addedAt} ms (CLI round trips included)`);
  const hosts = Object.keys(span.acquired);
  assert.equal(hosts.length, 2, JSON.stringify(span.acquired));
  assert.equal(Object.values(span.acquired).flat().length, 3);
  await eventually(async () => assert.match(await crane('host2', 'job', 'log', 'span'), /^on host\d with GPUs \d(,\d)*\n$/));
  assert.equal(await crane('host3', 'resource', 'all').catch(() => 'not signed in'), 'not signed in', 'host3 has its own sign-in');

  // A worker that holds part of the job leaves with --force: the job is requeued and runs on what is left.
  const leaver = hosts.find((h) => h !== 'host1')!;
  const left = await onHostOk(leaver, ['craneadm', 'leave', '--force']);
  assert.equal(left, `${leaver} left cluster 'crane'; requeued: span\n`);
  const again = await eventually(async () => {
    const j = await inspect('host2' === leaver ? 'host1' : 'host2', 'span').catch(async () => {
      await onHostOk('host1', ['crane', 'user', 'signin', '-u', 'root', '--password-stdin'], { input: pw });
      return inspect('host1', 'span');
    });
    assert.equal(j.state, 'RUNNING');
    return j;
  }, 15_000);
  assert.ok(!Object.keys(again.acquired).includes(leaver), JSON.stringify(again.acquired));
  assert.deepEqual(
    again.history.map((h) => h.state),
    ['QUEUED', 'RUNNING', 'QUEUED', 'RUNNING'],
  );
  assert.equal(again.history[2]!.reason, `node ${leaver} left the cluster: requeued`);
  assert.deepEqual((await status('host1')).nodes.map((n) => n.name), ['host1', 'host2', 'host3'].filter((h) => h !== leaver));
  assert.equal((await onHost(leaver, ['craneadm', 'leave'])).stderr, 'error: this host is not a member of a cluster\n');
  console.log(`cluster: init, 2 joins, a job across 2 hosts, ${leaver} left and the job moved`);
}
