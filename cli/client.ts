import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Target } from './config.js';

/** An error answer from the server, or a failure to reach it (code 'unavailable'). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** HTTP status; 0 when there was no answer. */
    readonly status: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface RequestOptions {
  /** Give up when no answer came in this many ms (0 = wait forever). */
  timeoutMs?: number;
}

type Method = 'GET' | 'POST' | 'DELETE';

/** A tiny HTTP/1.1 + JSON client for the Crane sockets (unix socket or IP:PORT). */
export class Client {
  constructor(
    readonly target: Pick<Target, 'socketPath' | 'host' | 'port' | 'address'>,
    readonly token?: string,
  ) {}

  /** Sends a request; resolves to the parsed JSON answer or throws an ApiError with the server's message. */
  async request<T = unknown>(method: Method, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, body, opts.timeoutMs ?? 0);
    const text = await this.readAll(res);
    const status = res.statusCode ?? 0;
    if (status >= 400) throw httpError(status, text);
    if (!text.trim()) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(`the server sent invalid JSON (HTTP ${status})`, 'internal', status);
    }
  }

  /**
   * Opens an NDJSON stream; yields each parsed line. `{"keepalive":true}` lines are skipped and an
   * `{"error":{code,message}}` line is thrown as an ApiError.
   */
  async *stream<T = unknown>(method: Method, path: string): AsyncGenerator<T> {
    const res = await this.open(method, path, undefined, 0);
    try {
      const status = res.statusCode ?? 0;
      if (status >= 400) throw httpError(status, await this.readAll(res));
      for await (const line of this.lines(res)) {
        let item: unknown;
        try {
          item = JSON.parse(line);
        } catch {
          throw new ApiError(`the server sent an invalid stream line: ${line.slice(0, 80)}`, 'internal', status);
        }
        if (item && typeof item === 'object') {
          const o = item as { keepalive?: unknown; error?: { code?: string; message?: string } };
          if (o.keepalive === true) continue;
          if (o.error && typeof o.error === 'object') throw new ApiError(o.error.message ?? 'stream failed', o.error.code ?? 'internal', status);
        }
        yield item as T;
      }
    } finally {
      res.destroy();
    }
  }

  private open(method: Method, path: string, body: unknown, timeoutMs: number): Promise<IncomingMessage> {
    const { socketPath, host, port } = this.target;
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json', connection: 'close' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (data) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(data.length);
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        socketPath ? { socketPath, method, path, headers, agent: false } : { host, port, method, path, headers, agent: false },
        resolve,
      );
      req.on('error', (e) => reject(this.connectionError(e)));
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () =>
          req.destroy(new ApiError(`no answer from ${this.target.address} within ${timeoutMs} ms`, 'timeout', 0)),
        );
      }
      req.end(data);
    });
  }

  private async readAll(res: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    try {
      for await (const c of res) chunks.push(c as Buffer);
    } catch (e) {
      throw this.connectionError(e as Error);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private async *lines(res: IncomingMessage): AsyncGenerator<string> {
    res.setEncoding('utf8');
    let buf = '';
    const it = res[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<string>;
      try {
        next = await it.next();
      } catch (e) {
        throw this.connectionError(e as Error);
      }
      if (next.done) break;
      buf += next.value;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) yield line;
      }
    }
    if (buf.trim()) yield buf.trim();
  }

  private connectionError(e: Error): Error {
    if (e instanceof ApiError) return e;
    const code = (e as NodeJS.ErrnoException).code;
    const where = this.target.address;
    if (code === 'ECONNREFUSED' || code === 'ENOENT') {
      return new ApiError(`cannot reach the cluster at ${where}: start it with craneadm standalone`, 'unavailable', 0);
    }
    if (code === 'EACCES') return new ApiError(`permission denied on ${where}`, 'unavailable', 0);
    if (code === 'ECONNRESET' || e.message === 'aborted') return new ApiError(`the connection to ${where} was lost`, 'unavailable', 0);
    return new ApiError(`${where}: ${e.message}`, 'unavailable', 0);
  }
}

function httpError(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body?.error?.message) return new ApiError(body.error.message, body.error.code ?? 'internal', status);
  } catch {
    // not JSON: fall through
  }
  const t = text.trim();
  return new ApiError(t ? `HTTP ${status}: ${t.slice(0, 200)}` : `HTTP ${status}`, 'internal', status);
}

/** Builds `path?k=v&k=w` from a record, skipping undefined values and repeating arrays. */
export function withQuery(path: string, q: Record<string, string | string[] | boolean | undefined>): string {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) sp.append(k, String(x));
  }
  const s = sp.toString();
  return s ? `${path}?${s}` : path;
}
