import type { Actor, ActorContext, ActorSpec, Envelope } from '../../bus/actor.js';
import { CraneError } from '../../bus/errors.js';
import { subjects } from '../../bus/subjects.js';
import {
  CRANE_VERSION,
  type ContainerConfig,
  type ContainerExit,
  type GpuSample,
  type Heartbeat,
  type ImageCheck,
  type KillRequest,
  type RegisterNode,
  type RunRequest,
} from '../protocol.js';
import { join } from 'node:path';
import { GpuUsageSampler, sameSamples, USAGE_FILE_ENV } from './gpu-usage.js';
import { ProcessRuntime } from './process-runtime.js';
import type { ContainerRuntime } from './runtime.js';

export interface NodeManagerOptions {
  cluster: string;
  name: string;
  gpus: number[];
  hostJobs: boolean;
  /** The Docker runtime when an engine is reachable (DockerRuntime, or LazyDockerRuntime). */
  docker: ContainerRuntime | undefined;
  heartbeatMs?: number;
  /** This node's own dir: host-job pid files live there, so a restarted node reaps orphans. */
  stateDir?: string;
  /** A manager host's node (it holds a JetStream replica). */
  manager?: boolean;
  /** The user API socket of this host: an AM reaches the cluster through it (CRANE_SOCKET). */
  apiSocket?: string;
  /** The GPUs were detected on this host (not declared): their usage comes from nvidia-smi. */
  gpusDetected?: boolean;
  /** Injected GPU usage (tests): a JSON file read at every sample (default: $CRANE_GPU_USAGE_FILE). */
  usageFile?: string;
}

/** Where a container sees the API socket. */
export const CONTAINER_API_SOCKET = '/run/crane/crane-cli.sock';

/** One container this node runs; `done` resolves once its exit was reported. */
interface Running {
  runtime: ContainerRuntime;
  graceMs: number;
  done: Promise<void>;
}

/** What outlives an actor restart: the runtimes and the containers they run. */
interface NodeState {
  host: ProcessRuntime;
  containers: Map<string, Running>;
  /** Exits the cluster manager has not acknowledged yet: sent again with every registration. */
  unreported: Map<string, ContainerExit>;
  /** Orphans of an earlier process are reaped once per process, before the first registration. */
  reaped?: Promise<void>;
}

const DEFAULT_GRACE_MS = 10_000;
const STOP_WAIT_MS = 3_000;
const EXIT_REPORT_MAX_DELAY_MS = 5_000;
/** Unchanged GPU samples still travel with every this many heartbeats. */
const USAGE_REFRESH_BEATS = 10;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** The node manager of one node: runs and kills containers for the cluster manager. */
export function nodeManagerSpec(opts: NodeManagerOptions): ActorSpec {
  const pidDir = opts.stateDir ? join(opts.stateDir, 'host-pids') : undefined;
  const state: NodeState = { host: new ProcessRuntime(opts.name, pidDir), containers: new Map(), unreported: new Map() };
  return {
    name: `node-manager.${opts.name}`,
    subjects: [`${subjects(opts.cluster).prefix}.node.${opts.name}.*`],
    factory: () => new NodeManager(opts, state),
  };
}

class NodeManager implements Actor {
  private readonly sub: ReturnType<typeof subjects>;
  private heartbeat?: NodeJS.Timeout;
  private registering?: Promise<void>;
  private stopped = false;
  private sampler?: GpuUsageSampler;
  /** The latest GPU samples, what the last heartbeat that carried samples sent, and beats since. */
  private usage?: GpuSample[];
  private sentUsage?: GpuSample[];
  private beatsSinceUsage = 0;
  private sampling = false;

  constructor(
    private readonly opts: NodeManagerOptions,
    private readonly state: NodeState,
  ) {
    this.sub = subjects(opts.cluster);
  }

