import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ActorSystem } from './actor.js';
import { CraneError } from './errors.js';
import { newTraceId } from './headers.js';
import { openStreamReader } from './stream.js';

/** How long a request may take unless its route says: longer than the gateway waits for the cluster manager (15 s). */
const DEFAULT_ROUTE_TIMEOUT_MS = 20_000;

/** One API route: an HTTP method and path pattern (`:name` segments) mapped to a bus subject. */
export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  subject: string;
  type: string;
  /** Answer is an NDJSON stream. */
  stream?: boolean;
  /** Status on success (default 200). */
  status?: number;
  /** Default DEFAULT_ROUTE_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** What the bridge sends on the bus for every HTTP request. */
export interface BridgeRequest {
  token?: string;
  /** Set when the request came over TCP, where no file permission vouches for the caller. */
  via?: 'tcp';
  params: Record<string, string>;
  query: Record<string, string | string[]>;
  body?: unknown;
}

export const MAX_BODY_BYTES = 1 << 20;

interface CompiledRoute extends Route {
  parts: string[];
}

function compile(routes: Route[]): CompiledRoute[] {
  return routes.map((r) => ({ ...r, parts: r.path.split('/').filter(Boolean) }));
}

function match(routes: CompiledRoute[], method: string, path: string) {
  const segs = path.split('/').filter(Boolean);
  let methodMismatch = false;
  for (const r of routes) {
    if (r.parts.length !== segs.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < segs.length; i++) {
      const p = r.parts[i]!;
      if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(segs[i]!);
      else if (p !== segs[i]) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    if (r.method !== method) {
      methodMismatch = true;
      continue;
    }
    return { route: r, params };
  }
  return methodMismatch ? 'method' : undefined;
}

function parseQuery(sp: URLSearchParams): Record<string, string | string[]> {
  const q: Record<string, string | string[]> = {};
  for (const [k, v] of sp) {
    const prev = q[k];
    q[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return q;
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () => new CraneError('too-large', `request body too large: the limit is ${MAX_BODY_BYTES} bytes`);
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
      req.resume(); // discard it, but let the 413 reach the client
      return reject(tooLarge());
    }
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) return;
      chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return reject(tooLarge());
      if (size === 0) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new CraneError('invalid', 'request body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body ?? null);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) };
  if (status === 413) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(data);
}

function sendError(res: ServerResponse, err: unknown): void {
  const e = err instanceof CraneError ? err : new CraneError('internal', String((err as Error)?.message ?? err));
  if (res.headersSent) {
    res.end(JSON.stringify({ error: e.toJSON() }) + '\n');
    return;
  }
  sendJson(res, e.status, { error: e.toJSON() });
}

/**
 * The socket bridge: HTTP/1.1 + JSON on a unix socket (or TCP) in front of bus subjects. It holds
 * no business logic: it turns a request into a BridgeRequest, asks the route's subject and writes
 * the reply (or pipes a stream as NDJSON).
 */
export class SocketBridge {
  private readonly server: Server;
  private readonly routes: CompiledRoute[];

  constructor(
    private readonly system: ActorSystem,
    routes: Route[],
    private readonly log: Logger,
    private readonly inboxPrefix = '_INBOX',
    private readonly via?: 'tcp',
  ) {
    this.routes = compile(routes);
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5_000;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://crane');
    const m = match(this.routes, req.method ?? 'GET', url.pathname);
    try {
      if (m === 'method') throw new CraneError('invalid', `${req.method} is not allowed on ${url.pathname}`);
      if (!m) throw new CraneError('not-found', `no route ${req.method} ${url.pathname}`);
      const auth = req.headers.authorization;
      const breq: BridgeRequest = {
        token: auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined,
        ...(this.via ? { via: this.via } : {}),
        params: m.params,
        query: parseQuery(url.searchParams),
        body: await readBody(req),
      };
      const trace = (req.headers['x-crane-trace'] as string | undefined) ?? newTraceId();
      if (m.route.stream) return await this.stream(m.route, breq, trace, req, res);
      const reply = await this.system.ask(m.route.subject, m.route.type, breq, {
        timeout: m.route.timeoutMs ?? DEFAULT_ROUTE_TIMEOUT_MS,
        cause: { trace },
        from: 'bridge',
      });
      sendJson(res, m.route.status ?? 200, reply);
    } catch (err) {
      if (!(err instanceof CraneError) || err.code === 'internal') this.log.warn({ err: String(err) }, 'request failed');
      sendError(res, err);
    }
  }

  private async stream(route: Route, breq: BridgeRequest, trace: string, req: IncomingMessage, res: ServerResponse) {
    const reader = openStreamReader(this.system.nc, this.inboxPrefix);
    req.socket.on('close', () => reader.close());
    try {
      await this.system.ask(route.subject, route.type, breq, {
        timeout: route.timeoutMs ?? DEFAULT_ROUTE_TIMEOUT_MS,
        cause: { trace, stream: reader.inbox },
        from: 'bridge',
      });
    } catch (err) {
      reader.close();
      throw err;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'transfer-encoding': 'chunked' });
    try {
      for await (const item of reader.items) {
        if (!res.write(JSON.stringify(item) + '\n')) await new Promise((r) => res.once('drain', r));
      }
      res.end();
    } catch (err) {
      if (!res.destroyed) sendError(res, err);
    }
  }

  /** Listen on a unix socket path (replacing a stale one) or a `host:port` TCP address. */
  async listen(where: { socket: string; mode: number } | { host: string; port: number }): Promise<void> {
    if ('socket' in where && existsSync(where.socket)) unlinkSync(where.socket);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      if ('socket' in where) this.server.listen(where.socket, resolve);
      else this.server.listen(where.port, where.host, resolve);
    });
    if ('socket' in where) chmodSync(where.socket, where.mode);
  }

  address(): string {
    const a = this.server.address();
    return typeof a === 'string' ? a : a ? `${a.address}:${a.port}` : '';
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
