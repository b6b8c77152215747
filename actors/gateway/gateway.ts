import { DEFERRED, type Actor, type ActorContext, type ActorSpec, type Envelope } from '../../bus/actor.js';
import type { BridgeRequest } from '../../bus/bridge.js';
import { CraneError } from '../../bus/errors.js';
import { subjects, type Subjects } from '../../bus/subjects.js';
import { ACTIVE_STATES, TERMINAL_STATES, type ImageCheck, type JobState, type JobView, type NodeInfo, type UserInfo } from '../protocol.js';
import type { UserRecord } from '../cluster-manager/state.js';
import type { LogReadRequest } from '../cluster-manager/log-store.js';
import { usageWindow } from '../cluster-manager/usage-views.js';
import { generateToken, verifyPassword } from './password.js';
import { validateCargoResize, validateCargoSpec } from './validate-cargo.js';
import { validateJobSpec } from './validate-job.js';

export interface GatewayOptions {
  cluster: string;
  /** Token lifetime, ms (default 30 days). */
  tokenTtlMs?: number;
  /** How long a checked token is trusted without asking the cluster manager again. */
  tokenCacheMs?: number;
}

/** Process-wide caches shared by the gateway instances of one process. */
/**
 * How long the gateway waits for the cluster manager. Longer than the bus default: in an HA
 * cluster a JetStream leader election (4–9 s in nats-server) stalls the manager's writes, and a
 * request that waits it out beats one that fails. No manager at all still fails at once.
 */
const CM_TIMEOUT_MS = 15_000;
const tokenCache = new Map<string, { user: UserInfo; until: number }>();
const imageCache = new Map<string, number>();

const STATES = new Set<string>([...ACTIVE_STATES, ...TERMINAL_STATES]);
const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
const truthy = (v: string | string[] | undefined) => ['1', 'true', 'yes'].includes(one(v) ?? '');

/** What a job's own token (its AM's) may do: read and steer that job and its cargos, nothing else. */
const JOB_TOKEN_ROUTES = new Set([
  'me',
  'resources',
  'jobs.list',
  'jobs.get',
  'jobs.logs',
  'jobs.wait',
  'jobs.events',
  'jobs.usage',
  'jobs.release',
  'cargos.create',
  'cargos.list',
  'cargos.get',
  'cargos.kill',
  'cargos.resize',
  'cargos.logs',
]);

/**
 * The user API: authenticates every request, scopes it to its user and forwards it to the cluster
 * manager (or the log store). It holds no state of its own beyond caches.
 */
class Gateway implements Actor {
  private readonly sub: Subjects;
  private readonly ttl: number;
  private readonly cacheMs: number;

  constructor(o: GatewayOptions) {
    this.sub = subjects(o.cluster);
    this.ttl = o.tokenTtlMs ?? 30 * 24 * 3600_000;
    this.cacheMs = o.tokenCacheMs ?? 5_000;
  }

  /**
   * The gateway keeps no state of its own, so it answers asynchronously: a kill that waits 10 s for
   * a container to stop must not hold up every other request behind it in the mailbox.
   */
  receive(msg: Envelope<BridgeRequest>, ctx: ActorContext): typeof DEFERRED {
    this.handle(msg, ctx).then(
      (reply) => ctx.respond(msg, reply),
      (err) => {
        if (!(err instanceof CraneError)) ctx.log.error({ err, trace: msg.trace }, 'request failed');
        ctx.respondError(msg, err instanceof CraneError ? err : new CraneError('internal', String(err?.message ?? err)));
      },
    );
    return DEFERRED;
  }

