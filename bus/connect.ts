import { connect, type NatsConnection } from '@nats-io/transport-node';

/** A bus connection that reconnects forever (the embedded server restarts on the same port). */
export function connectBus(url: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: url,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
  });
}
