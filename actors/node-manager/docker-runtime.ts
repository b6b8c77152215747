import Docker from 'dockerode';
import { constants } from 'node:os';
import { Writable } from 'node:stream';
import { CraneError } from '../../bus/errors.js';
import type { ImageCheck, LogLine, RunRequest } from '../protocol.js';
import { LineSplitter } from './line-splitter.js';
import { containerEnv, type ContainerRuntime, type RuntimeHooks } from './runtime.js';
import { splitCommand } from './shell-words.js';

export interface DockerRuntimeOptions {
  node: string;
  /** Ask for GPUs with DeviceRequests (only on hosts with detected, not just declared, GPUs). */
  deviceRequests: boolean;
  docker?: Docker;
  /**
   * Identifies this node's containers across its restarts (its state dir): the `crane.owner` label.
   * Without it, nothing is reaped.
   */
  owner?: string;
}

interface DockerError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string };
}

/** The longest a drained output stream is waited for after the container exited. */
const DRAIN_MS = 2_000;

const isEngineDown = (e: DockerError) => e.statusCode === undefined && ['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET'].includes(e.code ?? '');
const engineMessage = (e: DockerError) => (e.json?.message ?? e.message).trim();

/** Containers on the local Docker engine (the API version is negotiated by default). */
export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  private readonly node: string;
  private readonly deviceRequests: boolean;
  private readonly owner?: string;
  /** crane container id -> docker container. */
  private readonly containers = new Map<string, Docker.Container>();
  /** Containers Crane killed: their 128+N status is reported with the signal name. */
  private readonly killed = new Set<string>();

  constructor(opts: DockerRuntimeOptions) {
    this.node = opts.node;
    this.deviceRequests = opts.deviceRequests;
    this.owner = opts.owner;
    this.docker = opts.docker ?? new Docker();
  }

  /** True if a Docker engine answers a ping within 1 s. */
  static async probe(docker = new Docker()): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), 1_000);
    });
    try {
      return await Promise.race([docker.ping().then(() => true, () => false), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async canRun(image: string): Promise<ImageCheck> {
    try {
      await this.docker.getImage(image).inspect();
      return { ok: true };
    } catch (err) {
      const e = err as DockerError;
      if (e.statusCode === 404) return { ok: false, reason: this.missingImage(image) };
      if (isEngineDown(e)) return { ok: false, reason: `no Docker engine on node ${this.node}` };
      return { ok: false, reason: `docker on node ${this.node}: ${engineMessage(e)}` };
    }
  }

  async start(req: RunRequest, hooks: RuntimeHooks): Promise<void> {
    if (this.containers.has(req.container)) throw new CraneError('conflict', `container ${req.container} already runs`);
    const { config } = req;
    const cmd = config.cmd?.trim() ? (config.shell ? ['sh', '-c', config.cmd] : splitCommand(config.cmd)) : undefined;
    const env = containerEnv(req, this.node);
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        Image: config.image,
        Cmd: cmd,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        Labels: {
          crane: 'true',
          'crane.job': req.job,
          'crane.container': req.container,
          ...(this.owner ? { 'crane.owner': this.owner } : {}),
        },
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        HostConfig: {
          Init: config.init,
          ShmSize: config.shmSize > 0 ? config.shmSize : undefined,
          Binds: config.mounts.map((m) => `${m.hostDir}:${m.containerDir}:${m.mode || 'rw'}`),
          NetworkMode: 'bridge',
          AutoRemove: false,
          DeviceRequests:
            this.deviceRequests && req.gpus.length > 0
              ? [{ Driver: 'nvidia', DeviceIDs: req.gpus.map(String), Capabilities: [['gpu']] }]
              : undefined,
        },
      });
    } catch (err) {
      throw this.startError(err as DockerError, config.image);
    }
    let output: NodeJS.ReadableStream;
    try {
      output = await container.attach({ stream: true, stdout: true, stderr: true });
      await container.start();
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      throw this.startError(err as DockerError, config.image);
    }
    this.containers.set(req.container, container);
    const drained = this.demux(output, hooks);
    void this.awaitExit(req.container, container, drained, hooks);
  }

  async kill(container: string, force: boolean, graceMs: number): Promise<void> {
    const c = this.containers.get(container);
    if (!c) return;
    this.killed.add(container);
    try {
      if (force) await c.kill({ signal: 'SIGKILL' });
      else await c.stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
    } catch (err) {
      const e = err as DockerError;
      // 304: already stopped; 404: gone; 409: not running.
      if (![304, 404, 409].includes(e.statusCode ?? 0)) throw this.engineError(e);
    }
  }

  running(): string[] {
    return [...this.containers.keys()];
  }

  async reapOrphans(): Promise<number> {
    if (!this.owner) return 0;
    const left = await this.docker.listContainers({ all: true, filters: { label: [`crane.owner=${this.owner}`] } });
    const orphans = left.filter((c) => !this.containers.has(c.Labels['crane.container'] ?? ''));
    await Promise.all(orphans.map((c) => this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
    return orphans.length;
  }

  /** Splits the multiplexed attach stream into stdout/stderr lines; resolves once it ended. */
  private demux(output: NodeJS.ReadableStream, hooks: RuntimeHooks): Promise<void> {
    const sink = (src: LogLine['src']) => {
      const splitter = new LineSplitter((line) => hooks.onLine({ t: Date.now(), src, line }));
      const w = new Writable({
        write(chunk: Buffer, _enc, cb) {
          splitter.push(chunk);
          cb();
        },
      });
      return { w, splitter };
    };
    const out = sink('stdout');
    const err = sink('stderr');
    this.docker.modem.demuxStream(output, out.w, err.w);
    return new Promise<void>((resolve) => {
      const done = () => {
        out.splitter.end();
        err.splitter.end();
        resolve();
      };
      output.once('end', done);
      output.once('close', done);
      output.once('error', done);
    });
  }

  private async awaitExit(id: string, container: Docker.Container, drained: Promise<void>, hooks: RuntimeHooks): Promise<void> {
    let code = 1;
    try {
      const res = (await container.wait()) as { StatusCode?: number };
      code = res.StatusCode ?? 1;
    } catch {
      /* the engine went away: report a failure */
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise((r) => (timer = setTimeout(r, DRAIN_MS)))]);
    clearTimeout(timer);
    this.containers.delete(id);
    const killed = this.killed.delete(id);
    await container.remove({ force: true }).catch(() => undefined);
    hooks.onExit(code, killed ? signalOf(code) : undefined);
  }

  private missingImage(image: string): string {
    return `image '${image}' is not on node ${this.node}: build it locally (no registry is reachable), e.g. just image`;
  }

  private startError(e: DockerError, image: string): CraneError {
    if (e.statusCode === 404 && /image/i.test(engineMessage(e))) return new CraneError('not-found', this.missingImage(image));
    return this.engineError(e);
  }

  private engineError(e: DockerError): CraneError {
    if (e instanceof CraneError) return e;
    if (isEngineDown(e)) return new CraneError('unavailable', `no Docker engine on node ${this.node}`);
    const msg = engineMessage(e);
    if (e.statusCode === 400 || e.statusCode === 404) return new CraneError('invalid', `docker on node ${this.node}: ${msg}`);
    if (e.statusCode === 409) return new CraneError('conflict', `docker on node ${this.node}: ${msg}`);
    return new CraneError('unavailable', `docker on node ${this.node}: ${msg}`);
  }
}

/** The signal name of a 128+N exit status, if N is a signal. */
function signalOf(code: number): string | undefined {
  if (code <= 128) return undefined;
  const n = code - 128;
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
}
