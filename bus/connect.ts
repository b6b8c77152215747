import { connect, type NatsConnection } from '@nats-io/transport-node';

/**
 * A bus connection that reconnects forever (the embedded server restarts on the same port).
 * `inboxPrefix` (subjects(cluster).inbox) keeps replies under the cluster's subjects.
 */
export function connectBus(url: string, name: string, inboxPrefix?: string): Promise<NatsConnection> {
  return connect({
    servers: url,
    name,
    inboxPrefix,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
  });
}
