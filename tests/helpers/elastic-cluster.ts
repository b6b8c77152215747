/**
 * A cluster manager and N node managers as actors on a real nats-server, for comp tests of
 * scheduling. The nodes' containers are held by a TestRuntime: they run until the test ends them
 * (or a kill does), so a test plays the app manager: it reads the job's event stream and answers.
 *
 *   const c = await startElasticCluster({ nodes: { n1: 4, n2: 4 } });
 *   const job = await c.add('alice', { app: 1, min: 2, max: 8 });
 *   const ev = c.events(job);                      // the AM's event stream
 *   await c.teardown();
 */
import { ActorSystem } from '../../bus/actor.js';
import { openStreamReader } from '../../bus/stream.js';
import { subjects } from '../../bus/subjects.js';
import { clusterManagerSpec } from '../../actors/cluster-manager/cluster-manager.js';
import { ClusterState } from '../../actors/cluster-manager/state.js';
import { nodeManagerSpec } from '../../actors/node-manager/node-manager.js';
import type { ContainerRuntime, RuntimeHooks } from '../../actors/node-manager/runtime.js';
import type { CargoSpec, CargoView, JobEvent, JobView, ResourceSpec, RunRequest, UserInfo } from '../../actors/protocol.js';
import { startNats, type NatsFixture } from './nats.js';

/** Containers that run until ended: by the test, or by a kill (unless they ignore SIGTERM). */
export class TestRuntime implements ContainerRuntime {
  readonly runs = new Map<string, { req: RunRequest; hooks: RuntimeHooks }>();
  readonly started: RunRequest[] = [];
  /** Containers whose process ignores SIGTERM: only a forced kill ends them. */
  readonly stubborn = new Set<string>();

  async start(req: RunRequest, hooks: RuntimeHooks): Promise<void> {
    this.runs.set(req.container, { req, hooks });
    this.started.push(req);
  }
  async kill(container: string, force: boolean): Promise<void> {
    if (!force && this.stubborn.has(container)) return;
    this.exit(container, force ? 137 : 143, force ? 'SIGKILL' : 'SIGTERM');
  }
  exit(container: string, code = 0, signal?: string): void {
    const r = this.runs.get(container);
    if (!r) return;
    this.runs.delete(container);
    r.hooks.onExit(code, signal);
  }
  async canRun() {
    return { ok: true as const };
  }
  running(): string[] {
    return [...this.runs.keys()];
  }
  async reapOrphans(): Promise<number> {
    return 0;
  }
}

export interface EventReader {
  /** The next event of one of these types (others are skipped), or a timeout error. */
  next(...types: JobEvent['type'][]): Promise<JobEvent>;
  close(): void;
}

export interface ElasticCluster {
  nats: NatsFixture;
  system: ActorSystem;
  runtimes: Record<string, TestRuntime>;
  user(name: string, o?: Partial<UserInfo>): UserInfo;
  add(user: string, resources: ResourceSpec, o?: { name?: string; priority?: number }): Promise<string>;
  job(id: string): Promise<JobView>;
  cm<T = any>(verb: string, body: object, timeoutMs?: number): Promise<T>;
  createCargo(job: string, spec: CargoSpec): Promise<CargoView>;
  events(job: string): Promise<EventReader>;
  /** Resolves once probe() is true (polls every 20 ms). */
  until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs?: number): Promise<void>;
  teardown(): Promise<void>;
}

let clusters = 0;

export async function startElasticCluster(o: { nodes: Record<string, number>; shrinkDeadlineMs?: number; killGraceMs?: number }): Promise<ElasticCluster> {
  const nats = await startNats();
  const system = new ActorSystem(await nats.connect('elastic'), 'elastic');
  const cluster = `el${++clusters}`;
  const sub = subjects(cluster);
  const state = ClusterState.withRoot('');
  for (const u of ['alice', 'bob', 'carol']) state.saveUser({ id: u, username: u, isAdmin: false, hash: '' });
  await system.spawn(clusterManagerSpec({ cluster, state, shrinkDeadlineMs: o.shrinkDeadlineMs ?? 1_000, killGraceMs: o.killGraceMs ?? 500 }));
  const runtimes: Record<string, TestRuntime> = {};
  for (const [name, count] of Object.entries(o.nodes)) {
    const rt = (runtimes[name] = new TestRuntime());
    await system.spawn(nodeManagerSpec({ cluster, name, gpus: Array.from({ length: count }, (_, i) => i), hostJobs: false, docker: rt, heartbeatMs: 200 }));
  }
  const user = (name: string, u: Partial<UserInfo> = {}): UserInfo => ({ id: name, username: name, isAdmin: false, ...u });
  const cm = <T>(verb: string, body: object, timeout = 5_000) => system.ask<T>(sub.cm(verb), verb, body, { timeout });
  const until = async (what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 10_000) => {
    const end = Date.now() + timeoutMs;
    while (!(await probe())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await until('nodes registered', async () => (await cm<{ nodes: unknown[] }>('nodes', {})).nodes.length === Object.keys(o.nodes).length);
  const owner = new Map<string, string>();
  return {
    nats,
    system,
    runtimes,
    user,
    cm,
    until,
    async add(username, resources, x = {}) {
      const spec = { name: x.name, tags: [], resources, priority: x.priority ?? 0, am: { image: 'sim', cmd: 'am', shell: false, init: false, env: {}, mounts: [], ports: [], shmSize: 1 } };
      const r = await cm<{ id: string }>('job.add', { user: user(username), spec });
      owner.set(r.id, username);
      return r.id;
    },
    job: (id) => cm<JobView>('job.get', { user: user(owner.get(id)!), ref: id }),
    createCargo: (id, spec) => cm<CargoView>('cargo.create', { user: user(owner.get(id)!, { job: id }), ref: id, spec }, 10_000),
    async events(id) {
      const reader = openStreamReader(system.nc, sub.inbox);
      await system.ask(sub.cm('job.events'), 'job.events', { user: user(owner.get(id)!, { job: id }), ref: id }, { cause: { trace: 't', stream: reader.inbox } });
      const it = reader.items[Symbol.asyncIterator]();
      return {
        async next(...types) {
          const deadline = new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no ${types.join('|')} event`)), 10_000).unref());
          for (;;) {
            const r = await Promise.race([it.next(), deadline]);
            if (r.done) throw new Error(`the event stream ended before ${types.join('|')}`);
            const e = r.value as JobEvent;
            if (!types.length || types.includes(e.type)) return e;
          }
        },
        close: () => reader.close(),
      };
    },
    async teardown() {
      await system.stop();
      await nats.teardown();
    },
  };
}
