/**
 * A host's membership of a multi-host cluster (craneadm init / join), as pure functions: the
 * member file, the join token, and the nats-server configuration each role runs.
 *
 * Topology (nats-server 2.9 cannot run a clustered JetStream on one server, so the first host
 * cannot start as a one-server JetStream cluster): the manager host (`init`) runs the cluster
 * manager and JetStream and listens for leaf-node connections; every other host (`join`) runs
 * a nats-server without JetStream that connects to it as a leaf node, with the credentials the
 * join token carries. Core NATS traffic (requests, heartbeats, logs) crosses the leaf
 * connections; the state stays in the manager's JetStream. In an HA cluster the manager hosts
 * route to each other and share one clustered JetStream; `promote` / `demote` move a host
 * between the two roles.
 *
 * Every host's bus users live in the account CRANE; managers also have a user in the system
 * account SYS (same secret), which removing a demoted manager's JetStream peer needs.
 */
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
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
  /** worker: the manager's leaf-node address; `seeds` more of them (a demoted manager knows every manager's). */
  seed?: string;
  seeds?: string[];
  /**
   * An HA cluster (`init --ha`): manager hosts route to each other and run one JetStream
   * cluster, so the state survives a manager host; `routePort` is this manager's route port and
   * `seedRoute` the route address of the manager it joined (none on the first).
   */
  ha?: boolean;
  routePort?: number;
  seedRoute?: string;
  /** More route addresses of manager hosts (a promoted host knows every manager's). */
  routes?: string[];
  /**
   * This host's nats-server name (default: the node name). Each promotion picks a new one: a
   * JetStream peer removed on demotion cannot come back under the same name (nats-server 2.9).
   */
  serverName?: string;
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

/** The account every host's bus users are in, and the system account's user (managers). */
export const BUS_ACCOUNT = 'CRANE';
export const sysUser = (m: Pick<Member, 'user'>) => `${m.user}-sys`;
export const serverName = (m: Pick<Member, 'node' | 'serverName'>) => m.serverName ?? m.node;

/** A host's address as the others need it: leaf-node and route ports (managers of an HA cluster). */
export interface HostAddress {
  node: string;
  role: Member['role'];
  advertise?: string;
  leafPort?: number;
  routePort?: number;
}

export function hostAddress(m: Member): HostAddress {
  return { node: m.node, role: m.role, advertise: m.advertise, leafPort: m.leafPort || undefined, routePort: m.routePort };
}

const unique = (xs: (string | undefined)[]) => [...new Set(xs.filter((x): x is string => !!x))];

/**
 * The nats-server configuration of a member host (its client port, given on the command line,
 * stays on loopback). `syncAlways`: the server supports `sync_interval: always` (nats-server
 * 2.10 and later): every JetStream write is fsynced before it is acknowledged.
 */
export function natsConfig(m: Member, o: { jetstreamDir: string; syncAlways?: boolean }): string {
  const cred = `user: ${q(m.user)}, password: ${q(m.secret)}`;
  const manager = m.role === 'manager';
  const lines = [
    `server_name: ${q(serverName(m))}`,
    'accounts {',
    `  ${BUS_ACCOUNT}: { ${manager ? 'jetstream: enabled, ' : ''}users: [ { ${cred} } ] }`,
    `  SYS: { users: [ { user: ${q(sysUser(m))}, password: ${q(m.secret)} } ] }`,
    '}',
    'system_account: SYS',
  ];
  if (manager) {
    lines.push(`jetstream { store_dir: ${q(o.jetstreamDir)}${o.syncAlways ? ', sync_interval: always' : ''} }`);
    // Workers learn every manager's advertised leaf address, so they fail over when one goes.
    const advertise = m.advertise ? `, advertise: "${m.advertise}:${m.leafPort}"` : '';
    lines.push(`leafnodes { listen: "0.0.0.0:${m.leafPort}"${advertise}, authorization { ${cred}, account: ${q(BUS_ACCOUNT)} } }`);
    if (m.ha) {
      // The first manager routes to itself: a clustered JetStream needs a configured route.
      const routes = unique([m.seedRoute ?? `${m.advertise}:${m.routePort}`, ...(m.routes ?? [])]).map(
        (r) => q(`nats-route://${encodeURIComponent(m.user)}:${encodeURIComponent(m.secret)}@${r}`),
      );
      lines.push(`cluster { name: ${q(`crane-${m.cluster}`)}, listen: "0.0.0.0:${m.routePort}", authorization { ${cred} }, routes: [${routes.join(', ')}] }`);
    }
  } else {
    const urls = unique([m.seed, ...(m.seeds ?? [])]).map((s) => q(`nats-leaf://${encodeURIComponent(m.user)}:${encodeURIComponent(m.secret)}@${s}`));
    lines.push(`leafnodes { reconnect: 1, remotes: [ { urls: [${urls.join(', ')}], account: ${q(BUS_ACCOUNT)} } ] }`);
  }
  return lines.join('\n') + '\n';
}