  private async handle(msg: Envelope<BridgeRequest>, ctx: ActorContext): Promise<unknown> {
    const req = msg.body;
    if (msg.type === 'ping') return { ok: true };
    if (msg.type === 'signin') return this.signin(req, msg, ctx);
    const user = await this.authenticate(req.token, msg, ctx);
    if (user.job && !JOB_TOKEN_ROUTES.has(msg.type)) {
      const [noun, verb] = msg.type.split('.');
      throw new CraneError('forbidden', `a job's own token reaches only its job: it cannot ${verb ? `${verb} ${noun}` : noun}`);
    }
    const cm = (type: string, body: object, timeout = CM_TIMEOUT_MS) => ctx.ask(this.sub.cm(type), type, { ...body, user }, { cause: msg, timeout });
    const ref = req.params.ref ?? '';
    const cargo = req.params.cargo ?? '';
    switch (msg.type) {
      case 'signout':
        tokenCache.delete(req.token!);
        return cm('token.revoke', { token: req.token });
      case 'me':
        return user;
      case 'resources':
        return cm('resources', {});
      case 'jobs.add': {
        const spec = validateJobSpec(req.body);
        await this.checkImage(spec.am.image, msg, ctx);
        return cm('job.add', { spec });
      }
      case 'jobs.list': {
        const states = list(req.query.state).flatMap((s) => s.split(',')).map((s) => s.toUpperCase());
        const badState = states.find((s) => !STATES.has(s));
        if (badState) throw new CraneError('invalid', `unknown state '${badState}': one of ${[...STATES].join(', ')}`);
        return cm('job.list', { q: one(req.query.q), tags: list(req.query.tag), states: states as JobState[] });
      }
      case 'jobs.get':
        return cm('job.get', { ref });
      case 'jobs.kill':
        return cm('job.kill', { ref, force: truthy(req.query.force) }, 30_000);
      case 'jobs.rm':
        return cm('job.rm', { ref, force: truthy(req.query.force) }, 30_000);
      case 'jobs.wait':
        return cm('job.wait', { ref });
      case 'jobs.logs':
        return this.logs(req, ref, user, msg, ctx);
      case 'jobs.events':
        return cm('job.events', { ref });
      case 'jobs.pause':
        return cm('job.pause', { ref });
      case 'jobs.resume':
        return cm('job.resume', { ref });
      case 'jobs.release':
        return cm('job.release', { ref, gpus: validateGrant((req.body as { gpus?: unknown } | undefined)?.gpus) });
      case 'cargos.create':
        return cm('cargo.create', { ref, spec: validateCargoSpec(req.body) }, 70_000);
      case 'cargos.list':
        return cm('cargo.list', { ref });
      case 'cargos.get':
        return cm('cargo.get', { ref, cargo });
      case 'cargos.kill':
        return cm('cargo.kill', { ref, cargo, force: truthy(req.query.force) }, 30_000);
      case 'cargos.resize':
        return cm('cargo.resize', { ref, cargo, resize: validateCargoResize(req.body) }, 70_000);
      case 'cargos.logs':
        return this.logs(req, ref, user, msg, ctx, cargo);
      case 'jobs.usage':
        return cm('job.usage', { ref });
      case 'usage':
        return cm('usage', usageWindow(req.query));
      default:
        throw new CraneError('invalid', `gateway does not handle '${msg.type}'`);
    }
  }

  private async signin(req: BridgeRequest, msg: Envelope, ctx: ActorContext) {
    const { username, password } = (req.body ?? {}) as { username?: string; password?: string };
    if (!username || typeof password !== 'string') throw new CraneError('invalid', 'signin needs a username and a password');
    const wrong = new CraneError('unauthenticated', 'wrong username or password');
    let u: UserRecord;
    try {
      u = await ctx.ask(this.sub.cm('user.get'), 'user.get', { username }, { cause: msg, timeout: CM_TIMEOUT_MS });
    } catch (err) {
      if (err instanceof CraneError && err.code === 'not-found') throw wrong;
      throw err;
    }
    if (!(await verifyPassword(password, u.hash))) throw wrong;
    const token = generateToken();
    const expiresAt = Date.now() + this.ttl;
    await ctx.ask(this.sub.cm('token.issue'), 'token.issue', { token, username, expiresAt }, { cause: msg, timeout: CM_TIMEOUT_MS });
    const user: UserInfo = { id: u.id, username: u.username, isAdmin: u.isAdmin };
    return { token, expiresAt: new Date(expiresAt).toISOString(), user };
  }

  private async authenticate(token: string | undefined, msg: Envelope, ctx: ActorContext): Promise<UserInfo> {
    if (!token) throw new CraneError('unauthenticated', 'not signed in: run crane user signin');
    const now = Date.now();
    const hit = tokenCache.get(token);
    if (hit && hit.until > now) return hit.user;
    const u = await ctx.ask<UserInfo & { expiresAt: number }>(this.sub.cm('token.check'), 'token.check', { token }, { cause: msg, timeout: CM_TIMEOUT_MS });
    const user: UserInfo = { id: u.id, username: u.username, isAdmin: u.isAdmin, ...(u.job ? { job: u.job } : {}) };
    if (tokenCache.size > 10_000) tokenCache.clear();
    tokenCache.set(token, { user, until: Math.min(now + this.cacheMs, u.expiresAt) });
    return user;
  }

  /** An image must be runnable on at least one node, or the job is refused at once. */
  private async checkImage(image: string, msg: Envelope, ctx: ActorContext): Promise<void> {
    if (image === 'host') return; // the cluster manager checks that some node takes host jobs
    if ((imageCache.get(image) ?? 0) > Date.now()) return;
    const { nodes } = await ctx.ask<{ nodes: NodeInfo[] }>(this.sub.cm('nodes'), 'nodes', {}, { cause: msg });
    const ready = nodes.filter((n) => n.state === 'READY' && n.docker);
    if (ready.length === 0) throw new CraneError('invalid', `cannot run image '${image}': no node has a Docker engine (image 'host' runs a host process)`);
    const checks = await Promise.all(
      ready.map((n) =>
        ctx.ask<ImageCheck>(this.sub.node(n.name, 'image'), 'image', { image }, { cause: msg, timeout: 5_000 }).catch((e: Error) => ({ ok: false, reason: e.message })),
      ),
    );
    if (!checks.some((c) => c.ok)) throw new CraneError('invalid', `cannot run image '${image}': ${checks[0]?.reason ?? 'no node has it'}`);
    imageCache.set(image, Date.now() + 30_000);
  }

