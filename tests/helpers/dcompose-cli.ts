#!/usr/bin/env node
/**
 * Crane's containers by hand, for development (the `just` recipes compose-up, compose-down,
 * compose-test and crane-shell call this). Every container runs the code of a checkout mounted
 * over /opt/crane: `--dev-crane-path DIR` (absolute, built), default this repository.
 *
 *   node dist/tests/helpers/dcompose-cli.js up [--dev-crane-path DIR] [--files hosts.yml,...]
 *   node dist/tests/helpers/dcompose-cli.js down PROJECT
 *   node dist/tests/helpers/dcompose-cli.js test SCRIPT [--dev-crane-path DIR] [--files hosts.yml]
 *   node dist/tests/helpers/dcompose-cli.js shell [--dev-crane-path DIR] [-- CMD ARGS...]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { cac } from 'cac';
import { COMPOSE_DIR, dcomposeRunner, devCranePath } from './dcompose.js';

const IMAGE = 'crane/crane:dev';

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

function needImage(): void {
  if (spawnSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' }).status !== 0) fail(`no image ${IMAGE}: run just image`);
}

function composeArgs(project: string, files: string[]): string[] {
  return ['--ansi', 'never', '-p', project, ...files.flatMap((f) => ['-f', join(COMPOSE_DIR, f)])];
}

const fileList = (v: unknown) => String(v ?? 'hosts.yml').split(',').map((f) => f.trim()).filter(Boolean);
const devPath = (o: { devCranePath?: unknown }) => {
  try {
    return devCranePath(o.devCranePath === undefined ? undefined : String(o.devCranePath));
  } catch (e) {
    return fail((e as Error).message);
  }
};

const cli = cac('dcompose');
cli.option('--dev-crane-path <dir>', 'The Crane checkout the containers run (absolute, built; default: this repository)');

cli
  .command('up', 'Start Crane containers (compose-files/hosts.yml: host1..host3) and leave them running')
  .option('--files <list>', 'compose-files to use, comma-separated', { default: 'hosts.yml' })
  .action((o: { devCranePath?: string; files?: string }) => {
    const dev = devPath(o);
    needImage();
    const project = `cranedev${randomBytes(3).toString('hex')}`;
    const files = fileList(o.files);
    const env = { ...process.env, CRANE_DEV_PATH: dev };
    const up = spawnSync('docker-compose', [...composeArgs(project, files), 'up', '-d'], { env, encoding: 'utf8' });
    if (up.status !== 0) fail(`docker-compose up failed: ${(up.stderr || up.stdout).trim().split('\n').pop()}`);
    const services = spawnSync('docker-compose', [...composeArgs(project, files), 'config', '--services'], { env, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    console.log(`project ${project}: ${services.join(', ')} running the code in ${dev}`);
    for (const s of services) {
      const ip = spawnSync('docker', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', `${project}_${s}_1`], { encoding: 'utf8' }).stdout.trim();
      console.log(`  ${s}  ${ip}   docker exec -it ${project}_${s}_1 sh`);
    }
    console.log(`try:   docker exec ${project}_host1_1 craneadm init --advertise <host1's address>`);
    console.log(`stop:  just compose-down ${project}`);
  });

cli.command('down <PROJECT>', 'Stop and remove a project started with up').action((project: string) => {
  if (!/^cranedev[0-9a-f]{6}$/.test(project)) fail(`'${project}' is not a project started by compose-up (cranedev + 6 hex digits)`);
  const files = ['hosts.yml', 'one-host.yml'];
  // The mount path does not matter for `down`, but the files interpolate it.
  const down = spawnSync('docker-compose', [...composeArgs(project, files), 'down', '-v', '--remove-orphans', '-t', '1'], { env: { ...process.env, CRANE_DEV_PATH: '/' }, encoding: 'utf8' });
  if (down.status !== 0) fail(`docker-compose down failed: ${(down.stderr || down.stdout).trim().split('\n').pop()}`);
  console.log(`project ${project} removed`);
});

cli
  .command('test <SCRIPT>', 'Run one compose test script (compiled path under dist/, e.g. tests/int/composetest_cluster.js)')
  .option('--files <list>', 'compose-files to use, comma-separated', { default: 'hosts.yml' })
  .option('--timeout <seconds>', 'Give up after this long', { default: 180 })
  .action(async (script: string, o: { devCranePath?: string; files?: string; timeout?: number }) => {
    const dev = devPath(o);
    needImage();
    const r = await dcomposeRunner()({ script, files: fileList(o.files), devCranePath: dev, timeoutMs: Number(o.timeout) * 1000 });
    process.stdout.write(r.output);
    console.log(`${script}: ${r.code === 0 ? 'passed' : `failed (exit ${r.code})`} (project ${r.project}, code from ${dev})`);
    process.exit(r.code === 0 ? 0 : 1);
  });

cli.command('shell [...CMD]', 'A throwaway Crane container running the checkout: a shell, or CMD (its options are its own)');

/** `shell [--dev-crane-path DIR] [--] CMD...`: everything after the path is the command's. */
function shell(args: string[]): void {
  let dir: string | undefined;
  if (args[0] === '--dev-crane-path') [dir, args] = [args[1] ?? fail('--dev-crane-path needs a directory'), args.slice(2)];
  else if (args[0]?.startsWith('--dev-crane-path=')) [dir, args] = [args[0].slice('--dev-crane-path='.length), args.slice(1)];
  if (args[0] === '--') args = args.slice(1);
  const dev = devPath({ devCranePath: dir });
  needImage();
  const tty = process.stdin.isTTY ? ['-t'] : [];
  const argv = ['run', '--rm', '-i', ...tty, '-v', `${dev}:/opt/crane:ro`, IMAGE, ...(args.length ? args : ['sh'])];
  spawn('docker', argv, { stdio: 'inherit' }).on('exit', (code) => process.exit(code ?? 1));
}

cli.help();
try {
  if (process.argv[2] === 'shell' && !['--help', '-h'].includes(process.argv[3] ?? '')) {
    shell(process.argv.slice(3));
  } else {
    cli.parse(process.argv, { run: false });
    if (!cli.matchedCommand && !cli.options.help) {
      cli.outputHelp();
      process.exit(process.argv.length > 2 ? 2 : 0);
    }
    await cli.runMatchedCommand();
  }
} catch (e) {
  fail((e as Error).message);
}
