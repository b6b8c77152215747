import test from 'ava';
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CraneError } from '../../bus/errors.js';
import { DockerRuntime } from '../../actors/node-manager/docker-runtime.js';
import { LazyDockerRuntime, probeDocker } from '../../actors/node-manager/lazy-docker.js';
import { runRequest, startCollecting, texts } from './runtime-harness.js';

const IMAGE = 'crane-test/busybox:latest';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const rt = new DockerRuntime({ node: 'test-node', deviceRequests: false });

test.before('a Docker engine and the test image', async (t) => {
  if (!(await DockerRuntime.probe())) throw new Error('no Docker engine answers: start dockerd (these tests need it)');
  t.log(execFileSync(resolve(ROOT, 'images/build.sh'), { encoding: 'utf8' }).trim());
});

test('probe finds the engine', async (t) => {
  t.true(await DockerRuntime.probe());
});

test('stdout and stderr lines arrive in order with their source; exit code', async (t) => {
  const req = runRequest({ image: IMAGE, cmd: 'echo one; sleep 0.2; echo two >&2; sleep 0.2; printf three; exit 3', shell: true });
  const s = await startCollecting(rt, req);
  t.true(rt.running().includes(req.container));
  t.deepEqual(await s.exited, { code: 3 });
  t.deepEqual(texts(s.lines), ['stdout:one', 'stderr:two', 'stdout:three']);
  t.false(rt.running().includes(req.container));
});

test('exit 3 through sh -c', async (t) => {
  const s = await startCollecting(rt, runRequest({ image: IMAGE, cmd: 'exit 3', shell: true }));
  t.deepEqual(await s.exited, { code: 3 });
});

test('a command without shell is split into words; the container is removed after exit', async (t) => {
  const req = runRequest({ image: IMAGE, cmd: `echo 'a  b' "c"` });
  const s = await startCollecting(rt, req);
  t.deepEqual(await s.exited, { code: 0 });
  t.deepEqual(texts(s.lines), ['stdout:a  b c']);
  const left = execFileSync('docker', ['ps', '-aq', '--filter', `label=crane.container=${req.container}`], { encoding: 'utf8' });
  t.is(left.trim(), '');
});

test('shell operators without shell are refused before anything starts', async (t) => {
  const err = await t.throwsAsync(rt.start(runRequest({ image: IMAGE, cmd: 'echo a; echo b' }), { onLine() {}, onExit() {} }), {
    instanceOf: CraneError,
  });
  t.is(err?.message, 'command has shell operators: use --shell');
});

test('env carries the grant', async (t) => {
  const s = await startCollecting(rt, runRequest({ image: IMAGE, cmd: 'env', env: { FOO: 'bar' } }, [1, 2]));
  await s.exited;
  const env = s.lines.map((l) => l.line);
  for (const kv of ['CUDA_VISIBLE_DEVICES=1,2', 'NVIDIA_VISIBLE_DEVICES=1,2', 'CRANE_GPUS=1,2', 'CRANE_NODE=test-node', 'CRANE_USER=tester', 'FOO=bar']) {
    t.true(env.includes(kv), `${kv} in ${env.join(' ')}`);
  }
});

test('graceful kill lets the container handle SIGTERM', async (t) => {
  const cmd = 'trap "echo bye; exit 0" TERM; echo up; while true; do sleep 0.1; done';
  const s = await startCollecting(rt, runRequest({ image: IMAGE, cmd, shell: true }));
  await s.waitLine((l) => l.line === 'up');
  await rt.kill(s.container, false, 10_000);
  t.deepEqual(await s.exited, { code: 0 });
  t.deepEqual(texts(s.lines), ['stdout:up', 'stdout:bye']);
});

test('graceful kill of a container that ignores SIGTERM ends in SIGKILL after the grace period', async (t) => {
  const s = await startCollecting(rt, runRequest({ image: IMAGE, cmd: 'trap "" TERM; echo up; while true; do sleep 0.1; done', shell: true }));
  await s.waitLine((l) => l.line === 'up');
  const t0 = Date.now();
  await rt.kill(s.container, false, 1_000);
  t.deepEqual(await s.exited, { code: 137, signal: 'SIGKILL' });
  t.true(Date.now() - t0 >= 900);
});

