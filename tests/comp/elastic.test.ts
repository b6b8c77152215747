/**
 * The cluster manager's elasticity on a real nats-server, with real node-manager actors whose
 * containers the test ends: each test plays the app manager through the job's event stream.
 */
import test from 'ava';
import { gpuCount } from '../../actors/cluster-manager/grant.js';
import type { Grant } from '../../actors/protocol.js';
import { startElasticCluster, type ElasticCluster } from '../helpers/elastic-cluster.js';

const sim = (cmd = 'work') => ({ image: 'sim', cmd, shell: false, init: false, env: {}, mounts: [], ports: [], shmSize: 1 });

async function withCluster(nodes: Record<string, number>, fn: (c: ElasticCluster) => Promise<void>, o: { shrinkDeadlineMs?: number } = {}) {
  const c = await startElasticCluster({ nodes, ...o });
  try {
    await fn(c);
  } finally {
    await c.teardown();
  }
}

test('grow: a running job takes idle GPUs up to MAX and its AM hears of it', (t) =>
  withCluster({ n1: 4, n2: 4 }, async (c) => {
    const id = await c.add('alice', { app: 1, min: 2, max: 6 });
    await c.until('6 GPUs', async () => gpuCount((await c.job(id)).acquired) === 6);
    const ev = await c.events(id);
    const hello = await ev.next('hello');
    t.is(gpuCount(hello.grant as Grant), 6);
    t.deepEqual(Object.keys((await c.job(id)).acquired).sort(), ['n1', 'n2']);
    // More room: a job that ended leaves GPUs a new elastic job grows into, but never past MAX.
    const id2 = await c.add('alice', { app: 1, min: 1, max: 1 });
    await c.until('id2 running', async () => (await c.job(id2)).state === 'RUNNING');
    const id3 = await c.add('alice', { app: 0, min: 1, max: 4 });
    await c.until('id3 takes the last GPU', async () => gpuCount((await c.job(id3)).acquired) === 1);
    c.runtimes.n1!.exit((await c.job(id2)).am!.container, 0);
    c.runtimes.n2!.exit((await c.job(id2)).am!.container, 0);
    await c.until('id3 grows into the freed GPU', async () => gpuCount((await c.job(id3)).acquired) === 2);
    ev.close();
  }));

test('shrink, cooperative AM: asked for GPUs by a deadline, it stops its newest cargo; the queued job starts', (t) =>
  withCluster({ n1: 4, n2: 4 }, async (c) => {
    const el = await c.add('alice', { app: 1, min: 2, max: 8 });
    await c.until('8 GPUs', async () => gpuCount((await c.job(el)).acquired) === 8);
    const ev = await c.events(el);
    await ev.next('hello');
    const c1 = await c.createCargo(el, { name: 'c1', containers: [{ gpus: 3, config: sim() }] });
    const c2 = await c.createCargo(el, { name: 'c2', containers: [{ gpus: 4, config: sim() }] });
    t.is(c1.state, 'RUNNING');
    t.is(c2.containers[0]!.gpus.length, 4, 'c2 on one node');
    t.is((await ev.next('cargo.started')).type, 'cargo.started');

    const q = await c.add('bob', { app: 4, min: 4, max: 4 });
    const ask = await ev.next('shrink.requested');
    t.deepEqual(ask.gpus, { [c2.containers[0]!.node]: c2.containers[0]!.gpus }, 'the newest cargo\'s GPUs: a whole node for bob\'s AM');
    t.true(Date.parse(ask.deadline as string) > Date.now());
    t.is((await c.job(q)).state, 'QUEUED');
    // The AM gives them back by stopping c2.
    await c.cm('cargo.kill', { user: c.user('alice', { job: el }), ref: el, cargo: 'c2' });
    const shrunk = await ev.next('grant.shrunk');
    t.is(gpuCount(shrunk.removed as Grant), 4);
    await c.until('bob runs', async () => (await c.job(q)).state === 'RUNNING');
    const job = await c.job(el);
    t.is(gpuCount(job.acquired), 4);
    t.is(job.reclaim, undefined);
    t.is(job.cargos!.find((x) => x.name === 'c1')!.state, 'RUNNING', 'c1 was not touched');
    ev.close();
  }));

test('shrink, unresponsive AM: past the deadline the cluster manager stops the cargo itself', (t) =>
  withCluster(
    { n1: 4 },
    async (c) => {
      const el = await c.add('alice', { app: 1, min: 1, max: 4 });
      await c.until('4 GPUs', async () => gpuCount((await c.job(el)).acquired) === 4);
      const cargo = await c.createCargo(el, { name: 'stubborn', containers: [{ gpus: 3, config: sim() }] });
      c.runtimes.n1!.stubborn.add(cargo.containers[0]!.id);
      const ev = await c.events(el);
      const asked = Date.now();
      const q = await c.add('bob', { app: 2, min: 2, max: 2 });
      await ev.next('shrink.requested');
      await c.until('bob runs', async () => (await c.job(q)).state === 'RUNNING', 8_000);
      const waited = Date.now() - asked;
      t.true(waited >= 900, `the AM had its deadline (${waited} ms)`);
      const stopped = (await c.job(el)).cargos![0]!;
      t.is(stopped.state, 'KILLED');
      t.is(stopped.containers[0]!.exitCode, 137, 'SIGKILL: it ignored SIGTERM');
      t.is(gpuCount((await c.job(el)).acquired), 2, 'alice keeps her AM and one idle GPU above MIN');
      ev.close();
    },
    { shrinkDeadlineMs: 1_000 },
  ));

