/**
 * GPU usage transparency through the binaries: a standalone whose node manager reads injected
 * per-GPU values (CRANE_GPU_USAGE_FILE), `crane job usage` for a job's GPUs, GPU-seconds of two
 * users in `crane resource usage` (one's own) and `craneadm report --since 1h` (everyone's), an
 * elastic job's growth accounted, and an AM reading its own usage with its job token.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { JobUsage, UsageReport } from '../../actors/protocol.js';
import { BIN, CliCluster } from '../helpers/cli-cluster.js';

const admin = new CliCluster();
let alice: CliCluster;
let bob: CliCluster;
const usageFile = join(admin.home, 'gpu-usage.json');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Distinct values per GPU, so each row can be checked against its own index. */
const injected = (base: number) =>
  Object.fromEntries([0, 1, 2, 3].map((g) => [String(g), { util: base + g, memUsedMiB: 1000 * (g + 1), memTotalMiB: 16384 }]));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const json = <T>(r: { code: number; stdout: string; stderr: string }): T => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
};

test.before(async () => {
  writeFileSync(usageFile, JSON.stringify(injected(80)));
  admin.env.CRANE_GPU_USAGE_FILE = usageFile;
  await admin.start(['--gpus', '4']);
  await admin.signin();
  alice = await admin.newUser('alice');
  bob = await admin.newUser('bob');
});
test.after.always(async () => {
  await Promise.all([alice?.teardown(), bob?.teardown()]);
  await admin.teardown();
});
test.afterEach.always((t) => {
  if (!t.passed) t.log(admin.standaloneLog().split('\n').slice(-40).join('\n'));
});

test.serial('crane job usage shows the job’s GPUs with the injected utilisation and memory', async (t) => {
  t.is((await alice.crane(['job', 'add', 'host', '2', '-c', 'sleep 120', '-n', 'train'])).code, 0);
  const u = await until('samples of train’s GPUs', async () => {
    const r = json<JobUsage>(await alice.crane(['job', 'usage', 'train', '--json']));
    return r.gpus.length === 2 && r.gpus.every((g) => g.util !== undefined) ? r : undefined;
  });
  t.is(u.state, 'RUNNING');
  for (const g of u.gpus) {
    t.is(g.util, 80 + g.gpu);
    t.is(g.memUsedMiB, 1000 * (g.gpu + 1));
    t.is(g.memTotalMiB, 16384);
    t.regex(g.container ?? '', /^[0-9a-f]{8}-am$/);
  }

  const text = await alice.crane(['job', 'usage', 'train']);
  t.is(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^NODE +GPU +CONTAINER +UTIL +MEM$/);
  for (const g of u.gpus) {
    const row = new RegExp(`^${g.node} +${g.gpu} +${g.container} +${80 + g.gpu}% +${1000 * (g.gpu + 1)} / 16384 MiB$`, 'm');
    t.regex(text.stdout, row);
  }
  t.regex(lines.at(-1)!, /^GPU-seconds: \d+\.\d \(\d+\.\d{3} GPU-hours\)$/);

  // The file is read again at every sample: new values show within a few heartbeats.
  writeFileSync(usageFile, JSON.stringify(injected(10)));
  await until('the new values', async () => {
    const r = json<JobUsage>(await alice.crane(['job', 'usage', 'train', '--json']));
    return r.gpus.every((g) => g.util === 10 + g.gpu) ? true : undefined;
  });
  t.pass();
});

test.serial('another user’s job looks not found; bad input is one line and exit 1', async (t) => {
  const other = await bob.crane(['job', 'usage', 'train']);
  t.is(other.code, 1);
  t.is(other.stderr, "error: no job matches 'train'\n");
  t.is((await bob.crane(['job', 'usage', 'nope'])).stderr, "error: no job matches 'nope'\n");
  for (const [who, args] of [
    [bob, ['resource', 'usage', '--since', 'yesterday']],
    [admin, ['report', '--since', '7x']],
  ] as const) {
    const r = who === admin ? await admin.craneadm(args) : await bob.crane(args);
    t.is(r.code, 1);
    t.regex(r.stderr, /^error: invalid --since '[^']+': expected a date\/time .* or a duration like 30s, 10m, 2h, 1d\n$/);
  }
});

