import type { JobView, RegisterNode, UserInfo } from '../protocol.js';

export interface UserRecord extends UserInfo {
  /** scrypt hash (actors/gateway/password.ts); never leaves the cluster manager except to a gateway. */
  hash: string;
}

export interface NodeRecord {
  reg: RegisterNode;
  free: Set<number>;
  /** GPU index -> job id */
  owners: Map<number, string>;
  lastHeartbeat: number;
  state: 'READY' | 'LOST';
}

export interface JobRecord {
  view: JobView;
  seq: number;
  /** Kill requested: the exit that follows ends the job as killed. */
  killing?: boolean;
  /** Remove once terminal (rm --force of a running job). */
  removeWhenDone?: boolean;
  /** Times it went back to the queue after losing its node. */
  requeues?: number;
}

/**
 * The cluster manager's state. It lives outside the actor instance so that a supervisor restart
 * after a crash keeps it (the instance is rebuilt over the same state).
 */
export class ClusterState {
  readonly users = new Map<string, UserRecord>();
  readonly tokens = new Map<string, { username: string; expiresAt: number }>();
  readonly nodes = new Map<string, NodeRecord>();
  readonly jobs = new Map<string, JobRecord>();
  /** `${user}/${name}` -> job id: names are unique per user. */
  readonly names = new Map<string, string>();
  /** QUEUED job ids in arrival order. */
  queue: string[] = [];
  seq = 0;

  /** A fresh state with the administrator `root` (password hash from CRANE_HOME's root-password). */
  static withRoot(rootHash: string): ClusterState {
    const s = new ClusterState();
    s.users.set('root', { id: '00000000-0000-0000-0000-000000000000', username: 'root', isAdmin: true, hash: rootHash });
    return s;
  }

  userJobs(user: UserInfo): Iterable<JobView> {
    const all = [...this.jobs.values()].map((r) => r.view);
    return user.isAdmin ? all : all.filter((j) => j.user === user.username);
  }
}