test('force kill is immediate', async (t) => {
  const s = await startCollecting(rt, runRequest({ image: IMAGE, cmd: 'trap "" TERM; echo up; sleep 100', shell: true, init: true }));
  await s.waitLine((l) => l.line === 'up');
  const t0 = Date.now();
  await rt.kill(s.container, true, 60_000);
  t.deepEqual(await s.exited, { code: 137, signal: 'SIGKILL' });
  t.true(Date.now() - t0 < 5_000);
});

test('canRun: present and missing images', async (t) => {
  t.deepEqual(await rt.canRun(IMAGE), { ok: true });
  t.deepEqual(await rt.canRun('crane-test/missing:nope'), {
    ok: false,
    reason: "image 'crane-test/missing:nope' is not on node test-node: build it locally (no registry is reachable), e.g. just image",
  });
});

test('start with a missing image is a typed error and reports no exit', async (t) => {
  let exited = false;
  const err = await t.throwsAsync(
    rt.start(runRequest({ image: 'crane-test/missing:nope', cmd: 'true' }), { onLine() {}, onExit: () => (exited = true) }),
    { instanceOf: CraneError },
  );
  t.is(err?.code, 'not-found');
  t.regex(err!.message, /is not on node test-node/);
  t.false(exited);
});

test('start with a missing executable is a typed error and leaves no container', async (t) => {
  const req = runRequest({ image: IMAGE, cmd: 'no-such-binary' });
  const err = await t.throwsAsync(rt.start(req, { onLine() {}, onExit() {} }), { instanceOf: CraneError });
  t.log(err?.code, err?.message);
  t.false(rt.running().includes(req.container));
  const left = execFileSync('docker', ['ps', '-aq', '--filter', `label=crane.container=${req.container}`], { encoding: 'utf8' });
  t.is(left.trim(), '');
});

test('an unreachable engine', async (t) => {
  const Docker = (await import('dockerode')).default;
  const dead = new DockerRuntime({ node: 'n9', deviceRequests: false, docker: new Docker({ socketPath: '/nonexistent/docker.sock' }) });
  t.false(await DockerRuntime.probe(new Docker({ socketPath: '/nonexistent/docker.sock' })));
  t.deepEqual(await dead.canRun(IMAGE), { ok: false, reason: 'no Docker engine on node n9' });
  const err = await t.throwsAsync(dead.start(runRequest({ image: IMAGE, cmd: 'true' }), { onLine() {}, onExit() {} }), { instanceOf: CraneError });
  t.is(err?.code, 'unavailable');
});

test('a later process of the node reaps the containers an earlier one left running', async (t) => {
  const owner = `test-owner-${process.pid}-${Date.now()}`;
  const earlier = new DockerRuntime({ node: 'test-node', deviceRequests: false, owner });
  const s = await startCollecting(earlier, runRequest({ image: IMAGE, cmd: 'sleep 60' }));
  const other = await startCollecting(rt, runRequest({ image: IMAGE, cmd: 'sleep 60' }));
  const later = new DockerRuntime({ node: 'test-node', deviceRequests: false, owner });
  t.is(await later.reapOrphans(), 1);
  t.is((await s.exited).code, 137);
  t.true(rt.running().includes(other.container), "another node's container is left alone");
  await rt.kill(other.container, true, 0);
});

test('the lazy runtime pings and finds no orphans without dockerode, and reaps through it when there are some', async (t) => {
  t.true(await probeDocker());
  const owner = `test-lazy-${process.pid}-${Date.now()}`;
  const lazy = new LazyDockerRuntime({ node: 'test-node', deviceRequests: false, owner });
  t.is(await lazy.reapOrphans(), 0);
  t.deepEqual(lazy.running(), []);
  const earlier = new DockerRuntime({ node: 'test-node', deviceRequests: false, owner });
  const s = await startCollecting(earlier, runRequest({ image: IMAGE, cmd: 'sleep 60' }));
  t.is(await new LazyDockerRuntime({ node: 'test-node', deviceRequests: false, owner }).reapOrphans(), 1);
  t.is((await s.exited).code, 137);
  // It runs containers as the real one does.
  const c = await startCollecting(lazy, runRequest({ image: IMAGE, cmd: 'echo lazy' }));
  t.deepEqual(await c.exited, { code: 0 });
  t.deepEqual(texts(c.lines), ['stdout:lazy']);
});
