import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';

/** The DESIGN §2 headers every Crane message carries. */
export const H = {
  type: 'Crane-Type',
  from: 'Crane-From',
  trace: 'Crane-Trace',
  error: 'Crane-Error',
  stream: 'Crane-Stream',
  contentType: 'Content-Type',
} as const;

export const MSGPACK = 'application/msgpack';

export function newTraceId(): string {
  return randomBytes(8).toString('hex');
}

export function craneHeaders(type: string, from: string, trace: string, extra?: Record<string, string>): MsgHdrs {
  const h = natsHeaders();
  h.set(H.type, type);
  h.set(H.from, from);
  h.set(H.trace, trace);
  h.set(H.contentType, MSGPACK);
  if (extra) for (const [k, v] of Object.entries(extra)) h.set(k, v);
  return h;
}
