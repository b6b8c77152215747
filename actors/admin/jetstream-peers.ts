/**
 * Taking a manager host's nats-server out of an HA cluster's JetStream without losing data
 * (`craneadm demote`), on nats-server 2.9:
 *   1. each stream moves off the server: its leader first (a shrink keeps the leader), then its
 *      replica count drops to what the other managers hold, then a follower left on the server is
 *      replaced. A stream whose only copy is on the server first gets a second one.
 *   2. the server leaves the JetStream meta group (the system account's SERVER.REMOVE), after
 *      handing over the meta leadership, so the remaining managers keep a quorum. Removing the
 *      meta leader itself leaves the others without one.
 * Peers are nats-server names (Member.serverName).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

export interface StreamPeers {
  replicas: number;
  leader?: string;
  /** Followers, with whether each has caught up. */
  followers: { name: string; current: boolean }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const STEPDOWNS = 10;

/** A JetStream (or system) API request; an error answer becomes an Error with its description. */
export async function api<T = Record<string, unknown>>(nc: NatsConnection, subject: string, body?: object, timeout = 5_000): Promise<T> {
  const m = await nc.request(subject, body === undefined ? '' : JSON.stringify(body), { timeout });
  const r = m.json<T & { error?: { description?: string } }>();
  if (r.error) throw new Error(`${subject}: ${r.error.description ?? JSON.stringify(r.error)}`);
  return r;
}

export async function streamPeers(nc: NatsConnection, stream: string): Promise<StreamPeers> {
  const info = await (await jetstreamManager(nc, { timeout: 5_000 })).streams.info(stream);
  return {
    replicas: info.config.num_replicas,
    leader: info.cluster?.leader,
    followers: (info.cluster?.replicas ?? []).map((r) => ({ name: r.name, current: !!r.current && !r.offline })),
  };
}

/** Polls `check` (errors count as "not yet") until it returns true; throws `what` past the deadline. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`JetStream: ${what} did not happen within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(200);
  }
}

const settled = (p: StreamPeers, n: number) => !!p.leader && p.followers.length === n - 1 && p.followers.every((f) => f.current);

async function setReplicas(nc: NatsConnection, stream: string, n: number): Promise<void> {
  const jsm = await jetstreamManager(nc, { timeout: 5_000 });
  const info = await jsm.streams.info(stream);
  await jsm.streams.update(stream, { ...info.config, num_replicas: n });
}

/** Moves `stream` off `server` and to `want` replicas (at least 1), keeping every message. */
export async function moveStreamOff(nc: NatsConnection, stream: string, server: string, want: number, timeoutMs = 30_000): Promise<void> {
  const n = Math.max(1, want);
  let p = await streamPeers(nc, stream);
  const holds = (x: StreamPeers) => x.leader === server || x.followers.some((f) => f.name === server);
  if (!holds(p) && p.replicas <= n) return;
  if (p.replicas === 1 && p.leader === server) {
    await setReplicas(nc, stream, 2);
    await until(`a second copy of ${stream}`, async () => settled((p = await streamPeers(nc, stream)), 2), timeoutMs);
  }
  // The leader hands over to a follower that has caught up and answered it lately (nats-server
  // 2.9 takes no preferred one); when none qualifies, an election may pick it again: try again.
  for (let attempt = 1; p.leader === server; attempt++) {
    if (attempt > STEPDOWNS) throw new Error(`${stream}'s leader stayed on ${server} through ${STEPDOWNS} stepdowns`);
    await until(`${stream}'s followers catching up`, async () => settled((p = await streamPeers(nc, stream)), p.replicas), timeoutMs);
    if (attempt > 1) await sleep(500 * Math.min(attempt, 4));
    await api(nc, `$JS.API.STREAM.LEADER.STEPDOWN.${stream}`);
    await until(`a new leader for ${stream}`, async () => {
      p = await streamPeers(nc, stream);
      return !!p.leader && settled(p, p.replicas);
    }, timeoutMs);
  }
  if (p.replicas > n) {
    await setReplicas(nc, stream, n);
    await until(`${stream} down to ${n} replicas`, async () => settled((p = await streamPeers(nc, stream)), n), timeoutMs);
  }
  if (holds(p)) {
    await api(nc, `$JS.API.STREAM.PEER.REMOVE.${stream}`, { peer: server });
    await until(`${stream} off ${server}`, async () => {
      p = await streamPeers(nc, stream);
      return !holds(p) && settled(p, p.replicas);
    }, timeoutMs);
  }
}

interface MetaCluster {
  leader?: string;
  replicas?: { name: string; current?: boolean; offline?: boolean }[];
  cluster_size?: number;
}

/** The JetStream meta group as the system account sees it. */
export async function metaGroup(sys: NatsConnection): Promise<MetaCluster> {
  // Only the meta leader answers: while there is none, nobody does (a short timeout, then ask again).
  const r = await api<{ data?: { meta_cluster?: MetaCluster } }>(sys, '$SYS.REQ.SERVER.PING.JSZ', { leader_only: true }, 1_000);
  return r.data?.meta_cluster ?? {};
}

const members = (m: MetaCluster) => [m.leader, ...(m.replicas ?? []).map((r) => r.name)].filter(Boolean);

/** Takes `server` out of the JetStream meta group (`sys`: a system-account connection). */
export async function removeServer(sys: NatsConnection, server: string, timeoutMs = 30_000): Promise<void> {
  let m = await metaGroup(sys);
  if (!members(m).includes(server)) return;
  if (m.leader === server) {
    await api(sys, '$JS.API.META.LEADER.STEPDOWN');
    await until('a new JetStream meta leader', async () => {
      m = await metaGroup(sys);
      return !!m.leader && m.leader !== server;
    }, timeoutMs);
  }
  await api(sys, '$JS.API.SERVER.REMOVE', { peer: server });
  await until(`${server} leaving the JetStream meta group`, async () => !members((m = await metaGroup(sys))).includes(server) && !!m.leader, timeoutMs);
}