test.serial('GPU-seconds per user: crane resource usage shows one’s own, craneadm report --since 1h everyone’s', async (t) => {
  t.is((await bob.crane(['job', 'add', 'host', '1', '-c', 'sleep 2', '-n', 'quick'])).code, 0);
  const wait = await bob.crane(['job', 'wait', 'quick']);
  t.is(wait.code, 0, wait.stderr);
  // A removed job is still accounted.
  t.is((await bob.crane(['job', 'rm', 'quick'])).code, 0);

  const mine = json<UsageReport>(await alice.crane(['resource', 'usage', '--json']));
  t.deepEqual(mine.users.map((u) => u.user), ['alice']);
  t.deepEqual(mine.jobs.map((j) => j.name), ['train']);
  const bobs = json<UsageReport>(await bob.crane(['resource', 'usage', '--since', '1h', '--json']));
  t.deepEqual(bobs.users.map((u) => u.user), ['bob']);
  t.deepEqual(bobs.jobs.map((j) => [j.name, j.removed]), [['quick', true]]);
  // sleep 2 on 1 GPU: about 2 GPU-seconds (generous: the machine may be busy).
  t.true(bobs.users[0]!.gpuSeconds >= 1.5 && bobs.users[0]!.gpuSeconds < 30, `bob: ${bobs.users[0]!.gpuSeconds}`);

  const text = await alice.crane(['resource', 'usage', '--since', '1h', '-v']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /^GPU usage since \d{4}-\d\d-\d\dT[\d:]+(Z|[+-]\d\d:\d\d):\nUSER +GPU-HOURS +GPU-SECONDS +JOBS\nalice +\d+\.\d{3} +[\d.]+ +1\n/);
  t.regex(text.stdout, /\nJOB +USER +STATE +GPU-HOURS +GPU-SECONDS\ntrain +alice +RUNNING +/);
  t.false(text.stdout.includes('bob'));

  const report = await admin.craneadm(['report', '--since', '1h']);
  t.is(report.code, 0, report.stderr);
  t.regex(report.stdout, /^GPU-time since .* until .*: \d+\.\d{3} GPU-hours \([\d.]+ GPU-seconds\)\nUSER +GPU-HOURS +GPU-SECONDS +SHARE +JOBS\n/);
  t.regex(report.stdout, /\nalice +\d+\.\d{3} +[\d.]+ +\d+\.\d% +1\n/);
  t.regex(report.stdout, /\nbob +\d+\.\d{3} +[\d.]+ +\d+\.\d% +1(\n|$)/);
  const all = json<UsageReport>(await admin.craneadm(['report', '--since', '1h', '--json']));
  t.deepEqual(all.users.map((u) => u.user).sort(), ['alice', 'bob']);
  t.true(Math.abs(all.users.reduce((s, u) => s + u.share, 0) - 1) < 1e-9);
  const a = all.users.find((u) => u.user === 'alice')!;
  t.true(a.gpuSeconds > 0);

  // A window that starts in the future ends before it starts.
  const future = await admin.craneadm(['report', '--since', new Date(Date.now() + 3600_000).toISOString()]);
  t.is(future.code, 1);
  t.regex(future.stderr, /^error: the window starts \(.*\) after it ends \(.*\)\n$/);

  // alice's job is still running: its GPU-seconds grow (2 GPUs).
  const before = json<JobUsage>(await alice.crane(['job', 'usage', 'train', '--json'])).gpuSeconds;
  await sleep(1_000);
  const after = json<JobUsage>(await alice.crane(['job', 'usage', 'train', '--json'])).gpuSeconds;
  t.true(after - before >= 1.5, `${before} -> ${after}`);

  // Ended: no GPUs, the GPU-seconds stay.
  t.is((await alice.crane(['job', 'kill', 'train', '-y', '--force'])).code, 0);
  const ended = await alice.crane(['job', 'usage', 'train']);
  t.regex(ended.stdout, /^Job train is ERROR: it holds no GPUs now\.\n\nGPU-seconds: /);
});

test.serial('an elastic job that grows is accounted for every GPU it holds; its AM reads its own usage with its own token', async (t) => {
  const amOut = join(admin.home, 'am-usage.json');
  const crane = `'${process.execPath}' '${BIN.crane}'`;
  const cmd = `${crane} job usage "$CRANE_JOB_ID" --json > '${amOut}.tmp' && mv '${amOut}.tmp' '${amOut}'; ${crane} resource usage 2>&1 | tail -1 > '${amOut}.forbidden'; sleep 120`;
  t.is((await alice.crane(['job', 'add', 'host', '1:1:3', '--shell', '-c', cmd, '-n', 'elastic'])).code, 0);
  // Idle GPUs and nothing queued: it grows toward 3.
  const grown = await until('elastic grown to 3 GPUs', async () => {
    const r = json<JobUsage>(await alice.crane(['job', 'usage', 'elastic', '--json']));
    return r.gpus.length === 3 ? r : undefined;
  });
  t.is(grown.gpus.filter((g) => g.container).length, 1, 'the AM holds 1 GPU, the 2 it grew by are idle');
  const before = grown.gpuSeconds;
  await sleep(1_000);
  const after = json<JobUsage>(await alice.crane(['job', 'usage', 'elastic', '--json'])).gpuSeconds;
  t.true(after - before >= 2.5, `3 GPUs for over a second: ${before} -> ${after}`);

  const am = await until('the AM’s own reading', async () => {
    try {
      return JSON.parse(readFileSync(amOut, 'utf8')) as JobUsage;
    } catch {
      return undefined;
    }
  });
  t.is(am.id, grown.id);
  t.is(am.user, 'alice');
  t.regex(readFileSync(`${amOut}.forbidden`, 'utf8'), /^error: a job's own token reaches only its job/);
  t.is((await alice.crane(['job', 'kill', 'elastic', '-y', '--force'])).code, 0);
});
