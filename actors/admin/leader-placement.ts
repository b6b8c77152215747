/**
 * Keeps the JetStream leaders a takeover needs (the meta group's, the state bucket's, the log
 * stream's) off the active cluster manager's host, in an HA cluster of three or more managers.
 *
 * Why: when a Raft leader's host dies, its followers wait 4–9 s (nats-server's election timeout,
 * not configurable) before they elect another. The first manager host holds every leader and the
 * lease at first, so its death cost an election before the lease could move (a write to the state
 * bucket) and before the state could be read (a consumer, created by the meta leader): up to 10 s
 * and more. With the leaders elsewhere the takeover takes the lease's TTL alone. The death of a
 * leader's host still costs an election, as it always did, but no longer on top of the TTL.
 *
 * The crane-admind of each manager host runs the loop; only the active manager's host acts.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { api, metaGroup, streamPeers } from './jetstream-peers.js';

/** A Raft group as its leader sees it: its followers and whether each has caught up. */
export interface RaftGroup {
  leader?: string;
  followers: { name: string; current: boolean }[];
}

/**
 * `self` should hand a group's leadership over: it leads it, and at least two followers have
 * caught up (one takes over, and with a third the group keeps its quorum when self's host dies).
 */
export function shouldStepDown(g: RaftGroup, self: string): boolean {
  return g.leader === self && g.followers.length >= 2 && g.followers.every((f) => f.current);
}

export interface LeaderPlacementOptions {
  /** This host's bus connection and a system-account one (the meta group answers only that). */
  nc: NatsConnection;
  sys: () => Promise<NatsConnection>;
  /** This host's nats-server name. */
  server: string;
  /** The state bucket's stream and the log stream. */
  streams: string[];
  /** Whether the active cluster manager runs on this host now. */
  activeHere: () => Promise<boolean>;
  log: Logger;
  everyMs?: number;
  /** Not twice within this long for one group: a new election may pick this server again. */
  pauseMs?: number;
}

/** One round: the leaderships this host handed over (stream names, and 'meta'). */
export async function moveLeadersOff(o: LeaderPlacementOptions, last: Map<string, number> = new Map()): Promise<string[]> {
  if (!(await o.activeHere())) return [];
  const moved: string[] = [];
  const due = (g: string) => Date.now() - (last.get(g) ?? 0) >= (o.pauseMs ?? 15_000);
  for (const stream of o.streams) {
    if (due(stream) && shouldStepDown(await streamPeers(o.nc, stream), o.server)) {
      await api(o.nc, `$JS.API.STREAM.LEADER.STEPDOWN.${stream}`);
      last.set(stream, Date.now());
      moved.push(stream);
    }
  }
  if (due('meta')) {
    const sys = await o.sys();
    const m = await metaGroup(sys);
    const followers = (m.replicas ?? []).map((r) => ({ name: r.name, current: !!r.current && !r.offline }));
    if (shouldStepDown({ leader: m.leader, followers }, o.server)) {
      await api(sys, '$JS.API.META.LEADER.STEPDOWN');
      last.set('meta', Date.now());
      moved.push('meta');
    }
  }
  if (moved.length) o.log.info({ moved, server: o.server }, 'JetStream leaders handed over: the active manager host holds none, so its death costs no election');
  return moved;
}

/** Runs moveLeadersOff every `everyMs` (default 3 s) until stopped. */
export function keepLeadersOff(o: LeaderPlacementOptions): { stop(): void } {
  const last = new Map<string, number>();
  let running = false;
  const t = setInterval(() => {
    if (running) return;
    running = true;
    moveLeadersOff(o, last)
      .catch((err) => o.log.debug({ err: String(err) }, 'leader placement: not this round'))
      .finally(() => (running = false));
  }, o.everyMs ?? 3_000);
  t.unref();
  return { stop: () => clearInterval(t) };
}
