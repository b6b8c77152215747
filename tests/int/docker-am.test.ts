// An app manager in a Docker container (crane/crane:dev, this checkout mounted over /opt/crane)
// reaches the cluster through the API socket mounted into it, with its own job token, and starts
// a cargo of busybox containers. Needs a Docker engine and the images (`just image`).
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import test from 'ava';
import { DockerRuntime } from '../../actors/node-manager/docker-runtime.js';
import { CliCluster } from '../helpers/cli-cluster.js';
import { REPO_ROOT } from '../helpers/dcompose.js';

const c = new CliCluster();

test.before(async () => {
  if (!(await DockerRuntime.probe())) throw new Error('no Docker engine answers: start dockerd (these tests need it)');
  execFileSync(resolve(REPO_ROOT, 'images/build.sh'), { stdio: 'ignore' });
  await c.start(['--gpus', '4']);
  await c.signin();
});
test.after.always(() => c.teardown());

test('a Docker AM starts a cargo through the mounted socket', async (t) => {
  const am = [
    "crane cargo create -n box --replicas 2 --gpus 1 --image crane-test/busybox -c 'echo cargo $CRANE_CONTAINER_ID GPUs $CRANE_GPUS' --shell",
    'crane cargo log box -f',
    'crane job add host 1 -c true || echo "add refused"',
  ].join('; ');
  const add = await c.crane(['job', 'add', 'crane/crane:dev', '1:3', '-m', `${REPO_ROOT}:/opt/crane:ro`, '-c', am, '--shell', '-n', 'dock']);
  t.is(add.code, 0, add.stderr);
  const wait = await c.crane(['job', 'wait', 'dock'], { timeoutMs: 60_000 });
  const log = (await c.crane(['job', 'log', 'dock'])).stdout;
  t.is(wait.code, 0, log);
  t.regex(log, /cargo box RUNNING: 0@\S+:\d 1@\S+:\d/);
  t.regex(log, /\S+-box-0 \| cargo \S+-box-0 GPUs \d/);
  t.regex(log, /\S+-box-1 \| cargo \S+-box-1 GPUs \d/);
  t.regex(log, /\[stderr\] error: a job's own token reaches only its job: it cannot add jobs\n.*add refused/);
});
