import { connect } from '@nats-io/transport-node';
import { decode } from '../bus/codec.js';

export interface TraceOptions {
  subject?: string;
  natsUrl: string;
  /** One JSON object per message instead of the readable form. */
  json?: boolean;
}

const SECRET_KEYS = new Set(['token', 'password', 'hash']);

/** Tokens and passwords are credentials: trace shows that one was sent, never its value. */
function redact(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(redact);
  if (!v || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, SECRET_KEYS.has(k) && typeof x === 'string' ? '<redacted>' : redact(x)]));
}

function body(data: Uint8Array): unknown {
  if (data.length === 0) return null;
  try {
    return redact(decode(data));
  } catch {
    return { undecodable: data.length };
  }
}

/** `craneadm trace [SUBJECT]`: the live bus, decoded (subject, headers, body as JSON). */
export async function runTrace(o: TraceOptions): Promise<void> {
  const nc = await connect({ servers: o.natsUrl, name: 'craneadm-trace' });
  const subject = o.subject ?? 'crane.>';
  const sub = nc.subscribe(subject);
  process.stderr.write(`tracing ${subject} on ${o.natsUrl} (Ctrl-C to stop)\n`);
  const stop = () => void nc.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for await (const m of sub) {
    const headers: Record<string, string> = {};
    for (const k of m.headers?.keys() ?? []) headers[k] = m.headers!.get(k);
    const rec = { time: new Date().toISOString(), subject: m.subject, reply: m.reply || undefined, headers, body: body(m.data) };
    if (o.json) {
      process.stdout.write(JSON.stringify(rec) + '\n');
    } else {
      const h = Object.entries(headers)
        .filter(([k]) => k !== 'Content-Type')
        .map(([k, v]) => `${k.replace(/^Crane-/, '').toLowerCase()}=${v}`)
        .join(' ');
      process.stdout.write(`${rec.time.slice(11, 23)} ${m.subject} [${h}]${m.reply ? ' reply=' + m.reply : ''}\n  ${JSON.stringify(rec.body)}\n`);
    }
  }
}
