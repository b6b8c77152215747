import { connect, type NatsConnection } from '@nats-io/transport-node';

/**
 * A bus connection that reconnects forever (the embedded server restarts on the same port).
 * `inboxPrefix` (subjects(cluster).inbox) keeps replies under the cluster's subjects.
 */
export function connectBus(url: string, name: string, inboxPrefix?: string, auth: BusAuth | undefined = busAuthFromEnv()): Promise<NatsConnection> {
  return connect({
    servers: url,
    name,
    inboxPrefix,
    ...(auth ?? {}),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
    // No stack captured for every request in case it fails: a failed ask is mapped to a CraneError
    // naming its subject (bus/actor.ts), and the capture cost more than the rest of a small request.
    noAsyncTraces: true,
  });
}

export interface BusAuth {
  user: string;
  pass: string;
}

/** A member host's bus credentials reach its component processes in the environment, not argv. */
export function busAuthFromEnv(env: NodeJS.ProcessEnv = process.env): BusAuth | undefined {
  return env.CRANE_BUS_USER && env.CRANE_BUS_PASS ? { user: env.CRANE_BUS_USER, pass: env.CRANE_BUS_PASS } : undefined;
}
