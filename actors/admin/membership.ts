/**
 * A host's membership of a multi-host cluster (craneadm init / join), as pure functions: the
 * member file, the join token, and the nats-server configuration each role runs.
 *
 * Topology (nats-server 2.9 cannot run a clustered JetStream on one server, so the first host
 * cannot start as a one-server JetStream cluster): the manager host (`init`) runs the cluster
 * manager and JetStream and listens for leaf-node connections; every other host (`join`) runs
 * a nats-server without JetStream that connects to it as a leaf node, with the credentials the
 * join token carries. Core NATS traffic (requests, heartbeats, logs) crosses the leaf
 * connections; the state stays in the manager's JetStream.
 */
import { randomBytes } from 'node:crypto';
import { CRANE_VERSION } from '../protocol.js';

export interface Member {
  cluster: string;
  /** This host's node name. */
  node: string;
  role: 'manager' | 'worker';
  /** Bus user and password, shared by the cluster's hosts (never logged, file mode 0600). */
  user: string;
  secret: string;
  /** manager: the leaf-node port it listens on and the address it tells joiners. */
  leafPort: number;
  advertise?: string;
  /** worker: the manager's leaf-node address. */
  seed?: string;
  /**
   * An HA cluster (`init --ha`): manager hosts route to each other and run one JetStream
   * cluster, so the state survives a manager host; `routePort` is this manager's route port and
   * `seedRoute` the route address of the manager it joined (none on the first).
   */
  ha?: boolean;
  routePort?: number;
  seedRoute?: string;
  gpus: number[];
  /** The GPUs were detected (not declared with --gpus): their usage comes from nvidia-smi. */
  gpusDetected?: boolean;
  hostJobs: boolean;
  version: string;
  joinedAt: string;
}

export interface JoinToken {
  v: string;
  cluster: string;
  user: string;
  secret: string;
  /** HA clusters: the route address (IP:PORT) a joining manager connects to. */
  route?: string;
}

export const DEFAULT_LEAF_PORT = 7422;
export const DEFAULT_ROUTE_PORT = 6222;

export function newSecret(): string {
  return randomBytes(24).toString('base64url');
}

export function encodeToken(t: JoinToken): string {
  return `crane1.${Buffer.from(JSON.stringify(t)).toString('base64url')}`;
}

/** Decodes a join token; throws a one-line error for anything that is not one. */
export function decodeToken(token: string): JoinToken {
  const bad = new Error('invalid join token: copy the whole token that craneadm init printed');
  if (!token.startsWith('crane1.')) throw bad;
  let t: Partial<JoinToken>;
  try {
    t = JSON.parse(Buffer.from(token.slice(7), 'base64url').toString('utf8'));
  } catch {
    throw bad;
  }
  if (!t || typeof t.v !== 'string' || typeof t.cluster !== 'string' || typeof t.user !== 'string' || typeof t.secret !== 'string') throw bad;
  return t as JoinToken;
}

/** A joiner must run the cluster's Crane version: the wire types are not versioned yet. */
export function checkVersion(t: JoinToken, mine = CRANE_VERSION): void {
  if (t.v !== mine) throw new Error(`this host runs Crane ${mine} but the cluster runs ${t.v}: install Crane ${t.v} here first`);
}

/** `HOST:PORT` of the manager; throws a one-line error otherwise. */
export function parseSeed(value: string): { host: string; port: number } {
  const m = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw new Error(`invalid address '${value}': expected HOST:PORT (the one craneadm init printed)`);
  return { host: m[1]!, port };
}

const q = (s: string) => JSON.stringify(s);

/** The nats-server configuration of a member host (its client port, given on the command line, stays on loopback). */
export function natsConfig(m: Member, o: { jetstreamDir: string }): string {
  const lines = [
    `server_name: ${q(m.node)}`,
    `authorization { user: ${q(m.user)}, password: ${q(m.secret)} }`,
  ];
  if (m.role === 'manager') {
    lines.push(`jetstream { store_dir: ${q(o.jetstreamDir)} }`);
    lines.push(`leafnodes { listen: "0.0.0.0:${m.leafPort}", authorization { user: ${q(m.user)}, password: ${q(m.secret)} } }`);
    if (m.ha) {
      // The first manager routes to itself: a clustered JetStream needs a configured route.
      const route = `nats-route://${encodeURIComponent(m.user)}:${encodeURIComponent(m.secret)}@${m.seedRoute ?? `${m.advertise}:${m.routePort}`}`;
      lines.push(`cluster { name: ${q(`crane-${m.cluster}`)}, listen: "0.0.0.0:${m.routePort}", authorization { user: ${q(m.user)}, password: ${q(m.secret)} }, routes: [${q(route)}] }`);
    }
  } else {
    const url = `nats-leaf://${encodeURIComponent(m.user)}:${encodeURIComponent(m.secret)}@${m.seed}`;
    lines.push(`leafnodes { reconnect: 1, remotes: [ { urls: [${q(url)}] } ] }`);
  }
  return lines.join('\n') + '\n';
}

/** The line `craneadm init` prints for the other hosts. */
export function joinCommand(m: Member): string {
  const route = m.ha ? { route: `${m.advertise}:${m.routePort}` } : {};
  return `craneadm join ${encodeToken({ v: m.version, cluster: m.cluster, user: m.user, secret: m.secret, ...route })} ${m.advertise}:${m.leafPort}`;
}
