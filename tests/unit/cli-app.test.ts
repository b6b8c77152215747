import test from 'ava';
import { cac } from 'cac';
import { ExitError, prepareArgv, runCli, UsageError, unprotect } from '../../cli/app.js';

test('prepareArgv joins two-word commands and protects number-like values', (t) => {
  const names = ['job list', 'job add', 'user signin', 'status'];
  t.deepEqual(prepareArgv(['job', 'list', '-a'], names), { args: ['job list', '-a'], group: undefined });
  t.deepEqual(prepareArgv(['--socket-path', '/s', 'job', 'add', 'img', '1'], names, ['--socket-path']).args, [
    '--socket-path',
    '/s',
    'job add',
    'img',
    '\u00001',
  ]);
  t.deepEqual(prepareArgv(['job'], names), { args: ['job'], group: 'job' });
  t.deepEqual(prepareArgv(['job', 'nope'], names), { args: ['job', 'nope'], group: 'job' });
  t.deepEqual(prepareArgv(['status', 'job', 'list'], names).args, ['status', 'job', 'list']);
  t.deepEqual(prepareArgv(['-c', '007', '--name=1e3', '-c', ''], names).args, ['-c', '\u0000007', '--name=\u00001e3', '-c', '\u0000']);
  t.deepEqual(unprotect({ a: '\u0000007', b: ['\u00001', 'x'], c: true }), { a: '007', b: ['1', 'x'], c: true });
});

/** Runs the CLI with stdout/stderr muted (cac's help goes through console.info). */
async function run(cli: ReturnType<typeof cac>, argv: string[], valueOptions: string[] = []): Promise<number> {
  const saved = [process.stdout.write, process.stderr.write, console.info] as const;
  process.stdout.write = process.stderr.write = (() => true) as typeof process.stdout.write;
  console.info = () => undefined;
  try {
    return await runCli(cli, argv, valueOptions);
  } finally {
    [process.stdout.write, process.stderr.write, console.info] = saved;
  }
}

/** A small CLI like crane's; returns what the action saw. */
function demo() {
  const seen: unknown[] = [];
  const cli = cac('demo');
  cli.option('--socket-path <path>', 'socket');
  cli.option('--use-local-crane', 'local');
  cli
    .command('job add <IMAGE> <RESOURCE>', 'add')
    .option('-c, --cmd <cmd>', 'cmd')
    .option('-e, --env <kv>', 'env')
    .option('--password-stdin', 'pw')
    .option('--no-init', 'no init')
    .action((image: string, resource: string, o: Record<string, unknown>) => {
      seen.push({ image, resource, cmd: o.cmd, env: o.env, init: o.init, local: !!o.useLocalCrane, pw: !!o.passwordStdin, socket: o.socketPath });
    });
  cli.command('job fail', 'fail').action(() => {
    throw new Error('boom');
  });
  cli.command('job usage', 'usage').action(() => {
    throw new UsageError('bad usage');
  });
  cli.command('job exit', 'exit').action(() => {
    throw new ExitError(7);
  });
  cli.help();
  cli.version('1.0');
  return { cli, seen };
}

test.serial('runCli runs two-word commands and keeps values as typed', async (t) => {
  const { cli, seen } = demo();
  const code = await run(cli, ['--use-local-crane', 'job', 'add', 'img', '1', '-c', '007', '-e', 'A=1', '-e', 'B=2', '--no-init', '--password-stdin'], [
    '--socket-path',
  ]);
  t.is(code, 0);
  t.deepEqual(seen, [{ image: 'img', resource: '1', cmd: '007', env: ['A=1', 'B=2'], init: false, local: true, pw: true, socket: undefined }]);
});

test.serial('runCli: a boolean kebab flag does not eat the next argument', async (t) => {
  const { cli, seen } = demo();
  t.is(await run(cli, ['job', 'add', '--password-stdin', 'img', '2:4', '--socket-path', '/s'], ['--socket-path']), 0);
  t.like(seen[0], { image: 'img', resource: '2:4', pw: true, socket: '/s', init: true });
});

test.serial('runCli exit codes', async (t) => {
  t.is(await run(demo().cli, ['job', 'fail']), 1);
  t.is(await run(demo().cli, ['job', 'usage']), 2);
  t.is(await run(demo().cli, ['job', 'exit']), 7);
  t.is(await run(demo().cli, ['job', 'add', 'img']), 2);
  t.is(await run(demo().cli, ['job', 'add', 'img', '1', '--bogus']), 2);
  t.is(await run(demo().cli, ['job', 'add', 'img', '1', 'extra']), 2);
  t.is(await run(demo().cli, ['job', 'add', 'img', '1', '-c']), 2);
  t.is(await run(demo().cli, ['job', 'nope']), 2);
  t.is(await run(demo().cli, ['nope']), 2);
  t.is(await run(demo().cli, ['--bogus']), 2);
  t.is(await run(demo().cli, ['job']), 0);
  t.is(await run(demo().cli, ['job', 'add', '--help']), 0);
  t.is(await run(demo().cli, ['--version']), 0);
});
