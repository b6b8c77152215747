import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CraneError } from '../../bus/errors.js';
import { ProcessRuntime } from '../../actors/node-manager/process-runtime.js';
import { runRequest, startCollecting, texts } from './runtime-harness.js';

/** Running (not a zombie waiting to be reaped). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Whether all pids are gone within 1 s (signals take a moment to land). */
async function allGone(pids: number[]): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if (!pids.some(alive)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

test('stdout and stderr lines arrive in order with their source; exit code', async (t) => {
  const rt = new ProcessRuntime('test-node');
  const req = runRequest({ image: 'host', cmd: 'echo one; sleep 0.1; echo two >&2; sleep 0.1; printf "three"; exit 3' });
  const s = await startCollecting(rt, req);
  t.deepEqual(rt.running(), [req.container]);
  t.deepEqual(await s.exited, { code: 3 });
  t.deepEqual(texts(s.lines), ['stdout:one', 'stderr:two', 'stdout:three']);
  t.true(s.lines.every((l) => typeof l.t === 'number'));
  t.deepEqual(rt.running(), []);
});

test('the env carries the grant', async (t) => {
  const rt = new ProcessRuntime('test-node');
  const s = await startCollecting(rt, runRequest({ image: 'host', cmd: 'echo "$CUDA_VISIBLE_DEVICES/$NVIDIA_VISIBLE_DEVICES/$CRANE_NODE/$FOO"', env: { FOO: 'bar' } }, [1, 2]));
  await s.exited;
  t.deepEqual(texts(s.lines), ['stdout:1,2/1,2/test-node/bar']);
});

test('a host job needs a command', async (t) => {
  const rt = new ProcessRuntime('test-node');
  const err = await t.throwsAsync(rt.start(runRequest({ image: 'host' }), { onLine() {}, onExit() {} }), { instanceOf: CraneError });
  t.is(err?.code, 'invalid');
});

test('graceful kill ends the whole process tree within the grace period', async (t) => {
  const rt = new ProcessRuntime('test-node');
  const s = await startCollecting(rt, runRequest({ image: 'host', cmd: 'sleep 100 & echo $!; sleep 100 & echo $!; wait' }));
  await s.waitLine(() => s.lines.length >= 2);
  const pids = s.lines.map((l) => Number(l.line));
  t.true(pids.every(alive));
  const t0 = Date.now();
  await rt.kill(s.container, false, 5_000);
  const exit = await s.exited;
  t.true(Date.now() - t0 < 2_000, 'ended well before the grace period');
  t.is(exit.signal, 'SIGTERM');
  t.is(exit.code, 143);
  t.true(await allGone(pids));
});

test('a tree that ignores SIGTERM is killed after the grace period', async (t) => {
  const rt = new ProcessRuntime('test-node');
  const s = await startCollecting(rt, runRequest({ image: 'host', cmd: 'trap "" TERM; sleep 100 & echo $!; sleep 100' }));
  const child = Number((await s.waitLine(() => true)).line);
  const t0 = Date.now();
  await rt.kill(s.container, false, 500);
  const exit = await s.exited;
  const took = Date.now() - t0;
  t.true(took >= 450 && took < 3_000, `took ${took} ms`);
  t.deepEqual(exit, { code: 137, signal: 'SIGKILL' });
  t.true(await allGone([child]));
});

test('force kill is immediate', async (t) => {
  const rt = new ProcessRuntime('test-node');
  const s = await startCollecting(rt, runRequest({ image: 'host', cmd: 'trap "" TERM; echo up; sleep 100' }));
  await s.waitLine((l) => l.line === 'up');
  await rt.kill(s.container, true, 60_000);
  t.deepEqual(await s.exited, { code: 137, signal: 'SIGKILL' });
});

test('killing an unknown container is a no-op', async (t) => {
  const rt = new ProcessRuntime('test-node');
  await rt.kill('nope', true, 0);
  t.pass();
});

test('a later process of the node reaps the host jobs an earlier one left running', async (t) => {
  const pidDir = mkdtempSync(join(tmpdir(), 'crane-pids-'));
  t.teardown(() => rmSync(pidDir, { recursive: true, force: true }));
  const earlier = new ProcessRuntime('test-node', pidDir);
  const s = await startCollecting(earlier, runRequest({ image: 'host', cmd: 'sleep 60 & echo $!; wait' }));
  const sleeper = Number((await s.waitLine((l) => /^\d+$/.test(l.line))).line);
  // A stale pid file whose pid is not a Crane container must not be killed.
  writeFileSync(join(pidDir, 'ctr-stale.pid'), String(process.pid));

  const later = new ProcessRuntime('test-node', pidDir);
  t.is(await later.reapOrphans(), 1);
  t.true(await allGone([sleeper]));
  await s.exited;
  t.deepEqual(readdirSync(pidDir), []);
  t.is(await later.reapOrphans(), 0);
});
