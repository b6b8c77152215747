/**
 * Node liveness across a cluster-manager takeover, on a real nats-server: a node that heartbeats
 * is never taken for lost (which would requeue its jobs) because the manager that took over was
 * busy, or answered its registration slowly.
 */
import test from 'ava';
import { ActorSystem, DEFERRED, type Actor, type ActorSpec } from '../../bus/actor.js';
import { subjects } from '../../bus/subjects.js';
import { clusterManagerSpec } from '../../actors/cluster-manager/cluster-manager.js';
import { ClusterState } from '../../actors/cluster-manager/state.js';
import { nodeManagerSpec } from '../../actors/node-manager/node-manager.js';
import type { JobView, NodeInfo } from '../../actors/protocol.js';
import { TestRuntime } from '../helpers/elastic-cluster.js';
import { startNats } from '../helpers/nats.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alice = { id: 'alice', username: 'alice', isAdmin: false };
const am = { image: 'sim', cmd: 'am', shell: false, init: false, env: {}, mounts: [], ports: [], shmSize: 1 };

async function until(what: string, probe: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The cluster manager, with one extra verb, `stall`, that keeps its mailbox busy for a while (as a state store that cannot take writes does). */
function stallable(spec: ActorSpec, stallMs: number): ActorSpec {
  return {
    ...spec,
    factory: () => {
      const real = spec.factory();
      const actor: Actor = {
        preStart: (ctx) => real.preStart?.(ctx),
        postStop: (ctx) => real.postStop?.(ctx),
        receive: async (msg, ctx) => (msg.type === 'stall' ? (await sleep(stallMs), { ok: true }) : real.receive(msg, ctx)),
      };
      return actor;
    },
  };
}

test('a manager that takes over and is busy at once keeps the nodes that heartbeat, and their jobs', async (t) => {
  const nats = await startNats();
  const cluster = 'live1';
  const sub = subjects(cluster);
  const nodes = new ActorSystem(await nats.connect('nodes'), 'nodes');
  const first = new ActorSystem(await nats.connect('cm-1'), 'cm-1');
  let second: ActorSystem | undefined;
  try {
    const state = ClusterState.withRoot('');
    state.saveUser({ ...alice, hash: '' });
    await first.spawn(clusterManagerSpec({ cluster, state, nodeTimeoutMs: 1_000 }));
    await nodes.spawn(nodeManagerSpec({ cluster, name: 'n1', gpus: [0, 1], hostJobs: false, docker: new TestRuntime(), heartbeatMs: 100 }));
    const ask = <T>(sys: ActorSystem, verb: string, body: object) => sys.ask<T>(sub.cm(verb), verb, body, { timeout: 5_000 });
    await until('n1 registered', async () => (await ask<{ nodes: NodeInfo[] }>(first, 'nodes', {})).nodes.length === 1);
    const { id } = await ask<{ id: string }>(first, 'job.add', { user: alice, spec: { tags: [], resources: { app: 1, min: 1, max: 1 }, priority: 0, am } });
    await until('the job runs', async () => (await ask<JobView>(first, 'job.get', { user: alice, ref: id })).state === 'RUNNING');

    // The first manager goes; another loads the same state (its nodes not confirmed yet) and is
    // kept busy for twice the node timeout before it reads a heartbeat.
    await first.stop();
    const entries = new Map<string, unknown>([['user.alice', state.users.get('alice')], ['node.n1', state.nodes.get('n1')!.reg], [`job.${id}`, state.jobs.get(id)]]);
    second = new ActorSystem(await nats.connect('cm-2'), 'cm-2');
    await second.spawn(stallable(clusterManagerSpec({ cluster, state: ClusterState.withRoot('', undefined, entries), nodeTimeoutMs: 1_000 }), 2_000));
    second.tell(sub.cm('stall'), 'stall', {});
    await sleep(2_500);
    const view = async () => {
      const node = (await ask<{ nodes: NodeInfo[] }>(second!, 'nodes', {})).nodes.find((n) => n.name === 'n1')!;
      const job = await ask<JobView>(second!, 'job.get', { user: alice, ref: id });
      return { node: node.state, job: job.state, history: job.history.map((h) => h.state) };
    };
    for (let i = 0; i < 5; i++, await sleep(300)) {
      t.deepEqual(await view(), { node: 'READY', job: 'RUNNING', history: ['QUEUED', 'RUNNING'] });
    }
  } finally {
    await second?.stop();
    await first.stop().catch(() => {});
    await nodes.stop();
    await nats.teardown();
  }
});

test('a node asked to register again goes on heartbeating while the manager is slow to answer', async (t) => {
  const nats = await startNats();
  const cluster = 'live2';
  const sub = subjects(cluster);
  const system = new ActorSystem(await nats.connect('live2'), 'live2');
  try {
    // A manager that answers the first registration, then none.
    let registrations = 0;
    await system.spawn({
      name: 'scripted-cm',
      subjects: [sub.cm('node.register')],
      factory: () => ({ receive: () => (++registrations === 1 ? { ok: true } : DEFERRED) }),
    });
    const beats: number[] = [];
    system.nc.subscribe(sub.hb('n1'), { callback: () => void beats.push(Date.now()) });
    await system.spawn(nodeManagerSpec({ cluster, name: 'n1', gpus: [0], hostJobs: false, docker: new TestRuntime(), heartbeatMs: 100 }));
    await until('registered and heartbeating', async () => beats.length > 0);

    system.tell(sub.node('n1', 'register'), 'register', {});
    await until('it registers again', async () => registrations >= 2);
    const since = Date.now();
    await sleep(3_000);
    t.true(registrations >= 2);
    t.true(beats.filter((b) => b > since).length >= 20, `heartbeats while unanswered: ${beats.filter((b) => b > since).length}`);
  } finally {
    await system.stop();
    await nats.teardown();
  }
});
