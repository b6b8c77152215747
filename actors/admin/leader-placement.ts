/**
 * Keeps the JetStream leaders a takeover needs (the meta group's and the state bucket's) off the
 * active cluster manager's host, in an HA cluster of three or more managers. Not the log
 * stream's: lines published while its leader moves would be lost, and a takeover does not wait
 * for it (the new log store does, before it answers reads).
 *
 * Why: when a Raft leader's host dies, its followers wait 4–9 s (nats-server's election timeout,
 * not configurable) before they elect another. The first manager host holds every leader and the
 * lease at first, so its death cost an election before the lease could move (a write to the state
 * bucket) and before the state could be read (a consumer, created by the meta leader): up to 10 s
 * and more. With the leaders elsewhere the takeover takes the lease's TTL alone. The death of a
 * leader's host still costs an election, as it always did, but no longer on top of the TTL.
 *
 * The crane-admind of each manager host runs the loop every 3 s; only the active manager's host
 * acts, only on groups whose followers have caught up (not while replicas are being added).
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
  /** The streams whose leadership to hand over (the state bucket's). */
  streams: string[];
  /** Whether the active cluster manager runs on this host now. */
  activeHere: () => Promise<boolean>;
  log: Logger;
  everyMs?: number;
}

/**
 * One round: hands over each leadership this server holds (a stream's, then the meta group's),
 * one after the other: the next only once the last has a new leader, so the cluster never has
 * two elections at once. Returns what it handed over.
 */
export async function moveLeadersOff(o: LeaderPlacementOptions): Promise<string[]> {
  if (!(await o.activeHere())) return [];
  const groups: { name: string; read: () => Promise<RaftGroup>; stepDown: () => Promise<unknown> }[] = [
    ...o.streams.map((stream) => ({
      name: stream,
      read: () => streamPeers(o.nc, stream),
      stepDown: () => api(o.nc, `$JS.API.STREAM.LEADER.STEPDOWN.${stream}`),
    })),
    {
      name: 'meta',
      read: async () => {
        const m = await metaGroup(await o.sys());
        return { leader: m.leader, followers: (m.replicas ?? []).map((r) => ({ name: r.name, current: !!r.current && !r.offline })) };
      },
      stepDown: async () => api(await o.sys(), '$JS.API.META.LEADER.STEPDOWN'),
    },
  ];
  const moved: string[] = [];
  for (const g of groups) {
    if (!shouldStepDown(await g.read(), o.server)) continue;
    await g.stepDown();
    moved.push(g.name);
    o.log.info({ group: g.name, server: o.server }, 'JetStream leadership handed over: the active manager host keeps none, so its death costs no election');
    const end = Date.now() + 10_000;
    for (;;) {
      const now = await g.read().catch(() => undefined);
      if (now?.leader && now.leader !== o.server) break;
      if (Date.now() > end) return moved; // an election that takes this long: try again next round
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return moved;
}

/** Runs moveLeadersOff every `everyMs` (default 3 s) until stopped. */
export function keepLeadersOff(o: LeaderPlacementOptions): { stop(): void } {
  let running = false;
  const t = setInterval(() => {
    if (running) return;
    running = true;
    moveLeadersOff(o)
      .catch((err) => o.log.debug({ err: String(err) }, 'leader placement: not this round'))
      .finally(() => (running = false));
  }, o.everyMs ?? 3_000);
  t.unref();
  return { stop: () => clearInterval(t) };
}
