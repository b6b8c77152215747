/**
 * For compose test scripts (composetest_*.ts, run in the compose `runner` container by dcomposeRunner):
 * reach the project's other containers through the Docker socket.
 *
 *   const r = await onHost('host1', ['craneadm', '--version']);
 *   assert.equal(r.code, 0, r.stderr);
 *
 * A service's container is `${COMPOSE_PROJECT_NAME}_${service}_1` (docker-compose v1 naming).
 */
import Docker from 'dockerode';
import { PassThrough } from 'node:stream';

export { default as assert } from 'node:assert/strict';

export const docker = new Docker();

export interface HostResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface OnHostOptions {
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  env?: Record<string, string>;
  /** Default 30 s; past it onHost rejects (the command may go on running). */
  timeoutMs?: number;
  /** Working directory in the container. */
  workdir?: string;
}

export function project(): string {
  const p = process.env.COMPOSE_PROJECT_NAME;
  if (!p) throw new Error('COMPOSE_PROJECT_NAME is not set: compose scripts run in the dcompose runner');
  return p;
}

export function containerName(service: string): string {
  return `${project()}_${service}_1`;
}

/** Runs argv in the service's container (no shell: use ['sh', '-c', '...'] for one). */
export async function onHost(service: string, argv: string[], o: OnHostOptions = {}): Promise<HostResult> {
  const container = docker.getContainer(containerName(service));
  const exec = await container.exec({
    Cmd: argv,
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: o.input !== undefined,
    Env: Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(o.workdir ? { WorkingDir: o.workdir } : {}),
  });
  const stream = await exec.start({ hijack: true, stdin: o.input !== undefined });
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d) => (stdout += d));
  err.on('data', (d) => (stderr += d));
  docker.modem.demuxStream(stream, out, err);
  const ms = o.timeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((res, rej) => {
      timer = setTimeout(() => {
        stream.destroy();
        rej(new Error(`onHost ${service} ${JSON.stringify(argv)} did not end within ${ms} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
      }, ms);
      stream.on('end', () => res());
      stream.on('close', () => res());
      stream.on('error', rej);
      if (o.input !== undefined) stream.end(o.input);
    });
  } finally {
    clearTimeout(timer);
  }
  // The stream can end a moment before the engine records the exit code.
  for (let i = 0; ; i++) {
    const info = await exec.inspect();
    if (!info.Running && info.ExitCode !== null) return { code: info.ExitCode, stdout, stderr };
    if (i >= 50) throw new Error(`onHost ${service} ${JSON.stringify(argv)}: no exit code after the output ended`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Like onHost, but rejects unless the command exits 0; resolves to its stdout. */
export async function onHostOk(service: string, argv: string[], o: OnHostOptions = {}): Promise<string> {
  const r = await onHost(service, argv, o);
  if (r.code !== 0) throw new Error(`${service}: ${argv.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** The service's IP address on the project network. */
export async function hostIp(service: string): Promise<string> {
  const info = await docker.getContainer(containerName(service)).inspect();
  const nets = Object.values(info.NetworkSettings.Networks ?? {});
  const ip = nets.find((n) => n.IPAddress)?.IPAddress;
  if (!ip) throw new Error(`${service} has no IP address`);
  return ip;
}

/** `docker stop -t 0`: SIGTERM, then SIGKILL at once. */
export async function stopHost(service: string): Promise<void> {
  await docker.getContainer(containerName(service)).stop({ t: 0 });
}

/** `docker kill`: SIGKILL, the host disappears without a word. */
export async function killHost(service: string): Promise<void> {
  await docker.getContainer(containerName(service)).kill();
}

/** `docker start`: brings a stopped or killed host back (its processes are not restarted). */
export async function startHost(service: string): Promise<void> {
  await docker.getContainer(containerName(service)).start();
}

/** Retries fn until it resolves or timeoutMs passes; rethrows its last error then. */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000, everyMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() >= end) throw e;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

/** `craneadm init --ha` on a host (2 declared GPUs): the join token and address it printed. */
export async function initHa(service: string): Promise<{ token: string; seed: string }> {
  const init = await onHostOk(service, ['craneadm', 'init', '--ha', '--advertise', await hostIp(service), '--gpus', '2']);
  const join = /^ {2}craneadm join (\S+) (\S+)$/m.exec(init);
  if (!join) throw new Error(`no join command in: ${init}`);
  return { token: join[1]!, seed: join[2]! };
}
