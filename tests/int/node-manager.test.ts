import test from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActorSystem, type Envelope } from '../../bus/actor.js';
import { decode } from '../../bus/codec.js';
import { CraneError } from '../../bus/errors.js';
import { EmbeddedNats } from '../../bus/nats-server.js';
import { subjects } from '../../bus/subjects.js';
import { nodeManagerSpec } from '../../actors/node-manager/node-manager.js';
import type { ContainerExit, Heartbeat, LogLine, RegisterNode } from '../../actors/protocol.js';
import { runRequest } from './runtime-harness.js';

process.env.CRANE_LOG_LEVEL ??= 'error';

const CLUSTER = 'nmtest';
const sub = subjects(CLUSTER);
const dir = mkdtempSync(join(tmpdir(), 'crane-nm-'));
const nats = new EmbeddedNats({ stateDir: dir });
let nc: NatsConnection;
let nodes: ActorSystem;
let cm: ActorSystem;

const registrations: RegisterNode[] = [];
const exits: ContainerExit[] = [];
const heartbeats: Heartbeat[] = [];

async function until<T>(what: string, get: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test.before(async () => {
  nc = await connect({ servers: await nats.start() });
  nodes = new ActorSystem(nc, 'nodes');
  cm = new ActorSystem(nc, 'fake-cm');
  nc.subscribe(sub.hbAll, { callback: (_e, m) => void heartbeats.push(decode<Heartbeat>(m.data)) });
  // Node managers first: they must keep retrying until the cluster manager appears.
  await nodes.spawn(nodeManagerSpec({ cluster: CLUSTER, name: 'n1', gpus: [0, 1], hostJobs: true, docker: undefined, heartbeatMs: 100 }));
  await nodes.spawn(nodeManagerSpec({ cluster: CLUSTER, name: 'n2', gpus: [], hostJobs: false, docker: undefined }));
  await new Promise((r) => setTimeout(r, 300));
  await cm.spawn({
    name: 'cm',
    subjects: [sub.cm('node.register'), sub.cm('container.exit')],
    factory: () => ({
      receive(msg: Envelope) {
        if (msg.type === 'node.register') registrations.push(msg.body);
        else exits.push(msg.body);
        return { ok: true };
      },
    }),
  });
});

test.after.always(async () => {
  await nodes?.stop();
  await cm?.stop();
  await nc?.close();
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
});

test.serial('registers once the cluster manager is there, then heartbeats', async (t) => {
  const reg = await until('registration', () => registrations.find((r) => r.name === 'n1'));
  t.like(reg, { name: 'n1', gpus: [0, 1], docker: false, hostJobs: true, running: [], pid: process.pid });
  await until('heartbeats', () => heartbeats.filter((h) => h.name === 'n1').length >= 3);
  t.pass();
});

test.serial('runs a host job: log lines on the bus, exit reported to the cluster manager', async (t) => {
  const req = runRequest({ image: 'host', cmd: 'echo "gpus=$CUDA_VISIBLE_DEVICES"; echo oops >&2; exit 7' }, [1]);
  const lines: LogLine[] = [];
  nc.subscribe(sub.log(req.job, req.container), { callback: (_e, m) => void lines.push(decode<LogLine>(m.data)) });
  await nc.flush();
  t.deepEqual(await nodes.ask(sub.node('n1', 'run'), 'run', req), { started: true, node: 'n1' });
  const exit = await until('exit', () => exits.find((e) => e.container === req.container));
  t.deepEqual(exit, { job: req.job, container: req.container, node: 'n1', exitCode: 7 });
  await until('lines', () => lines.length === 2);
  t.deepEqual(
    lines.map((l) => [l.src, l.line, l.container]).sort(),
    [
      ['stderr', 'oops', req.container],
      ['stdout', 'gpus=1', req.container],
    ],
  );
});

test.serial('kill: a running job ends, an unknown one is gone', async (t) => {
  const req = runRequest({ image: 'host', cmd: 'sleep 100' });
  await nodes.ask(sub.node('n1', 'run'), 'run', req);
  await until('heartbeat with the container', () => heartbeats.find((h) => h.running.includes(req.container)));
  t.deepEqual(await nodes.ask(sub.node('n1', 'kill'), 'kill', { container: req.container, force: false, graceMs: 2_000 }), { ok: true });
  const exit = await until('exit', () => exits.find((e) => e.container === req.container));
  t.like(exit, { exitCode: 143, signal: 'SIGTERM' });
  t.deepEqual(await nodes.ask(sub.node('n1', 'kill'), 'kill', { container: req.container, force: true }), { ok: true, gone: true });
});

test.serial('refusals are typed errors and report no exit', async (t) => {
  const host = runRequest({ image: 'host', cmd: 'true' });
  const e1 = await t.throwsAsync(nodes.ask(sub.node('n2', 'run'), 'run', host), { instanceOf: CraneError });
  t.is(e1?.code, 'forbidden');
  t.is(e1?.message, 'node n2 does not run host jobs (started with --no-host-jobs)');
  const boxed = runRequest({ image: 'crane-test/busybox:latest', cmd: 'true' });
  const e2 = await t.throwsAsync(nodes.ask(sub.node('n1', 'run'), 'run', boxed), { instanceOf: CraneError });
  t.is(e2?.code, 'unavailable');
  t.regex(e2!.message, /^no Docker engine on node n1/);
  const e3 = await t.throwsAsync(nodes.ask(sub.node('n1', 'run'), 'run', runRequest({ image: 'host' })), { instanceOf: CraneError });
  t.is(e3?.code, 'invalid');
  await new Promise((r) => setTimeout(r, 200));
  t.false(exits.some((e) => [host.container, boxed.container].includes(e.container)));
});

test.serial('image checks', async (t) => {
  t.deepEqual(await nodes.ask(sub.node('n1', 'image'), 'image', { image: 'host' }), { ok: true });
  t.like(await nodes.ask(sub.node('n2', 'image'), 'image', { image: 'host' }), { ok: false });
  t.like(await nodes.ask(sub.node('n1', 'image'), 'image', { image: 'crane-test/busybox:latest' }), { ok: false });
});

test.serial('a graceful stop kills running containers and reports their exits', async (t) => {
  const req = runRequest({ image: 'host', cmd: 'trap "" TERM; sleep 100' });
  await nodes.ask(sub.node('n1', 'run'), 'run', req);
  await nodes.stop();
  const exit = exits.find((e) => e.container === req.container);
  t.like(exit, { exitCode: 137, signal: 'SIGKILL' });
});
