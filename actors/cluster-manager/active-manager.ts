import type { Logger } from 'pino';
import type { ActorSystem } from '../../bus/actor.js';
import { clusterManagerSpec } from './cluster-manager.js';
import { Lease } from './lease.js';
import { logStoreSpec } from './log-store.js';
import { ClusterState } from './state.js';
import { StateStore } from './store.js';

export interface ManagerCandidateOptions {
  cluster: string;
  /** scrypt hash of root's password. */
  rootHash: string;
  /** This candidate's name in the lease (unique in the cluster: host and process). */
  holder: string;
  /** Replicas of the state bucket and the log stream (≤ the JetStream servers there are). */
  replicas?: number;
  nodeTimeoutMs?: number;
  killGraceMs?: number;
  leaseTtlMs?: number;
  log: Logger;
  /** The lease was lost: this manager must stop at once (another one is taking over). */
  onLost: () => void;
}

/**
 * A cluster-manager candidate: waits for the lease, then loads the state from JetStream and
 * spawns the cluster manager and the log store. Any number of candidates may run; one is active.
 */
export async function runManagerCandidate(system: ActorSystem, o: ManagerCandidateOptions): Promise<Lease> {
  const store = await StateStore.open(system.nc, o.cluster, o.replicas);
  const lease = new Lease(store.kv, o.holder, o.log, { ttlMs: o.leaseTtlMs });
  await lease.acquire(o.onLost);
  const t0 = Date.now();
  const state = ClusterState.withRoot(o.rootHash, store, await store.load());
  const isActive = () => lease.held;
  await system.spawn(clusterManagerSpec({ cluster: o.cluster, state, name: o.holder, isActive, nodeTimeoutMs: o.nodeTimeoutMs, killGraceMs: o.killGraceMs }));
  await system.spawn(logStoreSpec({ cluster: o.cluster, persist: { nc: system.nc, replicas: o.replicas }, isActive }));
  o.log.info({ holder: o.holder, jobs: state.jobs.size, loadMs: Date.now() - t0 }, 'active cluster manager');
  return lease;
}
