import type { Logger } from 'pino';
import { jetstreamManager } from '@nats-io/jetstream';
import type { ActorSystem } from '../../bus/actor.js';
import { subjects } from '../../bus/subjects.js';
import type { NodeInfo } from '../protocol.js';
import { clusterManagerSpec } from './cluster-manager.js';
import { Lease } from './lease.js';
import { ensureLogStream, logStoreSpec, logStreamName } from './log-store.js';
import { ClusterState } from './state.js';
import { StateStore } from './store.js';

export interface ManagerCandidateOptions {
  cluster: string;
  /** scrypt hash of root's password. */
  rootHash: string;
  /** This candidate's name in the lease (unique in the cluster: host and process). */
  holder: string;
  nodeTimeoutMs?: number;
  killGraceMs?: number;
  shrinkDeadlineMs?: number;
  leaseTtlMs?: number;
  /** An HA cluster: manager hosts share a clustered JetStream, replicas follow their number. */
  ha?: boolean;
  /** The HA cluster's first manager: it may start before JetStream does, and create the lease. */
  first?: boolean;
  log: Logger;
  /** The lease was lost: this manager must stop at once (another one is taking over). */
  onLost: () => void;
}

/**
 * A cluster-manager candidate: waits for the lease, then loads the state from JetStream and
 * spawns the cluster manager and the log store. Any number of candidates may run; one is active.
 * In an HA cluster only the first manager may create the lease; the others take it over.
 */
export async function runManagerCandidate(system: ActorSystem, o: ManagerCandidateOptions): Promise<{ stop(): Promise<void> }> {
  if (o.ha && o.first) {
    const quick = await Promise.race([StateStore.open(system.nc, o.cluster).catch(() => undefined), new Promise<undefined>((r) => setTimeout(r, 3_000))]);
    if (!quick) return runBeforeJetStream(system, o);
  }
  const store = await StateStore.openWhenReady(system.nc, o.cluster, o.log);
  const lease = new Lease(store.kv, o.holder, o.log, { ttlMs: o.leaseTtlMs });
  await lease.acquire(o.onLost, !o.ha || !!o.first);
  const t0 = Date.now();
  const state = ClusterState.withRoot(o.rootHash, store, await store.loadWhenReady(system.nc, o.log));
  const isActive = () => lease.held;
  await system.spawn(clusterManagerSpec({ cluster: o.cluster, state, name: o.holder, isActive, nodeTimeoutMs: o.nodeTimeoutMs, killGraceMs: o.killGraceMs, shrinkDeadlineMs: o.shrinkDeadlineMs }));
  await system.spawn(logStoreSpec({ cluster: o.cluster, persist: { nc: system.nc }, isActive }));
  const keeper = o.ha ? keepReplicas(system, o) : undefined;
  o.log.info({ holder: o.holder, jobs: state.jobs.size, loadMs: Date.now() - t0 }, 'active cluster manager');
  return { stop: async () => (clearInterval(keeper), lease.stop(true)) };
}

/**
 * The first manager of an HA cluster, while its JetStream has no second server: the state lives
 * in memory; once JetStream answers, what the bucket holds is taken in, the lease created, and
 * everything written. Until then no other manager can be active (none may create the lease).
 */
async function runBeforeJetStream(system: ActorSystem, o: ManagerCandidateOptions): Promise<{ stop(): Promise<void> }> {
  o.log.warn('JetStream is not up yet (an HA cluster needs a second manager host): the state is in memory until it is');
  const state = ClusterState.withRoot(o.rootHash);
  let lease: Lease | undefined;
  let keeper: NodeJS.Timeout | undefined;
  const isActive = () => !lease || lease.held;
  let jetStreamUp!: () => void;
  const untilJetStream = new Promise<void>((r) => (jetStreamUp = r));
  await system.spawn(clusterManagerSpec({ cluster: o.cluster, state, name: o.holder, isActive, nodeTimeoutMs: o.nodeTimeoutMs, killGraceMs: o.killGraceMs, shrinkDeadlineMs: o.shrinkDeadlineMs }));
  await system.spawn(logStoreSpec({ cluster: o.cluster, persist: { nc: system.nc, untilJetStream }, isActive }));
  void (async () => {
    const store = await StateStore.openWhenReady(system.nc, o.cluster, o.log);
    const l = new Lease(store.kv, o.holder, o.log, { ttlMs: o.leaseTtlMs });
    const entries = await store.load();
    await l.acquire(o.onLost, true);
    // From here on synchronous: no message is handled until the state is in the store.
    state.absorb(entries);
    state.store = store;
    state.saveAll();
    lease = l;
    jetStreamUp();
    keeper = keepReplicas(system, o);
    o.log.info({ holder: o.holder, jobs: state.jobs.size }, 'JetStream is up: the state is kept there from now on');
  })().catch((err) => o.log.error({ err: String(err) }, 'could not move the state into JetStream'));
  return { stop: async () => (clearInterval(keeper), lease?.stop(true)) };
}

/**
 * Raises the state bucket's and the log stream's replicas to min(3, manager hosts READY). Never
 * lowers them: a manager host that is down still holds a replica, and dropping to fewer replicas
 * while it is down could leave a stream without a quorum (`craneadm demote` lowers them itself,
 * after the demoted host's node has left). Looks every time: a demotion may have lowered them.
 */
function keepReplicas(system: ActorSystem, o: ManagerCandidateOptions): NodeJS.Timeout {
  const sub = subjects(o.cluster);
  const check = async () => {
    const { nodes } = await system.ask<{ nodes: NodeInfo[] }>(sub.cm('nodes'), 'nodes', {}, { timeout: 5_000 });
    const want = Math.min(3, Math.max(1, nodes.filter((n) => n.manager && n.state === 'READY').length));
    const jsm = await jetstreamManager(system.nc);
    const name = `KV_${StateStore.bucketName(o.cluster)}`;
    const info = await jsm.streams.info(name);
    const logs = await jsm.streams.info(logStreamName(o.cluster)).catch(() => undefined);
    if (info.config.num_replicas >= want && (!logs || logs.config.num_replicas >= want)) return;
    if (info.config.num_replicas < want) await jsm.streams.update(name, { ...info.config, num_replicas: want });
    await ensureLogStream(system.nc, o.cluster, undefined, want);
    o.log.info({ replicas: want }, 'state and logs replicated on the manager hosts');
  };
  const run = () => void check().catch((err) => o.log.warn({ err: String(err) }, 'replica check failed'));
  run();
  const t = setInterval(run, 2_000);
  t.unref();
  return t;
}
