/**
 * Two cluster-manager candidates (`craneadm pseudocluster --managers 2`): one holds the lease in
 * JetStream KV and is active. Killed, the other takes over within 10 s and no job is lost.
 */
import test from 'ava';
import { CliCluster } from '../helpers/cli-cluster.js';

const c = new CliCluster();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Status {
  manager?: string;
  processes: { name: string; pid?: number; state: string; restarts: number }[];
}
const status = async (): Promise<Status | undefined> => {
  const r = await c.craneadm(['status', '--json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
};

test.before(async () => {
  const r = await c.craneadm(['pseudocluster', '--nodes', '2', '--gpus-per-node', '2', '--managers', '2', '--detach']);
  if (r.code !== 0) throw new Error(`pseudocluster did not start: ${r.stderr}`);
  await c.signin();
});
test.after.always(() => c.teardown());

test('the active manager killed: the standby takes over within 10 s; jobs and sessions survive', async (t) => {
  const before = (await status())!;
  t.regex(before.manager ?? '', /^cluster-manager-[12]$/);
  t.regex((await c.craneadm(['status'])).stdout, new RegExp(`^manager: +${before.manager} \\(active\\)$`, 'm'));
  t.is((await c.crane(['job', 'add', 'host', '1', '-c', 'sleep 8; echo survived', '-n', 'long'])).code, 0);
  t.is((await c.crane(['job', 'add', 'host', '1:4', '-c', 'true', '-n', 'queued'])).code, 0);

  // Its host hangs (the process is frozen): no lease renewal, no answers.
  const active = before.processes.find((p) => p.name === before.manager)!;
  const killedAt = Date.now();
  process.kill(active.pid!, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(active.pid!, 'SIGCONT');
    } catch {}
  });
  let after: Status | undefined;
  while (Date.now() - killedAt < 15_000) {
    after = await status();
    if (after?.manager && after.manager !== before.manager) break;
    await sleep(200);
  }
  const took = Date.now() - killedAt;
  t.log(`takeover after ${took} ms`);
  t.not(after?.manager, before.manager);
  t.true(took < 10_000, `took ${took} ms`);

  const list = JSON.parse((await c.crane(['job', 'list', '-a', '--json'])).stdout) as { name: string; state: string }[];
  t.deepEqual(list.map((j) => [j.name, j.state]).sort(), [['long', 'RUNNING'], ['queued', 'QUEUED']]);
  t.is((await c.crane(['job', 'wait', 'long'])).code, 0);
  t.is((await c.crane(['job', 'log', 'long'])).stdout, 'survived\n');
  t.is((await c.crane(['job', 'wait', 'queued'])).code, 0, 'the queued job ran once the GPUs were free');

  // The old manager wakes up: it finds its lease gone and steps down (its process restarts as a
  // standby); the new one stays active and nothing is answered twice.
  process.kill(active.pid!, 'SIGCONT');
  let old: Status['processes'][number] | undefined;
  for (let i = 0; i < 50; i++) {
    old = (await status())?.processes.find((p) => p.name === before.manager);
    if (old && old.pid !== active.pid && old.state === 'running') break;
    await sleep(200);
  }
  t.not(old?.pid, active.pid, 'the old manager stepped down');
  t.is((await status())?.manager, after?.manager);
  t.is((await c.crane(['job', 'log', 'long'])).stdout, 'survived\n', 'one log store answers');
});

