import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, Client, withQuery } from '../../cli/client.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ client: (token?: string) => Client; close: () => Promise<void> }> {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'crane-client-')), 's.sock');
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    handler(req, body, res);
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  return {
    client: (token) => new Client({ socketPath, address: socketPath }, token),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const json = (res: ServerResponse, status: number, v: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(v));
};

test('request sends JSON and the bearer token, parses the answer', async (t) => {
  let seen: { method?: string; url?: string; auth?: string; body?: string } = {};
  const s = await serve((req, body, res) => {
    seen = { method: req.method, url: req.url, auth: req.headers.authorization, body };
    json(res, 201, { id: 'j1' });
  });
  t.deepEqual(await s.client('tk').request('POST', '/v1/jobs', { a: 1 }), { id: 'j1' });
  t.deepEqual(seen, { method: 'POST', url: '/v1/jobs', auth: 'Bearer tk', body: '{"a":1}' });
  await s.close();
});

test("request throws the server's error message", async (t) => {
  const s = await serve((_req, _b, res) => json(res, 400, { error: { code: 'invalid', message: "'a' matches 2 jobs: a1, a2" } }));
  const e = await t.throwsAsync(s.client().request('GET', '/v1/jobs/a'), { instanceOf: ApiError, message: "'a' matches 2 jobs: a1, a2" });
  t.is(e?.status, 400);
  t.is(e?.code, 'invalid');
  await s.close();
});

test('a non-JSON error answer still gives a message', async (t) => {
  const s = await serve((_req, _b, res) => {
    res.writeHead(502);
    res.end('bad gateway');
  });
  await t.throwsAsync(s.client().request('GET', '/x'), { message: 'HTTP 502: bad gateway' });
  await s.close();
});

test('an absent socket gives the start-it hint', async (t) => {
  const c = new Client({ socketPath: '/nonexistent/crane-cli.sock', address: '/nonexistent/crane-cli.sock' });
  await t.throwsAsync(c.request('GET', '/v1/ping'), {
    message: 'cannot reach the cluster at /nonexistent/crane-cli.sock: start it with craneadm standalone',
  });
});

test('stream yields NDJSON lines, skips keepalives, throws error lines', async (t) => {
  const s = await serve((_req, _b, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write('{"n":1}\n{"keepalive":true}\n{"n"');
    setTimeout(() => {
      res.write(':2}\n\n{"n":3}');
      res.end();
    }, 20);
  });
  const got: unknown[] = [];
  for await (const x of s.client().stream('GET', '/s')) got.push(x);
  t.deepEqual(got, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  await s.close();

  const s2 = await serve((_req, _b, res) => {
    res.writeHead(200);
    res.end('{"n":1}\n{"error":{"code":"internal","message":"log store broke"}}\n');
  });
  const got2: unknown[] = [];
  await t.throwsAsync(
    (async () => {
      for await (const x of s2.client().stream('GET', '/s')) got2.push(x);
    })(),
    { message: 'log store broke' },
  );
  t.deepEqual(got2, [{ n: 1 }]);
  await s2.close();
});

test('stream throws an HTTP error before any line', async (t) => {
  const s = await serve((_req, _b, res) => json(res, 404, { error: { code: 'not-found', message: "no job matches 'x'" } }));
  await t.throwsAsync(
    (async () => {
      for await (const _ of s.client().stream('GET', '/v1/jobs/x/logs')) void _;
    })(),
    { message: "no job matches 'x'" },
  );
  await s.close();
});

test('withQuery repeats arrays and skips undefined', (t) => {
  t.is(withQuery('/v1/jobs', {}), '/v1/jobs');
  t.is(withQuery('/v1/jobs', { q: 'a b', tag: ['x', 'y'], state: undefined, force: true }), '/v1/jobs?q=a+b&tag=x&tag=y&force=true');
});