  private async logs(req: BridgeRequest, ref: string, user: UserInfo, msg: Envelope, ctx: ActorContext, cargo?: string) {
    const job = await ctx.ask<JobView>(this.sub.cm('job.get'), 'job.get', { ref, user }, { cause: msg });
    const c = cargo === undefined ? undefined : job.cargos?.find((x) => x.name === cargo);
    if (cargo !== undefined && !c) throw new CraneError('not-found', `job ${job.name} has no cargo '${cargo}'`);
    const source = one(req.query.source);
    if (source && source !== 'stdout' && source !== 'stderr') throw new CraneError('invalid', `source must be stdout or stderr (got '${source}')`);
    const sinceRaw = one(req.query.since);
    const since = sinceRaw ? Date.parse(sinceRaw) : undefined;
    if (sinceRaw && Number.isNaN(since)) throw new CraneError('invalid', `invalid since '${sinceRaw}': use an ISO-8601 time`);
    const body: LogReadRequest = {
      job: job.id,
      follow: truthy(req.query.follow),
      since,
      source: source as LogReadRequest['source'],
      ended: TERMINAL_STATES.includes(job.state),
      ...(c
        ? {
            containers: c.containers.map((x) => x.id),
            exited: c.containers.filter((x) => x.state === 'DONE' || x.state === 'ERROR').map((x) => x.id),
          }
        : {}),
    };
    return ctx.ask(this.sub.logstore('read'), 'read', body, { cause: msg });
  }
}

/** `instances` gateways share a queue group (one per process is plenty; more spread the load). */
export function gatewaySpecs(o: GatewayOptions & { instances?: number }): ActorSpec[] {
  const s = subjects(o.cluster);
  return Array.from({ length: o.instances ?? 2 }, (_, i) => ({
    name: `gateway.${i}`,
    subjects: [s.gateway('>')],
    queue: 'gateway',
    factory: () => new Gateway(o),
  }));
}

/** The user API routes of crane-cli.sock (DESIGN §2). */
export function userRoutes(cluster: string) {
  const g = subjects(cluster).gateway;
  const r = (method: 'GET' | 'POST' | 'DELETE', path: string, type: string, extra: object = {}) => ({ method, path, subject: g(type), type, ...extra });
  return [
    r('GET', '/v1/ping', 'ping'),
    r('POST', '/v1/auth/signin', 'signin'),
    r('POST', '/v1/auth/signout', 'signout'),
    r('GET', '/v1/me', 'me'),
    r('GET', '/v1/resources', 'resources'),
    r('POST', '/v1/jobs', 'jobs.add', { status: 201 }),
    r('GET', '/v1/jobs', 'jobs.list'),
    r('GET', '/v1/jobs/:ref', 'jobs.get'),
    r('POST', '/v1/jobs/:ref/kill', 'jobs.kill', { timeoutMs: 35_000 }),
    r('DELETE', '/v1/jobs/:ref', 'jobs.rm', { timeoutMs: 35_000 }),
    r('GET', '/v1/jobs/:ref/logs', 'jobs.logs', { stream: true }),
    r('GET', '/v1/jobs/:ref/wait', 'jobs.wait', { stream: true }),
    r('GET', '/v1/jobs/:ref/events', 'jobs.events', { stream: true }),
    r('POST', '/v1/jobs/:ref/pause', 'jobs.pause'),
    r('POST', '/v1/jobs/:ref/resume', 'jobs.resume'),
    r('POST', '/v1/jobs/:ref/release', 'jobs.release'),
    r('POST', '/v1/jobs/:ref/cargos', 'cargos.create', { status: 201, timeoutMs: 75_000 }),
    r('GET', '/v1/jobs/:ref/cargos', 'cargos.list'),
    r('GET', '/v1/jobs/:ref/cargos/:cargo', 'cargos.get'),
    r('POST', '/v1/jobs/:ref/cargos/:cargo/kill', 'cargos.kill', { timeoutMs: 35_000 }),
    r('POST', '/v1/jobs/:ref/cargos/:cargo/resize', 'cargos.resize', { timeoutMs: 75_000 }),
    r('GET', '/v1/jobs/:ref/cargos/:cargo/logs', 'cargos.logs', { stream: true }),
    r('GET', '/v1/jobs/:ref/usage', 'jobs.usage'),
    r('GET', '/v1/usage', 'usage'),
  ];
}

/** A grant from the API: { node: [indices] }, or undefined. */
function validateGrant(raw: unknown): Record<string, number[]> | undefined {
  if (raw === undefined || raw === null) return undefined;
  const ok =
    typeof raw === 'object' &&
    !Array.isArray(raw) &&
    Object.values(raw as object).every((xs) => Array.isArray(xs) && xs.every((x) => Number.isInteger(x) && x >= 0));
  if (!ok) throw new CraneError('invalid', 'gpus must map node names to GPU indices: {"node-1": [0, 1]}');
  return raw as Record<string, number[]>;
}
