/**
 * The walking-skeleton user story, step by step through the compiled binaries: a standalone
 * cluster with 4 declared GPUs, root and alice, a host job and a Docker job.
 */
import { statSync } from 'node:fs';
import test from 'ava';
import { CliCluster } from '../helpers/cli-cluster.js';

const c = new CliCluster();
test.after.always(() => c.teardown());
test.afterEach.always((t) => {
  if (!t.passed) t.log(c.standaloneLog().split('\n').slice(-40).join('\n'));
});

test.serial('craneadm standalone --detach returns once ready and prints sockets and bus', async (t) => {
  const r = await c.start(['--gpus', '4']);
  t.regex(r.stdout, /Crane standalone is ready/);
  t.true(r.stdout.includes(`cli socket: ${c.home}/crane-cli.sock`));
  t.true(r.stdout.includes(`adm socket: ${c.home}/crane-adm.sock`));
  t.regex(r.stdout, /bus: nats:\/\/127\.0\.0\.1:\d+/);
  t.is(statSync(`${c.home}/root-password`).mode & 0o777, 0o600);
  t.false(c.standaloneLog().includes(c.rootPassword()), 'the root password is never logged');

  const again = await c.craneadm(['standalone', '--detach', '--gpus', '4']);
  t.is(again.code, 0);
  t.regex(again.stdout, /already running/);
});

test.serial('root signs in; craneadm user add alice prints a password alice signs in with', async (t) => {
  const root = await c.signin();
  t.is(root.code, 0, root.stderr);
  t.is(statSync(`${c.config}/crane/config.json`).mode & 0o777, 0o600);
  t.regex((await c.crane(['user', 'whoami'])).stdout, /username: root\s+\[ADMIN\]/);

  const pw = await c.addUser('alice');
  t.true(pw.length >= 12);
  const alice = await c.signin('alice', pw);
  t.is(alice.code, 0, alice.stderr);
  t.is(alice.stdout.trim(), 'Signed in as alice');
  const who = await c.crane(['user', 'whoami']);
  t.regex(who.stdout, /^id: [0-9a-f-]{36}\nusername: alice\n$/);
});

test.serial('crane resource all shows 4 free GPUs; -v a row per GPU', async (t) => {
  t.is((await c.crane(['resource', 'all'])).stdout.trim(), 'Free: 4 / Busy: 0');
  const v = await c.crane(['resource', 'all', '-v']);
  t.is(v.stdout.split('\n').filter((l) => / free\s*$/.test(l)).length, 4);
  const json = JSON.parse((await c.crane(['resource', 'all', '--json'])).stdout);
  t.like(json, { free: 4, busy: 0, total: 4 });
});