test('pause and resume: the containers stop, the GPUs go back; resumed, the AM starts again', (t) =>
  withCluster({ n1: 2 }, async (c) => {
    const id = await c.add('alice', { app: 1, min: 2, max: 2 });
    await c.until('running', async () => (await c.job(id)).state === 'RUNNING');
    await c.createCargo(id, { name: 'w', containers: [{ gpus: 1, config: sim() }] });
    const alice = c.user('alice');
    t.is((await c.cm('job.pause', { user: alice, ref: id })).state, 'PAUSING');
    await c.until('paused', async () => (await c.job(id)).state === 'PAUSED');
    const paused = await c.job(id);
    t.deepEqual(paused.acquired, {});
    t.is(paused.pausedByUser, true);
    t.is(paused.cargos![0]!.state, 'KILLED');
    t.is(c.runtimes.n1!.running().length, 0);
    // Nothing resumes it but its user, even with GPUs free.
    const other = await c.add('bob', { app: 1, min: 1, max: 1 });
    await c.until('bob runs', async () => (await c.job(other)).state === 'RUNNING');
    await new Promise((r) => setTimeout(r, 300));
    t.is((await c.job(id)).state, 'PAUSED');
    c.runtimes.n1!.exit((await c.job(other)).am!.container);
    await c.cm('job.resume', { user: alice, ref: id });
    await c.until('running again', async () => (await c.job(id)).state === 'RUNNING');
    const again = await c.job(id);
    t.regex(again.am!.container, /-am-2$/, 'a new AM container');
    t.deepEqual(again.history.map((h) => h.state), ['QUEUED', 'RUNNING', 'PAUSED', 'RUNNING']);
    await t.throwsAsync(c.cm('job.resume', { user: alice, ref: id }), { message: /only a PAUSED job resumes/ });
  }));

test('a cargo that cannot fit starts nothing', (t) =>
  withCluster({ n1: 2, n2: 2 }, async (c) => {
    const id = await c.add('alice', { app: 0, min: 4, max: 4 });
    await c.until('running', async () => (await c.job(id)).state === 'RUNNING');
    const before = c.runtimes.n1!.started.length + c.runtimes.n2!.started.length;
    await t.throwsAsync(c.createCargo(id, { name: 'big', containers: [{ gpus: 3, config: sim() }] }), {
      message: /^does not fit in job \S+ grant: its largest container needs 3 GPUs on one node \(free: n1:0,1 n2:0,1\); nothing was started$/,
    });
    await t.throwsAsync(c.createCargo(id, { containers: [{ gpus: 2, config: sim() }, { gpus: 2, config: sim() }, { gpus: 1, config: sim() }] }), {
      message: /it needs 5 GPUs and the job has 4 free/,
    });
    t.is(c.runtimes.n1!.started.length + c.runtimes.n2!.started.length, before);
    const ok = await c.createCargo(id, { name: 'fits', containers: [{ gpus: 2, config: sim() }, { gpus: 2, config: sim() }] });
    t.deepEqual(ok.containers.map((x) => x.node).sort(), ['n1', 'n2'], 'a cargo spans nodes');
  }));

test('a cargo container that fails to start stops the others: all or nothing', (t) =>
  withCluster({ n1: 4 }, async (c) => {
    const id = await c.add('alice', { app: 0, min: 4, max: 4 });
    await c.until('running', async () => (await c.job(id)).state === 'RUNNING');
    const rt = c.runtimes.n1!;
    const start = rt.start.bind(rt);
    rt.start = async (req, hooks) => {
      if (req.container.endsWith('-bad')) throw new Error('no such image');
      return start(req, hooks);
    };
    await t.throwsAsync(c.createCargo(id, { name: 'g', containers: [{ name: 'ok', gpus: 2, config: sim() }, { name: 'bad', gpus: 2, config: sim() }] }), {
      message: /^cargo g could not start: container bad on n1: could not start: .*no such image.*; the others were stopped$/,
    });
    const am = (await c.job(id)).am!.container;
    await c.until('only the AM runs', () => rt.running().join() === am);
    t.is((await c.job(id)).cargos![0]!.state, 'KILLED');
  }));

test('fair share between two users: growth goes to the user holding less; a quota caps it', (t) =>
  withCluster({ n1: 8 }, async (c) => {
    const a = await c.add('alice', { app: 1, min: 1, max: 8 });
    await c.until('alice has 8', async () => gpuCount((await c.job(a)).acquired) === 8);
    // bob arrives: alice shrinks toward MIN for him; once he runs, idle GPUs are shared fairly.
    const b = await c.add('bob', { app: 1, min: 2, max: 8 });
    await c.until('bob runs', async () => (await c.job(b)).state === 'RUNNING', 8_000);
    await c.until('shared', async () => gpuCount((await c.job(a)).acquired) + gpuCount((await c.job(b)).acquired) === 8);
    t.true(gpuCount((await c.job(b)).acquired) >= 2);
    const cm = (v: string, b2: object) => c.cm(v, b2);
    await cm('user.quota', { username: 'bob', gpus: 2 });
    const b2 = await c.add('bob', { app: 1, min: 1, max: 1 });
    await new Promise((r) => setTimeout(r, 300));
    t.regex((await c.job(b2)).queueReason ?? '', /^over quota: you hold 2 of 2 GPUs/);
    t.is(gpuCount((await c.job(b)).acquired), 2, 'the quota also caps growth');
  }));
