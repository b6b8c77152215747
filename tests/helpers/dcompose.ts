/**
 * The `dcomposeRunner` fixture: runs one docker-compose test (docs/compose-harness.md).
 *
 *   const run = dcomposeRunner();
 *   const r = await run({ script: 'tests/int/composetest_harness.js', files: ['hosts.yml'] });
 *   t.is(r.code, 0, r.output);
 *
 * For each call it picks a new project name `crane<hex>` and, with `-f compose-files/<f>` for
 * every file in `files` plus runner.yml (added if missing):
 *   1. `docker-compose up -d` every service but `runner`;
 *   2. `docker-compose run --rm -T -e DCOMPOSE_TEST_SCRIPT=<script> runner`: the runner runs the
 *      compiled script (path relative to dist/) and its exit code is the verdict `code`;
 *   3. when `code` is not 0 (or on an error or timeout), prints every container's logs
 *      (`docker-compose logs --no-color`) to stderr and returns them in `logs`;
 *   4. always `docker-compose down -v --remove-orphans -t 1`, then removes anything still labelled
 *      with the project; `DCOMPOSE_KEEP=1` skips this and prints the project name instead.
 * A checkout is mounted over /opt/crane in every container, so only dist/ needs rebuilding after a
 * code change; crane/crane:dev comes from images/build.sh. Which checkout: `devCranePath`, else
 * $CRANE_DEV_PATH, else this repository (see checkDevCranePath).
 * `env` goes to docker-compose (for interpolation) and into the runner; CRANE_LOG_LEVEL passes
 * through to every container. A timeout (`timeoutMs`, default 90 s) gives code 124.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const COMPOSE_DIR = join(REPO_ROOT, 'compose-files');

/**
 * `--dev-crane-path DIR`: the checkout whose code Crane's containers run (mounted read-only over
 * /opt/crane, so a change needs `just build` there, not an image rebuild). Docker mounts the path
 * as given, so it must be absolute; it must hold a built checkout. Returns it; throws one line.
 */
export function checkDevCranePath(dir: string): string {
  if (!isAbsolute(dir)) throw new Error(`--dev-crane-path must be an absolute path, not '${dir}' (try $PWD/${dir.replace(/^\.\//, '')})`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--dev-crane-path ${dir}: no such directory`);
  if (!existsSync(join(dir, 'dist', 'cli', 'craneadm.js'))) throw new Error(`--dev-crane-path ${dir}: not a built Crane checkout (no dist/cli/craneadm.js: run just build there)`);
  return dir;
}

/** The checkout Crane containers run: the option, else $CRANE_DEV_PATH, else this repository. */
export function devCranePath(option?: string): string {
  return checkDevCranePath(option ?? process.env.CRANE_DEV_PATH ?? REPO_ROOT);
}

export interface DcomposeOptions {
  /** The compiled script, relative to dist/: e.g. 'tests/int/composetest_harness.js'. */
  script: string;
  /** Files of compose-files/ to compose, e.g. ['hosts.yml']; runner.yml is added if missing. */
  files: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
  /** The checkout the containers run (default: $CRANE_DEV_PATH, else this repository). */
  devCranePath?: string;
}

export interface DcomposeResult {
  /** The runner's exit code (124 on timeout). */
  code: number;
  /** The runner's output (stdout and stderr interleaved). */
  output: string;
  /** Every container's logs when code is not 0, else ''. */
  logs: string;
  project: string;
}

interface Exec {
  code: number;
  output: string;
  timedOut: boolean;
}

function exec(argv: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Exec> {
  return new Promise((res) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      res({ code: 127, output: `${output}${e.message}\n`, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code: timedOut ? 124 : (code ?? (signal ? 128 : 1)), output, timedOut });
    });
  });
}

export function dcomposeRunner(): (o: DcomposeOptions) => Promise<DcomposeResult> {
  return async (o) => {
    const project = `crane${randomBytes(4).toString('hex')}`;
    const dev = devCranePath(o.devCranePath);
    const files = o.files.includes('runner.yml') ? o.files : [...o.files, 'runner.yml'];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...o.env,
      CRANE_DEV_PATH: dev,
      COMPOSE_PROJECT_NAME: project,
      DCOMPOSE_TEST_SCRIPT: o.script,
    };
    const dc = ['docker-compose', '--ansi', 'never', '-p', project, ...files.flatMap((f) => ['-f', join(COMPOSE_DIR, f)])];
    const deadline = Date.now() + (o.timeoutMs ?? 90_000);
    const left = () => Math.max(1000, deadline - Date.now());
    let code = 1;
    let output = '';
    let logs = '';
    try {
      const services = await exec([...dc, 'config', '--services'], env, left());
      if (services.code !== 0) throw new Error(`docker-compose config failed:\n${services.output}`);
      const others = services.output.split('\n').map((s) => s.trim()).filter((s) => s && s !== 'runner');
      if (others.length > 0) {
        const up = await exec([...dc, 'up', '-d', ...others], env, left());
        if (up.code !== 0) throw new Error(`docker-compose up failed (${up.code}):\n${up.output}`);
      }
      const extra = Object.entries(o.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
      const run = await exec([...dc, 'run', '--rm', '-T', '-e', `DCOMPOSE_TEST_SCRIPT=${o.script}`, ...extra, 'runner'], env, left());
      code = run.code;
      // docker-compose v1 `run -T` ends its output with the exit code on a line of its own.
      run.output = run.output.replace(new RegExp(`\n${run.code}$`), '\n');
      output = run.timedOut ? `${run.output}\n[dcompose] ${o.script} timed out after ${o.timeoutMs ?? 90_000} ms\n` : run.output;
    } catch (e) {
      code = code === 0 ? 1 : code;
      output += `\n[dcompose] ${(e as Error).message}\n`;
    } finally {
      if (code !== 0) {
        logs = (await exec([...dc, 'logs', '--no-color'], env, 20_000)).output;
        process.stderr.write(`[dcompose] ${project}: ${o.script} exited ${code}\n${output}\n[dcompose] ${project}: container logs\n${logs}\n`);
      }
      if (process.env.DCOMPOSE_KEEP === '1') {
        process.stderr.write(
          `[dcompose] DCOMPOSE_KEEP=1: project ${project} kept; remove it with: ` +
            `CRANE_DEV_PATH=${dev} ${dc.join(' ')} down -v --remove-orphans -t 1\n`,
        );
      } else {
        await teardown(dc, env, project);
      }
    }
    return { code, output, logs, project };
  };
}

async function teardown(dc: string[], env: NodeJS.ProcessEnv, project: string): Promise<void> {
  const down = await exec([...dc, 'down', '-v', '--remove-orphans', '-t', '1'], env, 60_000);
  // Whatever `down` missed (a one-off runner container left by a timeout, say) goes too.
  const ps = await exec(['docker', 'ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], env, 20_000);
  const ids = ps.output.split('\n').map((s) => s.trim()).filter(Boolean);
  if (ids.length > 0) await exec(['docker', 'rm', '-f', '-v', ...ids], env, 30_000);
  if (down.code !== 0) {
    const net = await exec(['docker', 'network', 'rm', `${project}_default`], env, 20_000);
    if (net.code !== 0 && !/No such network|not found/i.test(net.output)) {
      process.stderr.write(`[dcompose] ${project}: down failed:\n${down.output}\n${net.output}\n`);
    }
  }
}
