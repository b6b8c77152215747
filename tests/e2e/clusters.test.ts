/**
 * Clusters side by side, options of craneadm standalone, sessions that expire, the bus trace and
 * the CLIs' own usage rules.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { BIN, CliCluster } from '../helpers/cli-cluster.js';

const one = new CliCluster();
const two = new CliCluster();
test.before(async () => {
  await Promise.all([one.start(['--gpus', '2', '--token-ttl', '3s']), two.start(['--gpus', '0,2,5', '--no-host-jobs'])]);
  await Promise.all([one.signin(), two.signin()]);
});
test.after.always(() => Promise.all([one.teardown(), two.teardown()]));

test('two clusters with different CRANE_HOME run side by side and never see each other', async (t) => {
  const [s1, s2] = await Promise.all([one.craneadm(['status', '--json']), two.craneadm(['status', '--json'])]);
  const [i1, i2] = [JSON.parse(s1.stdout), JSON.parse(s2.stdout)];
  t.not(i1.busUrl, i2.busUrl);
  t.deepEqual(i1.nodes[0].gpus, [0, 1]);
  t.deepEqual(i2.nodes[0].gpus, [0, 2, 5]);

  const add = await one.crane(['job', 'add', 'host', '1', '-c', 'sleep 30', '-n', 'only-in-one']);
  t.is(add.code, 0, add.stderr);
  t.regex((await one.crane(['job', 'list'])).stdout, /only-in-one/);
  t.false((await two.crane(['job', 'list', '-a'])).stdout.includes('only-in-one'));
  t.is(JSON.parse((await two.crane(['resource', 'all', '--json'])).stdout).total, 3);
  await one.crane(['job', 'rm', 'only-in-one', '--force']);
});

test('a node started with --no-host-jobs refuses host jobs with a clear error; Docker jobs run', async (t) => {
  const r = await two.crane(['job', 'add', 'host', '1', '-c', 'true']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: .*host jobs.*--no-host-jobs\)\n$/);
  const d = await two.crane(['job', 'add', 'crane-test/busybox', '2', '-c', 'sh -c "echo $CUDA_VISIBLE_DEVICES"', '-n', 'gpus']);
  t.is(d.code, 0, d.stderr);
  t.is((await two.crane(['job', 'wait', 'gpus'])).code, 0);
  t.regex((await two.crane(['job', 'log', 'gpus'])).stdout, /^(0,2|0,5|2,5)\n$/);
});

test('craneadm trace prints the live bus decoded', async (t) => {
  const trace = spawn(process.execPath, [BIN.craneadm, 'trace', '--json'], { env: one.env });
  let out = '';
  trace.stdout.on('data', (d) => (out += d));
  const ready = new Promise((r) => trace.stderr.once('data', r));
  await ready;
  await one.crane(['resource', 'all']);
  await new Promise((r) => setTimeout(r, 300));
  trace.kill('SIGINT');
  await new Promise((r) => trace.once('close', r));
  const msgs = out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const req = msgs.find((m) => m.subject === 'crane.local.gateway.resources');
  t.truthy(req, out);
  t.is(req.headers['Crane-Type'], 'resources');
  t.truthy(req.headers['Crane-Trace']);
  t.true(msgs.some((m) => m.headers['Crane-Type'] === 'resources.reply' && typeof m.body?.free === 'number'), 'replies show too');
  t.false(out.includes(JSON.parse(await readConfig()).token ?? '\u0000'), 'tokens are redacted');
  t.regex(out, /"token":"<redacted>"/);
});

async function readConfig(): Promise<string> {
  const cfg = JSON.parse(await readFile(`${one.config}/crane/config.json`, 'utf8'));
  return JSON.stringify(Object.values(cfg.tokens)[0]);
}

test('an expired session is refused with a hint to sign in again', async (t) => {
  const fresh = await one.signin();
  t.is(fresh.code, 0);
  const token = JSON.parse((await one.crane(['user', 'whoami', '--json'])).stdout);
  t.is(token.username, 'root');
  await new Promise((r) => setTimeout(r, 3500));
  const r = await one.crane(['job', 'list']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: .*expired.*crane user signin/);
  t.is((await one.signin()).code, 0, 'signing in again works');
});

test('the cluster not running: one line naming the socket and how to start it', async (t) => {
  const none = new CliCluster();
  t.teardown(() => none.teardown());
  for (const args of [['job', 'list'], ['user', 'signin', '-u', 'root', '--password-stdin']]) {
    const r = await none.crane(args, { input: 'x', env: { CRANE_TOKEN: 'x' } });
    t.is(r.code, 1);
    t.is(r.stderr, `error: cannot reach the cluster at ${none.home}/crane-cli.sock: start it with craneadm standalone\n`);
  }
  // Not signed in either: the missing cluster is what to hear about first.
  const unsigned = await none.crane(['job', 'list']);
  t.is(unsigned.code, 1);
  t.is(unsigned.stderr, `error: cannot reach the cluster at ${none.home}/crane-cli.sock: start it with craneadm standalone\n`);
  const adm = await none.craneadm(['status']);
  t.is(adm.code, 1);
  t.regex(adm.stderr, /^error: cannot reach the cluster at .*crane-adm\.sock: start it with craneadm standalone\n$/);
});

test('usage errors exit 2; help exits 0 and shows examples', async (t) => {
  const help = await one.crane(['job', 'add', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /Examples:/);
  t.regex((await one.crane(['job'])).stdout, /job add <IMAGE> <RESOURCE>/);
  t.is((await one.crane(['job', 'frobnicate'])).code, 2);
  t.is((await one.crane(['job', 'add', 'host'])).code, 2);
  t.is((await one.crane(['job', 'list', '--bogus'])).code, 2);
  t.is((await one.craneadm(['--help'])).code, 0);
  t.regex((await one.craneadm(['standalone', '--help'])).stdout, /--no-host-jobs/);
});