/**
 * The member file of a worker promoted to manager host: it routes to every manager (and to the
 * route its join token carried), runs JetStream under a new server name, and keeps the leaf
 * and route ports it was given at join (or the defaults).
 */
export function promoted(m: Member, managers: HostAddress[], o: { advertise: string; suffix: string }): Member {
  const routes = unique([...managers.filter((a) => a.advertise && a.routePort).map((a) => `${a.advertise}:${a.routePort}`), m.seedRoute]);
  if (routes.length === 0) throw new Error('no manager host told its route address: is crane-admind running on the manager hosts?');
  const { seed: _seed, seeds: _seeds, ...rest } = m;
  return {
    ...rest,
    role: 'manager',
    ha: true,
    advertise: m.advertise ?? o.advertise,
    leafPort: m.leafPort || DEFAULT_LEAF_PORT,
    routePort: m.routePort ?? DEFAULT_ROUTE_PORT,
    seedRoute: routes[0],
    routes,
    serverName: `${m.node}-${o.suffix}`,
  };
}

/**
 * The member file of a manager host demoted to worker: a leaf node of every other manager (the
 * hub tells it about managers that come later). It keeps its addresses for a later promotion.
 */
export function demoted(m: Member, managers: HostAddress[]): Member {
  const seeds = unique(managers.filter((a) => a.node !== m.node && a.advertise && a.leafPort).map((a) => `${a.advertise}:${a.leafPort}`));
  if (seeds.length === 0) throw new Error('no other manager host told its address: is crane-admind running on the manager hosts?');
  const { routes: _routes, serverName: _name, ...rest } = m;
  return { ...rest, role: 'worker', seed: seeds[0], seeds };
}

/** A host became a manager, or stopped being one: what every other host notes for its next start. */
export interface ManagerChange {
  promoted?: HostAddress;
  demoted?: HostAddress;
}

const routeOf = (a: HostAddress) => (a.advertise && a.routePort ? `${a.advertise}:${a.routePort}` : undefined);
const leafOf = (a: HostAddress) => (a.advertise && a.leafPort ? `${a.advertise}:${a.leafPort}` : undefined);

/**
 * The member file after another host's promotion or demotion: a manager routes to the managers
 * there are (a running server learns them from its routes, but a restarted one only knows its
 * file), a worker connects to their leaf ports. The route and leaf seed it joined with stay.
 */
export function withManagerChange(m: Member, c: ManagerChange): Member {
  if (m.role === 'manager') {
    const add = c.promoted && routeOf(c.promoted);
    const drop = c.demoted && routeOf(c.demoted);
    return { ...m, routes: unique([...(m.routes ?? []), add]).filter((r) => r !== drop) };
  }
  const add = c.promoted && leafOf(c.promoted);
  const drop = c.demoted && leafOf(c.demoted);
  const seeds = unique([m.seed, ...(m.seeds ?? []), add]).filter((s) => s !== drop);
  return seeds.length ? { ...m, seed: seeds[0], seeds } : m;
}

/** The first IPv4 address that is not loopback (what other hosts use to reach this one). */
export function defaultAdvertise(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** The line `craneadm init` prints for the other hosts. */
export function joinCommand(m: Member): string {
  const route = m.ha ? { route: `${m.advertise}:${m.routePort}` } : {};
  return `craneadm join ${encodeToken({ v: m.version, cluster: m.cluster, user: m.user, secret: m.secret, ...route })} ${m.advertise}:${m.leafPort}`;
}
