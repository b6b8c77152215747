// A 3-host cluster in containers (compose-files/hosts.yml): init, join, a job across hosts, leave
// --force, a wrong token (tests/int/composetest_cluster.ts). Needs a Docker engine and docker-compose.
import { execFileSync, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import test from 'ava';
import { dcomposeRunner, REPO_ROOT } from '../helpers/dcompose.js';

const dockerUp = spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;
const maybe = dockerUp ? test : test.skip;
const run = dcomposeRunner();

test.before('the images', () => {
  if (dockerUp) execFileSync(resolve(REPO_ROOT, 'images/build.sh'), { stdio: 'ignore' });
});

maybe('a 3-host cluster: init, join, a job across hosts, leave --force, a wrong token', async (t) => {
  const r = await run({ script: 'tests/int/composetest_cluster.js', files: ['hosts.yml'], timeoutMs: 120_000 });
  t.is(r.code, 0, r.output);
  for (const line of r.output.split('\n').filter((l) => /^(cluster|job add)/.test(l))) t.log(line);
});

maybe('an HA cluster of 3 manager hosts: the active manager host killed, another takes over within 10 s', async (t) => {
  const r = await run({ script: 'tests/int/composetest_failover.js', files: ['hosts.yml'], timeoutMs: 120_000 });
  t.is(r.code, 0, r.output);
  for (const line of r.output.split('\n').filter((l) => /^failover/.test(l))) t.log(line);
});

maybe('promote and demote in an HA cluster: bad input refused, replicas follow, the lease moves off a demoted manager', async (t) => {
  const r = await run({ script: 'tests/int/composetest_promote.js', files: ['hosts.yml'], timeoutMs: 150_000 });
  t.is(r.code, 0, r.output);
  for (const line of r.output.split('\n').filter((l) => /^promote/.test(l))) t.log(line);
});
