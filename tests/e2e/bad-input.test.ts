/**
 * Bad input, as a user meets it: one clear `error:` line on stderr, exit 1, and the cluster keeps
 * running with nothing lost.
 */
import { request } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { CliCluster, type RunResult } from '../helpers/cli-cluster.js';

const c = new CliCluster();
const bob = c.otherUser();
let keeperId = '';

test.before(async () => {
  await c.start(['--gpus', '4']);
  const alicePw = await c.addUser('alice');
  const bobPw = await c.addUser('bob');
  if ((await c.signin('alice', alicePw)).code) throw new Error('alice cannot sign in');
  if ((await bob.signin('bob', bobPw)).code) throw new Error('bob cannot sign in');
  // A running job of alice's that every bad request below must leave alone.
  const r = await c.crane(['job', 'add', 'host', '1', '-c', 'sleep 300', '-n', 'keeper', '--json']);
  keeperId = JSON.parse(r.stdout).id;
  await c.crane(['job', 'add', 'host', '1', '-c', 'true', '-n', 'train-a']);
  await c.crane(['job', 'add', 'host', '1', '-c', 'true', '-n', 'train-b']);
});
test.after.always(async () => {
  await bob.teardown();
  await c.teardown();
});

/** Exit 1 and exactly one line on stderr, matching `re`. */
function oneLineError(t: ExecutionContext, r: RunResult, re: RegExp) {
  t.is(r.code, 1, `exit code; stderr: ${r.stderr}`);
  t.is(r.stderr.split('\n').filter(Boolean).length, 1, `one line: ${r.stderr}`);
  t.regex(r.stderr, /^error: /);
  t.regex(r.stderr, re);
}

for (const resource of ['abc', '2:1', '-1', '1:2:3:4', '']) {
  test(`resource '${resource}' is refused`, async (t) => {
    oneLineError(t, await c.crane(['job', 'add', 'host', resource, '-c', 'true']), /invalid resource/);
  });
}

test('-e NOEQUALS and -m a:b are refused', async (t) => {
  oneLineError(t, await c.crane(['job', 'add', 'host', '1', '-e', 'NOEQUALS', '-c', 'true']), /invalid -e 'NOEQUALS': expected KEY=VALUE/);
  oneLineError(t, await c.crane(['job', 'add', 'host', '1', '-m', 'a:b', '-c', 'true']), /invalid -m 'a:b'/);
});

test('an unknown job is not found by every job command', async (t) => {
  for (const cmd of [['inspect'], ['log'], ['wait'], ['rm'], ['kill', '-y']]) {
    oneLineError(t, await c.crane(['job', cmd[0]!, 'nosuchjob', ...cmd.slice(1)]), /^error: no job matches 'nosuchjob'\n$/);
  }
});

test('an ambiguous prefix names the candidates', async (t) => {
  for (const cmd of ['inspect', 'log']) {
    oneLineError(t, await c.crane(['job', cmd, 'train']), /'train' matches 2 jobs: train-\w .*train-\w/);
  }
});

test('a second job with the same name is refused', async (t) => {
  oneLineError(t, await c.crane(['job', 'add', 'host', '1', '-c', 'true', '-n', 'train-a']), /already have a job named 'train-a'/);
  // Another user may use the name.
  const other = await bob.crane(['job', 'add', 'host', '1', '-c', 'true', '-n', 'train-a']);
  t.is(other.code, 0, other.stderr);
  t.is((await bob.crane(['job', 'wait', 'train-a'])).code, 0);
});

test('a wrong password and a forged token are refused', async (t) => {
  oneLineError(t, await bob.crane(['user', 'signin', '-u', 'alice', '--password-stdin'], { input: 'not-her-password' }), /wrong username or password/);
  oneLineError(t, await bob.crane(['user', 'signin', '-u', 'nobody', '--password-stdin'], { input: 'whatever1' }), /wrong username or password/);
  oneLineError(t, await c.crane(['job', 'list'], { env: { CRANE_TOKEN: 'forged-token' } }), /invalid token: sign in again/);
  t.is((await bob.crane(['user', 'whoami'])).stdout.includes('username: bob'), true, 'a failed sign-in keeps the old session');
});

test("bob naming alice's job sees exactly what a missing job looks like", async (t) => {
  for (const ref of ['keeper', keeperId, keeperId.slice(0, 8)]) {
    for (const cmd of [['inspect'], ['log'], ['wait'], ['kill', '-y'], ['rm', '--force']]) {
      oneLineError(t, await bob.crane(['job', cmd[0]!, ref, ...cmd.slice(1)]), new RegExp(`^error: no job matches '${ref}'\\n$`));
    }
  }
  t.false((await bob.crane(['job', 'list', '-a', '--json'])).stdout.includes(keeperId));
});

test('more GPUs than the cluster has is refused at once, not queued', async (t) => {
  const started = Date.now();
  oneLineError(t, await c.crane(['job', 'add', 'host', '5', '-c', 'true']), /needs 5 GPUs but the cluster has 4/);
  oneLineError(t, await c.crane(['job', 'add', 'host', '1:5:8', '-c', 'true']), /needs 5 GPUs but the cluster has 4/);
  t.true(Date.now() - started < 5000);
});

test('an image the node cannot run is refused with the reason', async (t) => {
  oneLineError(t, await c.crane(['job', 'add', 'nosuch/image:1', '1', '-c', 'true']), /cannot run image 'nosuch\/image:1'/);
});

function raw(path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: `${c.home}/crane-cli.sock`, path, method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a malformed or oversized HTTP body on the socket gets 400 / 413 with a JSON error', async (t) => {
  const bad = await raw('/v1/jobs', '{"resources": ');
  t.is(bad.status, 400);
  t.regex(JSON.parse(bad.body).error.message, /JSON/i);
  const big = await raw('/v1/jobs', Buffer.alloc(2 * 1024 * 1024, 0x20)).catch((e: Error) => ({ status: -1, body: e.message }));
  t.true(big.status === 413 || /EPIPE|ECONNRESET/.test(big.body), `got ${big.status} ${big.body}`);
  if (big.status === 413) t.regex(JSON.parse(big.body).error.message, /too large/);
});

test('a bad sign-in payload and an unknown route are clear errors too', async (t) => {
  const r = await raw('/v1/auth/signin', '[]');
  t.is(r.status, 400);
  const nope = await raw('/v1/nothing', '{}');
  t.is(nope.status, 404);
});

test.after('the cluster kept running and lost nothing', async (t) => {
  const list = JSON.parse((await c.crane(['job', 'list', '-a', '--json'])).stdout);
  t.deepEqual(list.map((j: { name: string }) => j.name).sort(), ['keeper', 'train-a', 'train-b']);
  t.is(list.find((j: { name: string }) => j.name === 'keeper').state, 'RUNNING');
  t.is((await c.crane(['resource', 'all'])).stdout.trim(), 'Free: 3 / Busy: 1');
});
