/**
 * `craneadm promote|demote NODE` as policy: whether the change may happen, in the order an
 * administrator would want to hear why not. Pure: the cluster manager's node list and the jobs
 * running on the node in, a refusal (or nothing) out. The requesting host checks it, and the
 * target host again, on fresh facts, before it changes anything.
 */
import type { NodeInfo } from '../protocol.js';

export type RoleVerb = 'promote' | 'demote';

export interface RoleFacts {
  verb: RoleVerb;
  node: string;
  nodes: NodeInfo[];
  /** The cluster was started with `craneadm init --ha`; undefined: not a multi-host cluster. */
  ha: boolean | undefined;
  force: boolean;
  /** Names of the jobs running on the node. */
  running: string[];
  /**
   * Replicas of the state bucket and the log stream (the fewer of the two; 0: not in JetStream
   * yet), as the demoted manager host sees them; undefined where it is not known.
   */
  replicas?: number;
}

export interface Refusal {
  code: 'not-found' | 'invalid' | 'conflict';
  message: string;
}

export function roleChangeRefusal(f: RoleFacts): Refusal | undefined {
  const n = f.nodes.find((x) => x.name === f.node);
  if (!n) return { code: 'not-found', message: `no node '${f.node}' in this cluster (craneadm status lists them)` };
  if (!f.ha) return { code: 'invalid', message: `${f.verb} needs a cluster started with craneadm init --ha` };
  if (f.verb === 'promote' && n.manager) return { code: 'invalid', message: `${f.node} is a manager host already` };
  if (f.verb === 'demote' && !n.manager) return { code: 'invalid', message: `${f.node} is a worker host already (craneadm status shows each node's role)` };
  if (n.state !== 'READY') return { code: 'conflict', message: `${f.node} is ${n.state}: its crane-admind must be running to ${f.verb} it` };
  if (f.verb === 'demote' && !f.nodes.some((x) => x.manager && x.state === 'READY' && x.name !== f.node)) {
    return { code: 'conflict', message: `cannot demote ${f.node}: it is the cluster's last manager host (promote another host first)` };
  }
  if (f.verb === 'demote' && f.replicas !== undefined && f.replicas < 2) {
    return { code: 'conflict', message: `cannot demote ${f.node} yet: the state is not replicated on another manager host (craneadm status shows its replicas; try again in a moment)` };
  }
  if (f.running.length && !f.force) {
    return {
      code: 'conflict',
      message: `${f.running.length} job(s) run on ${f.node} (${f.running.join(', ')}): craneadm ${f.verb} ${f.node} --force requeues them`,
    };
  }
  return undefined;
}

/** How many replicas the state keeps once `node` is no longer a manager host: one per other manager, up to 3. */
export function replicasWithout(nodes: NodeInfo[], node: string): number {
  return Math.min(3, Math.max(1, nodes.filter((n) => n.manager && n.state === 'READY' && n.name !== node).length));
}
