// The docker-compose harness itself: dcomposeRunner (tests/helpers/dcompose.ts) with the
// composetest_harness / composetest_fails scripts. Needs a Docker engine and docker-compose v1.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { dcomposeRunner, REPO_ROOT } from '../helpers/dcompose.js';

const dockerUp = spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;
if (!dockerUp) console.log('compose tests skipped: `docker info` fails (no Docker engine: start dockerd)');
const maybe = dockerUp ? test.serial : test.skip;

const run = dcomposeRunner();

test.before('the images', (t) => {
  if (!dockerUp) return;
  t.log(execFileSync(resolve(REPO_ROOT, 'images/build.sh'), { encoding: 'utf8' }).trim());
});

maybe('three hosts run crane and nats-server and reach each other by name', async (t) => {
  const started = Date.now();
  const r = await run({ script: 'tests/int/composetest_harness.js', files: ['hosts.yml'], timeoutMs: 60_000 });
  t.is(r.code, 0, r.output);
  t.regex(r.output, /harness: 3 hosts ok/);
  t.is(r.logs, '');
  t.log(`${r.project}: ${Date.now() - started} ms`);
});

maybe('a failing script gives a non-zero verdict, the logs, and a full teardown', async (t) => {
  const r = await run({ script: 'tests/int/composetest_fails.js', files: ['one-host.yml'], timeoutMs: 60_000 });
  t.is(r.code, 1);
  t.regex(r.output, /composetest_fails: failing on purpose/);
  t.regex(r.logs, /host1_1 .*host1-was-here/);
  const left = (p: string, kind: 'ps' | 'network' | 'volume') =>
    execFileSync('docker', kind === 'ps' ? ['ps', '-aq', '--filter', `label=com.docker.compose.project=${p}`] : [kind, 'ls', '-q', '--filter', `label=com.docker.compose.project=${p}`], {
      encoding: 'utf8',
    }).trim();
  t.is(left(r.project, 'ps'), '');
  t.is(left(r.project, 'network'), '');
  t.is(left(r.project, 'volume'), '');
});

// --dev-crane-path: the containers run the checkout given (absolute, built), refused otherwise.
const devCli = (args: string[]) => spawnSync(process.execPath, [resolve(REPO_ROOT, 'dist/tests/helpers/dcompose-cli.js'), ...args], { encoding: 'utf8' });

maybe('--dev-crane-path: a Crane container runs that checkout; a relative or missing path is one line', async (t) => {
  const ok = devCli(['shell', '--dev-crane-path', REPO_ROOT, 'sh', '-c', 'readlink -f /opt/crane/dist/cli/craneadm.js && craneadm --version']);
  t.is(ok.status, 0, ok.stderr);
  t.regex(ok.stdout, /^\/opt\/crane\/dist\/cli\/craneadm\.js\ncraneadm\/\S+ /);
  for (const [dir, line] of [
    ['dist', "error: --dev-crane-path must be an absolute path, not 'dist' (try $PWD/dist)\n"],
    ['/no/such/crane', 'error: --dev-crane-path /no/such/crane: no such directory\n'],
  ]) {
    const r = devCli(['shell', '--dev-crane-path', dir!, 'true']);
    t.deepEqual([r.status, r.stderr, r.stdout], [1, line, '']);
  }
  await t.throwsAsync(run({ script: 'tests/int/composetest_harness.js', files: ['one-host.yml'], devCranePath: 'relative/path' }), {
    message: "--dev-crane-path must be an absolute path, not 'relative/path' (try $PWD/relative/path)",
  });
});
