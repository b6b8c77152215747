/**
 * Elastic jobs and cargos through the binaries, on a pseudocluster of 2 nodes × 4 GPUs: alice's
 * app manager (a shell script using `crane cargo` with its own job token) grows, starts a cargo
 * across nodes, and gives GPUs back when bob's job needs them; pause and resume; bad input.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { BIN, CliCluster } from '../helpers/cli-cluster.js';

const admin = new CliCluster();
let alice: CliCluster;
let bob: CliCluster;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Job {
  name: string;
  state: string;
  acquired: Record<string, number[]>;
  reason?: string;
  cargos?: Array<{ name: string; state: string; containers: Array<{ node: string; gpus: number[]; state: string }> }>;
}
const gpus = (j: Job) => Object.values(j.acquired).flat().length;
const inspect = async (u: CliCluster, ref: string): Promise<Job> => JSON.parse((await u.crane(['job', 'inspect', ref, '--json'])).stdout);
async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

// A cooperative app manager: waits for its grant to grow, starts a 2 × 2-GPU cargo, and stops it
// when the cluster asks for GPUs back.
const AM = `#!/bin/sh
C="node ${BIN.crane}"
echo "am: job $CRANE_JOB_NAME on $CRANE_NODE, GPUs $CRANE_GPUS"
until $C cargo create -n train --replicas 2 --gpus 2 -c 'echo worker $CRANE_CONTAINER_ID on $CRANE_NODE GPUs $CRANE_GPUS; sleep 300' --shell 2>/dev/null; do sleep 0.2; done
$C job events --json | while read -r e; do
  case "$e" in
    *'"shrink.requested"'*) echo "am: asked to give GPUs back: stopping cargo train"; $C cargo kill train ;;
    *'"grant.shrunk"'*) echo "am: shrunk" ;;
  esac
done
`;

test.before(async () => {
  const r = await admin.craneadm(['pseudocluster', '--detach', '--nodes', '2', '--gpus-per-node', '4', '--shrink-deadline', '20s']);
  if (r.code !== 0) throw new Error(r.stderr);
  await admin.signin();
  alice = await admin.newUser('alice');
  bob = await admin.newUser('bob');
  writeFileSync(join(admin.home, 'am.sh'), AM, { mode: 0o755 });
});
test.after.always(async () => {
  await Promise.all([alice?.teardown(), bob?.teardown()]);
  await admin.teardown();
});

test.serial('an elastic job grows, its AM starts a cargo across nodes, and shrinks for another user\'s job', async (t) => {
  t.is((await alice.crane(['job', 'add', 'host', '1:2:6', '-c', `sh ${join(admin.home, 'am.sh')}`, '-n', 'el'])).code, 0);
  const grown = await until('el holds 6 GPUs with cargo train running', async () => {
    const j = await inspect(alice, 'el');
    return gpus(j) === 6 && j.cargos?.[0]?.state === 'RUNNING' && j;
  });
  const train = grown.cargos![0]!;
  t.deepEqual(train.containers.map((c) => c.gpus.length), [2, 2]);
  t.is(new Set(train.containers.map((c) => c.node)).size, 2, 'the cargo spans both nodes (the AM holds one GPU of node-1)');
  t.regex((await alice.crane(['cargo', 'list', '--job', 'el'])).stdout, /^NAME +STATE +CONTAINERS +GPUS +CREATED\ntrain +RUNNING +2 +4 +\d+s\n$/);
  await until('worker output', async () => /worker \S+-train-0 on node-\d GPUs \d,\d/.test((await alice.crane(['cargo', 'log', 'train', '--job', 'el'])).stdout));

  // bob needs 4 GPUs; 2 are free: alice is asked for 2 back, her AM stops its cargo.
  t.is((await bob.crane(['job', 'add', 'host', '1:4', '-c', 'echo bob on $CRANE_GPUS; sleep 300', '-n', 'b'])).code, 0);
  const b = await until('bob runs', async () => {
    const j = await inspect(bob, 'b');
    return j.state === 'RUNNING' && j;
  });
  t.is(gpus(b), 4);
  const el = await inspect(alice, 'el');
  t.is(el.state, 'RUNNING');
  t.true(gpus(el) >= 2 && gpus(el) <= 4, `alice keeps between MIN and what is left (${gpus(el)})`);
  t.is(el.cargos![0]!.state, 'KILLED');
  const log = (await alice.crane(['job', 'log', 'el'])).stdout;
  t.regex(log, /am: asked to give GPUs back: stopping cargo train/);
  // GPUs are never given twice.
  const held = [...Object.entries(el.acquired), ...Object.entries(b.acquired)].flatMap(([n, gs]) => gs.map((g) => `${n}/${g}`));
  t.is(new Set(held).size, held.length);
  t.regex((await admin.crane(['resource', 'all'])).stdout, /^Free: \d \/ Busy: \d\n$/);
  // Each user sees only their own: in resource -v another user's GPUs are just busy.
  t.is((await bob.crane(['cargo', 'list', '--job', 'el'])).stderr, "error: no job matches 'el'\n");
  const v = (await bob.crane(['resource', 'all', '-v'])).stdout;
  t.is(v.match(/ bob\/b\n/g)?.length, 4);
  t.is(v.match(/ another user\n/g)?.length, gpus(el));
  t.is((await admin.crane(['resource', 'all', '-v'])).stdout.match(/ alice\/el\n/g)?.length, gpus(el));
});

test.serial('pause and resume through the CLI', async (t) => {
  t.is((await bob.crane(['job', 'pause', 'b'])).code, 0);
  const p = await until('b paused', async () => {
    const j = await inspect(bob, 'b');
    return j.state === 'PAUSED' && j;
  });
  t.deepEqual(p.acquired, {});
  t.regex((await bob.crane(['job', 'list'])).stdout, /\nb +\d+s +PAUSED \d+s: paused by bob +0\/4\n/);
  t.is((await bob.crane(['job', 'resume', 'b'])).stdout, 'b is queued to resume\n');
  await until('b running again', async () => (await inspect(bob, 'b')).state === 'RUNNING');
});

test('bad input: one line, exit 1 (2 for usage)', async (t) => {
  const cases: Array<[CliCluster, string[], number, RegExp]> = [
    [alice, ['cargo', 'list'], 2, /^error: name the job: --job JOB \(inside an app manager, CRANE_JOB_ID names it\)\nsee 'crane cargo list --help'\n$/],
    [alice, ['cargo', 'create', '--job', 'el', '--gpus', 'many'], 2, /^error: invalid --gpus 'many': expected a whole number 0-256\nsee 'crane cargo create --help'\n$/],
    [alice, ['cargo', 'create', '--job', 'el', '--gpus', '9', '-c', 'true'], 1, /^error: does not fit in job el's grant: it needs 9 GPUs and the job has \d free \(free: .*\); nothing was started\n$/],
    [alice, ['cargo', 'inspect', 'nope', '--job', 'el'], 1, /^error: job el has no cargo 'nope'\n$/],
    [alice, ['cargo', 'resize', 'train', '--job', 'el', '--add', '1'], 1, /^error: cargo train has ended: start a new one\n$/],
    [alice, ['job', 'release', 'el', '--gpus', 'x'], 2, /^error: invalid GPUs 'x': expected NODE:INDEX\[,INDEX\.\.\.\], e\.g\. node-1:0,1\nsee 'crane job release --help'\n$/],
    [alice, ['job', 'resume', 'el'], 1, /^error: job el is RUNNING: only a PAUSED job resumes\n$/],
    [bob, ['job', 'pause', 'el'], 1, /^error: no job matches 'el'\n$/],
  ];
  for (const [u, args, code, stderr] of cases) {
    const r = await u.crane(args);
    t.is(r.code, code, args.join(' '));
    t.regex(r.stderr, stderr, args.join(' '));
  }
});

test('a job\'s own token reaches that job only', async (t) => {
  const cmd = `C="node ${BIN.crane}"; $C job add host 1 -c true; echo "add: $?"; $C job list -a -q | wc -l; $C job kill el -y; echo "kill: $?"; $C job kill $CRANE_JOB_ID -y; echo "kill own: $?"; $C job inspect $CRANE_JOB_ID --json >/dev/null; echo "own: $?"`;
  t.is((await alice.crane(['job', 'add', 'host', '0:1', '-c', cmd, '--shell', '-n', 'probe'])).code, 0);
  const log = await until('probe done', async () => {
    const l = (await alice.crane(['job', 'log', 'probe'])).stdout;
    return /^own: \d/m.test(l) && l;
  });
  // stdout and stderr of one command are two pipes: their lines may come in either order.
  const lines = (x: string) => x.split('\n').sort();
  t.deepEqual(lines(log), lines([
    "[stderr] error: a job's own token reaches only its job: it cannot add jobs",
    'add: 1',
    '1',
    "[stderr] error: no job matches 'el'",
    'kill: 1',
    "[stderr] error: probe: a job's own token reaches only its job: it cannot kill jobs",
    'Killed 0 job(s).',
    'kill own: 1',
    'own: 0',
    '',
  ].join('\n')));
});