  preStart(ctx: ActorContext): void {
    const file = this.opts.usageFile ?? (process.env[USAGE_FILE_ENV] || undefined);
    this.sampler = new GpuUsageSampler({ gpus: this.opts.gpus, detected: !!this.opts.gpusDetected, file, log: ctx.log });
    this.sampleUsage(); // ready for the first heartbeat
    this.reregister(ctx);
  }

  /**
   * (Re)registers unless a registration is already under way. Heartbeats go on meanwhile: a
   * manager that just took over may answer slowly, and must not take this node for lost.
   */
  private reregister(ctx: ActorContext): void {
    if (this.registering) return;
    this.registering = this.register(ctx).finally(() => (this.registering = undefined));
  }

  async postStop(ctx: ActorContext): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    const all = [...this.state.containers];
    if (all.length === 0) return;
    ctx.log.info({ containers: all.length }, 'stopping: killing running containers');
    await Promise.allSettled(all.map(([id, r]) => r.runtime.kill(id, true, 0)));
    await Promise.race([Promise.allSettled(all.map(([, r]) => r.done)), sleep(STOP_WAIT_MS)]);
  }

  async receive(msg: Envelope, ctx: ActorContext): Promise<unknown> {
    const verb = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    try {
      switch (verb) {
        case 'run':
          return await this.run(msg.body as RunRequest, ctx);
        case 'kill':
          return this.kill(msg.body as KillRequest, ctx);
        case 'image':
          return await this.image(msg.body);
        case 'register':
          // The cluster manager had lost this node (or restarted): tell it what runs here again.
          ctx.log.warn('the cluster manager asks this node to register again');
          this.reregister(ctx);
          return { ok: true };
        default:
          throw new CraneError('invalid', `node manager has no verb '${verb}'`);
      }
    } catch (err) {
      // A typed reply, never a crash: a restart would kill the running containers (postStop).
      if (err instanceof CraneError) throw err;
      ctx.log.error({ err, verb }, 'node manager request failed');
      throw new CraneError('internal', `node ${this.opts.name}: ${(err as Error)?.message ?? err}`);
    }
  }

  private async run(req: RunRequest, ctx: ActorContext): Promise<{ started: true; node: string }> {
    if (!req?.job || !req.container || !req.config?.image) throw new CraneError('invalid', 'run needs job, container and config.image');
    const node = this.opts.name;
    if (this.state.containers.has(req.container)) return { started: true, node };
    const c = req.config;
    const config: ContainerConfig = {
      image: c.image,
      cmd: c.cmd ?? undefined,
      shell: c.shell ?? false,
      init: c.init ?? false,
      env: c.env ?? {},
      mounts: c.mounts ?? [],
      ports: c.ports ?? [],
      shmSize: c.shmSize ?? 0,
    };
    const runtime = this.runtimeFor(config.image);
    this.withApi(req, config, runtime === this.state.host);
    const full: RunRequest = { ...req, config, gpus: req.gpus ?? [] };
    let reported!: () => void;
    const done = new Promise<void>((r) => (reported = r));
    this.state.containers.set(req.container, { runtime, graceMs: req.graceMs ?? DEFAULT_GRACE_MS, done });
    const logSubject = this.sub.log(req.job, req.container);
    try {
      await runtime.start(full, {
        onLine: (l) => ctx.tell(logSubject, 'log', { ...l, container: req.container }),
        onExit: (exitCode, signal) => {
          this.state.containers.delete(req.container);
          const exit: ContainerExit = { job: req.job, container: req.container, node, exitCode, ...(signal ? { signal } : {}) };
          ctx.log.info({ job: req.job, container: req.container, exitCode, signal }, 'container exited');
          void this.reportExit(exit, ctx).finally(reported);
        },
      });
    } catch (err) {
      this.state.containers.delete(req.container);
      reported();
      throw err;
    }
    ctx.log.info({ job: req.job, container: req.container, image: config.image, gpus: full.gpus }, 'container started');
    return { started: true, node };
  }

  /**
   * The AM gets its job's token and the API socket (a Docker container gets the socket mounted);
   * every container learns its role and cargo.
   */
  private withApi(req: RunRequest, config: ContainerConfig, host: boolean): void {
    const env: Record<string, string> = { CRANE_ROLE: req.cargo ? 'cargo' : 'am' };
    if (req.cargo) env.CRANE_CARGO = req.cargo;
    const sock = this.opts.apiSocket;
    if (req.token && sock) {
      env.CRANE_TOKEN = req.token;
      env.CRANE_SOCKET = host ? sock : CONTAINER_API_SOCKET;
      if (!host) config.mounts = [...config.mounts, { hostDir: sock, containerDir: CONTAINER_API_SOCKET, mode: 'rw' }];
    }
    config.env = { ...config.env, ...env };
  }

  private kill(req: KillRequest, ctx: ActorContext): { ok: true; gone?: true } {
    const r = this.state.containers.get(req?.container);
    if (!r) return { ok: true, gone: true };
    // Not awaited: a graceful stop may take the whole grace period.
    r.runtime.kill(req.container, !!req.force, req.graceMs ?? r.graceMs).catch((err) => {
      ctx.log.warn({ err, container: req.container }, 'kill failed');
    });
    return { ok: true };
  }

  private async image(body: unknown): Promise<ImageCheck> {
    const image = typeof body === 'string' ? body : (body as { image?: string } | undefined)?.image;
    if (!image) throw new CraneError('invalid', 'image check needs an image');
    if (image === 'host') return this.opts.hostJobs ? { ok: true } : { ok: false, reason: this.noHostJobs() };
    if (!this.opts.docker) return { ok: false, reason: this.noDocker() };
    return this.opts.docker.canRun(image);
  }

  private runtimeFor(image: string): ContainerRuntime {
    if (image === 'host') {
      if (!this.opts.hostJobs) throw new CraneError('forbidden', this.noHostJobs());
      return this.state.host;
    }
    if (!this.opts.docker) throw new CraneError('unavailable', this.noDocker());
    return this.opts.docker;
  }

  private noHostJobs(): string {
    return `node ${this.opts.name} does not run host jobs (started with --no-host-jobs)`;
  }

  private noDocker(): string {
    return `no Docker engine on node ${this.opts.name}: it runs only image 'host' jobs`;
  }

  private running(): string[] {
    return [...this.state.containers.keys()];
  }

  private async reapOrphans(ctx: ActorContext): Promise<void> {
    const runtimes = [this.state.host, ...(this.opts.docker ? [this.opts.docker] : [])];
    const counts = await Promise.all(
      runtimes.map((r) => r.reapOrphans().catch((err) => (ctx.log.warn({ err: String(err) }, 'reaping orphans failed'), 0))),
    );
    const reaped = counts.reduce((a, b) => a + b, 0);
    if (reaped) ctx.log.warn({ reaped }, 'killed containers an earlier process of this node left running');
  }

  /** Registers with the cluster manager, retrying with back-off until it answers; then heartbeats. */
  private async register(ctx: ActorContext): Promise<void> {
    await (this.state.reaped ??= this.reapOrphans(ctx));
    let delay = 200;
    for (let attempt = 1; !this.stopped; attempt++) {
      const body: RegisterNode = {
        name: this.opts.name,
        gpus: this.opts.gpus,
        docker: !!this.opts.docker,
        hostJobs: this.opts.hostJobs,
        pid: process.pid,
        version: CRANE_VERSION,
        running: this.running(),
        exited: [...this.state.unreported.values()],
        ...(this.opts.manager ? { manager: true } : {}),
      };
      try {
        const reply = await ctx.ask<{ ok: boolean; kill?: string[]; left?: boolean }>(this.sub.cm('node.register'), 'node.register', body, { timeout: 2_000 });
        if (this.stopped) return;
        for (const e of body.exited ?? []) this.state.unreported.delete(e.container);
        if (reply.left) {
          ctx.log.info('this node left the cluster: not registering again');
          clearInterval(this.heartbeat);
          return;
        }
        if (!reply.ok) {
          await this.killStale(reply.kill ?? [], ctx);
          continue;
        }
        ctx.log.info({ gpus: this.opts.gpus, docker: body.docker, hostJobs: body.hostJobs }, 'registered with the cluster manager');
        this.startHeartbeat(ctx);
        return;
      } catch (err) {
        if (attempt === 1 || attempt % 10 === 0) {
          ctx.log.warn({ attempt, err: (err as Error).message }, 'cluster manager did not take the registration; retrying');
        }
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 5_000);
    }
  }

  /** Kills (SIGKILL) containers the cluster manager gave up on, and waits until they are gone. */
  private async killStale(containers: string[], ctx: ActorContext): Promise<void> {
    ctx.log.warn({ containers }, 'killing containers of jobs the cluster manager requeued or ended');
    const running = containers.flatMap((id) => {
      const r = this.state.containers.get(id);
      return r ? [{ id, r }] : [];
    });
    await Promise.allSettled(running.map(({ id, r }) => r.runtime.kill(id, true, 0)));
    await Promise.race([Promise.allSettled(running.map(({ r }) => r.done)), sleep(STOP_WAIT_MS)]);
  }

  private startHeartbeat(ctx: ActorContext): void {
    clearInterval(this.heartbeat);
    this.sentUsage = undefined; // the first heartbeat after a registration carries the samples
    const beat = () => {
      const hb: Heartbeat = { name: this.opts.name, running: this.running(), at: Date.now(), ...this.usageField() };
      ctx.tell(this.sub.hb(this.opts.name), 'heartbeat', hb);
      this.sampleUsage();
    };
    beat();
    this.heartbeat = setInterval(beat, this.opts.heartbeatMs ?? 1_000);
  }

  /** Starts a sample of the GPUs unless one is under way; the next heartbeat carries it. */
  private sampleUsage(): void {
    if (this.sampling || !this.sampler) return;
    this.sampling = true;
    void this.sampler
      .sample()
      .then((s) => (this.usage = s))
      .finally(() => (this.sampling = false));
  }

  /** The samples, when they changed since the last heartbeat that carried them (or it is time again). */
  private usageField(): Pick<Heartbeat, 'gpuUsage'> {
    const u = this.usage;
    if (!u) return {};
    if (sameSamples(u, this.sentUsage) && ++this.beatsSinceUsage < USAGE_REFRESH_BEATS) return {};
    this.sentUsage = u;
    this.beatsSinceUsage = 0;
    return { gpuUsage: u };
  }

  /**
   * Tells the cluster manager a container ended, retrying while it is unreachable (it may be
   * restarting, or a standby taking over); a registration in between carries the exit too.
   */
  private async reportExit(exit: ContainerExit, ctx: ActorContext): Promise<void> {
    this.state.unreported.set(exit.container, exit);
    // Once the node is stopping, one attempt: its registration will never come.
    for (let attempt = 1; this.state.unreported.has(exit.container) && (attempt === 1 || !this.stopped); attempt++) {
      try {
        await ctx.ask(this.sub.cm('container.exit'), 'container.exit', exit, { timeout: 3_000 });
        this.state.unreported.delete(exit.container);
        return;
      } catch (err) {
        const retry = err instanceof CraneError && (err.code === 'timeout' || err.code === 'unavailable');
        if (!retry) {
          this.state.unreported.delete(exit.container);
          ctx.log.error({ err: (err as Error).message, container: exit.container }, 'could not report a container exit');
          return;
        }
        if (attempt === 3) ctx.log.warn({ container: exit.container }, 'the cluster manager does not take a container exit yet; still trying');
        await sleep(Math.min(250 * attempt, EXIT_REPORT_MAX_DELAY_MS));
      }
    }
  }
}
