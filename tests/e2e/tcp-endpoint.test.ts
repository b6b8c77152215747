/**
 * The TCP endpoint (`--listen IP:PORT`): the same API as the sockets, and the same bearer tokens;
 * admin routes need an administrator's token there, since no file permission vouches for the caller.
 */
import test from 'ava';
import { CliCluster } from '../helpers/cli-cluster.js';

const c = new CliCluster();
let tcp = '';

test.before(async () => {
  await c.start(['--gpus', '2', '--listen', '127.0.0.1:0']);
  tcp = JSON.parse((await c.craneadm(['status', '--json'])).stdout).tcp;
});
test.after.always(() => c.teardown());

/** Another user's shell on this machine: own config, so own endpoint choice and sign-in. */
const tcpShell = () => c.otherUser();

test.serial('status shows the endpoint; without a token the API says how to sign in', async (t) => {
  t.regex(tcp, /^127\.0\.0\.1:\d+$/);
  t.regex((await c.craneadm(['status'])).stdout, new RegExp(`^tcp: +${tcp.replace(/\./g, '\\.')}$`, 'm'));
  const u = tcpShell();
  t.is((await u.crane(['endpoint', 'set', tcp])).code, 0);
  const r = await u.crane(['job', 'list']);
  t.is(r.code, 1);
  t.is(r.stderr, `error: not signed in to ${tcp}: run crane user signin -u NAME\n`);
  t.is((await u.craneadm(['endpoint', 'set', tcp])).code, 0);
  const s = await u.craneadm(['status']);
  t.is(s.code, 1);
  t.regex(s.stderr, /^error: the TCP endpoint needs an administrator token: .*\n$/);
  const forged = await u.crane(['job', 'list'], { env: { CRANE_TOKEN: 'forged-token' } });
  t.is(forged.code, 1);
  t.regex(forged.stderr, /^error: invalid token/);
  // Writes without a token change nothing: no user, no job.
  const add = await u.craneadm(['user', 'add', 'mallory']);
  t.is(add.code, 1);
  t.regex(add.stderr, /^error: the TCP endpoint needs an administrator token: .*\n$/);
  const job = await u.crane(['job', 'add', 'host', '1', '-c', 'true', '-n', 'sneaky']);
  t.deepEqual([job.code, job.stderr], [1, `error: not signed in to ${tcp}: run crane user signin -u NAME\n`]);
  t.regex((await c.craneadm(['user', 'ls'])).stdout, /^USERNAME/);
  t.false((await c.craneadm(['user', 'ls'])).stdout.includes('mallory'));
  t.is((await c.signin()).code, 0);
  const list = await c.crane(['job', 'list', '-a']);
  t.is(list.code, 0, list.stderr);
  t.false(list.stdout.includes('sneaky'));
  await u.teardown();
});

test.serial('sign in over TCP, run a job; an admin token opens the admin routes, a user token does not', async (t) => {
  const pw = await c.addUser('dora');
  const root = tcpShell();
  await root.crane(['endpoint', 'set', tcp]);
  await root.craneadm(['endpoint', 'set', tcp]);
  t.is((await root.signin()).code, 0);
  t.is((await root.craneadm(['user', 'ls'])).code, 0);
  t.regex((await root.craneadm(['status'])).stdout, /^mode: +standalone$/m);

  const dora = tcpShell();
  await dora.crane(['endpoint', 'set', tcp]);
  await dora.craneadm(['endpoint', 'set', tcp]);
  t.is((await dora.signin('dora', pw)).code, 0);
  t.is((await dora.crane(['job', 'add', 'host', '1', '-c', 'echo over-tcp', '-n', 'tcp-job'])).code, 0);
  t.is((await dora.crane(['job', 'wait', 'tcp-job'])).code, 0);
  t.is((await dora.crane(['job', 'log', 'tcp-job'])).stdout, 'over-tcp\n');
  const denied = await dora.craneadm(['user', 'ls']);
  t.is(denied.code, 1);
  t.is(denied.stderr, 'error: user dora is not an administrator\n');
  await Promise.all([root.teardown(), dora.teardown()]);
});

test('a bad --listen address is one line and exit 1', async (t) => {
  const other = new CliCluster();
  for (const bad of ['nope', '1.2.3.4', '127.0.0.1:99999', 'localhost:7070']) {
    const r = await other.craneadm(['standalone', '--listen', bad]);
    t.is(r.code, 1, bad);
    t.is(r.stderr, `error: invalid --listen '${bad}': expected IP:PORT (e.g. 0.0.0.0:7070, 127.0.0.1:0)\n`);
  }
  await other.teardown();
});
