/**
 * Sharing a cluster: weighted fair share between users, FIFO and --priority within a user, GPU
 * quotas, and the reason a queued job waits — through the binaries, on a 2-GPU standalone.
 */
import test from 'ava';
import { CliCluster } from '../helpers/cli-cluster.js';

const admin = new CliCluster();
let alice: CliCluster;
let bob: CliCluster;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Job {
  name: string;
  state: string;
  queuePosition?: number;
  queueReason?: string;
}
const jobs = async (u: CliCluster): Promise<Record<string, Job>> =>
  Object.fromEntries((JSON.parse((await u.crane(['job', 'list', '--json'])).stdout) as Job[]).map((j) => [j.name, j]));
async function until(what: string, probe: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await probe()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test.before(async () => {
  await admin.start(['--gpus', '2']);
  await admin.signin();
  alice = await admin.newUser('alice');
  bob = await admin.newUser('bob');
});
test.after.always(async () => {
  await Promise.all([alice.teardown(), bob.teardown()]);
  await admin.teardown();
});

test.serial('freed GPUs go to the user furthest below their share, not to the oldest job', async (t) => {
  for (const n of ['a1', 'a2', 'a3']) t.is((await alice.crane(['job', 'add', 'host', '1', '-c', 'sleep 60', '-n', n])).code, 0);
  const a = await jobs(alice);
  t.deepEqual([a.a1!.state, a.a2!.state, a.a3!.state], ['RUNNING', 'RUNNING', 'QUEUED']);
  t.is(a.a3!.queueReason, 'waiting for 1 more GPU (0 of 1 free; reserved)');
  t.regex((await alice.crane(['job', 'list'])).stdout, /\na3 +\d+s +QUEUED \d+s #1: waiting for 1 more GPU/);

  // bob holds nothing, alice 2: bob's job goes in front of alice's older one.
  t.is((await bob.crane(['job', 'add', 'host', '1', '-c', 'sleep 60', '-n', 'b1'])).code, 0);
  const b1 = (await jobs(bob)).b1!;
  t.deepEqual([b1.queuePosition, b1.queueReason], [1, 'waiting for 1 more GPU (0 of 1 free; reserved)']);
  t.is((await jobs(alice)).a3!.queueReason, 'behind a reservation for job b1');

  t.is((await alice.crane(['job', 'kill', 'a1', '-y'])).code, 0);
  await until('b1 RUNNING', async () => (await jobs(bob)).b1?.state === 'RUNNING');
  t.is((await jobs(alice)).a3!.state, 'QUEUED', 'alice holds 1 GPU and bob 0: bob goes first');
});

test.serial('--priority: a user\'s higher-priority job pauses their running lower one, which is first in line to resume; a quota caps what they hold', async (t) => {
  t.is((await alice.crane(['job', 'add', 'host', '1', '-c', 'sleep 60', '-n', 'urgent', '--priority', '5'])).code, 0);
  await until('urgent RUNNING', async () => (await jobs(alice)).urgent?.state === 'RUNNING');
  const a = await jobs(alice);
  t.is(a.a2!.state, 'PAUSED', 'alice\'s running a2 (priority 0) made room for urgent (priority 5)');
  t.regex(a.a2!.queueReason!, /^waiting for 1 more GPU/);
  t.true(a.a2!.queuePosition! < a.a3!.queuePosition!, 'the paused a2 resumes before the newer a3 starts');
  t.is(a.a3!.queueReason, 'behind your job a2 (it waits for GPUs)');
  t.regex((await alice.crane(['job', 'inspect', 'a2'])).stdout, /reason: paused for higher-priority job urgent \(\w{8}\)/);

  t.is((await admin.craneadm(['user', 'quota', 'alice', '--gpus', '1', '--weight', '2'])).stdout, 'alice: quota 1 GPUs, weight 2\n');
  t.regex((await admin.craneadm(['user', 'ls'])).stdout, /\nalice +\S+ +1 +2\n/);
  const refused = await alice.crane(['job', 'add', 'host', '2', '-c', 'true']);
  t.is(refused.code, 1);
  t.is(refused.stderr, 'error: job can never run: it needs 2 GPUs but your quota is 1\n');
  t.is((await jobs(alice)).a2!.queueReason, 'over quota: you hold 1 of 1 GPUs and it needs 1');
  t.is((await admin.craneadm(['user', 'quota', 'alice', '--gpus', 'none'])).stdout, 'alice: quota none GPUs, weight 2\n');
});

test('bad input is one line and exit 1', async (t) => {
  const cases: Array<[CliCluster, string[], RegExp]> = [
    [alice, ['job', 'add', 'host', '1', '-c', 'true', '--priority', 'high'], /^error: invalid --priority 'high': expected a whole number from -1000 to 1000\n$/],
    [alice, ['job', 'add', 'host', '1', '-c', 'true', '--priority', '5000'], /^error: invalid --priority '5000'/],
    [admin, ['user', 'quota', 'alice', '--gpus', '-1'], /^error: invalid --gpus '-1': expected a whole number ≥ 0, or none\n$/],
    [admin, ['user', 'quota', 'alice', '--weight', '0'], /^error: invalid --weight '0'/],
    [admin, ['user', 'quota', 'nobody', '--gpus', '1'], /^error: no user nobody\n$/],
  ];
  for (const [who, args, err] of cases) {
    const r = who === admin && args[0] === 'user' ? await admin.craneadm(args) : await who.crane(args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, err);
  }
  t.is((await admin.craneadm(['user', 'quota', 'alice'])).code, 2, 'no option: usage');
});