test.serial('a host job and a Docker job run; list, log -f, wait, inspect, kill, rm', async (t) => {
  const add = await c.crane(['job', 'add', 'host', '2', '-c', 'echo hello; sleep 2; echo bye >&2', '-n', 'first', '-t', 'demo']);
  t.is(add.code, 0, add.stderr);
  t.regex(add.stdout, /^Job ID: +[0-9a-f-]{36}\nJob name: +first\nAdd time: +\d{4}-\d\d-\d\dT/);

  const dock = await c.crane(['job', 'add', 'crane-test/busybox', '1', '-c', 'echo in-container', '-n', 'boxed', '--json']);
  t.is(dock.code, 0, dock.stderr);
  t.is(JSON.parse(dock.stdout).name, 'boxed');

  const list = await c.crane(['job', 'list']);
  t.regex(list.stdout, /^NAME +TAGS +CREATED +STATUS +GPU/);
  t.regex(list.stdout, /\nfirst +demo +\d+s +RUNNING \d+s +2\/2/);

  const started = Date.now();
  const log = await c.crane(['job', 'log', 'first', '-f']);
  t.is(log.code, 0, log.stderr);
  t.is(log.stdout, 'hello\n[stderr] bye\n');
  t.true(Date.now() - started >= 1000, 'log -f returns when the job ends, not before');

  const wait = await c.crane(['job', 'wait', 'first']);
  t.is(wait.code, 0);
  t.regex(wait.stderr, /first DONE exit 0/);

  const boxed = await c.crane(['job', 'wait', 'boxed']);
  t.is(boxed.code, 0, boxed.stderr);
  t.is((await c.crane(['job', 'log', 'boxed'])).stdout, 'in-container\n');

  const inspect = await c.crane(['job', 'inspect', 'first']);
  t.regex(inspect.stdout, /^name: first$/m);
  t.regex(inspect.stdout, /image: host/);
  t.regex(inspect.stdout, /state: QUEUED[\s\S]*state: RUNNING[\s\S]*state: DONE/);
  t.regex(inspect.stdout, /acquired:\n {2}\S+:\n {4}- 0\n {4}- 1\n/);

  t.is((await c.crane(['job', 'list'])).stdout.includes('first'), false, 'finished jobs leave the default list');
  t.regex((await c.crane(['job', 'list', '-a'])).stdout, /first +demo .*DONE/);

  const kill = await c.crane(['job', 'kill', 'first', '--force', '-y']);
  t.is(kill.code, 0, kill.stderr);
  t.regex(kill.stdout, /already ended \(DONE\)/);
  const rm = await c.crane(['job', 'rm', 'first']);
  t.is(rm.code, 0, rm.stderr);
  const gone = await c.crane(['job', 'log', 'first']);
  t.is(gone.code, 1);
  t.is(gone.stderr, "error: no job matches 'first'\n");
});

test.serial('kill ends a running job gracefully; wait exits with its code; rm --force', async (t) => {
  await c.crane(['job', 'add', 'host', '1', '-c', 'trap "echo term; exit 143" TERM; while true; do sleep 0.1; done', '-n', 'loop']);
  await c.crane(['job', 'add', 'host', '1', '-c', 'exit 7', '-n', 'seven']);
  t.is((await c.crane(['job', 'wait', 'seven'])).code, 7);

  t.is((await c.crane(['job', 'kill', 'loop'])).code, 1, 'without -y and no terminal, kill refuses');
  const kill = await c.crane(['job', 'kill', 'loop', '-y']);
  t.is(kill.stdout.trim(), 'Killed 1 job(s).');
  const wait = await c.crane(['job', 'wait', 'loop']);
  t.is(wait.code, 143, 'wait exits with the code the job ended with');
  t.regex(wait.stderr, /loop ERROR exit 143 \(killed\)/);
  t.regex((await c.crane(['job', 'log', 'loop'])).stdout, /term/);

  await c.crane(['job', 'add', 'host', '1', '-c', 'sleep 60', '-n', 'long']);
  const rm = await c.crane(['job', 'rm', 'long']);
  t.is(rm.code, 1);
  t.regex(rm.stderr, /still RUNNING|active|--force/);
  t.is((await c.crane(['job', 'rm', 'long', '--force'])).code, 0);
  t.is((await c.crane(['resource', 'all'])).stdout.trim(), 'Free: 4 / Busy: 0');
});

test.serial('craneadm status shows mode, bus, sockets and the node; craneadm stop ends it', async (t) => {
  const s = await c.craneadm(['status']);
  t.regex(s.stdout, /^mode: +standalone$/m);
  t.regex(s.stdout, /^bus: +nats:\/\/127\.0\.0\.1:\d+$/m);
  t.regex(s.stdout, /^cli socket: .*crane-cli\.sock$/m);
  t.regex(s.stdout, /\n\S+ +\d+ +0,1,2,3 +0,1,2,3 +4\/4 +READY/);

  t.is((await c.craneadm(['stop'])).stdout.trim(), 'stopped');
  const after = await c.crane(['job', 'list']);
  t.is(after.code, 1);
  t.is(after.stderr, `error: cannot reach the cluster at ${c.home}/crane-cli.sock: start it with craneadm standalone\n`);
});
