/**
 * Shared helpers of the benchmarks: statistics, a keep-alive HTTP client for the unix sockets, a
 * standalone cluster in a child process (`craneadm standalone`, as a user starts it), job
 * submission, a watcher of job state events on the bus, and the direct-spawn baselines.
 *
 * The benchmarks PRINT figures; they never fail on one. Each prints lines a human can paste into a
 * README table, and a final `RESULT {json}` line that bench/run-all.ts collects.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decode } from '../bus/codec.js';
import { subjects } from '../bus/subjects.js';

/** dist/ root (this file is dist/bench/lib.js at run time). */
export const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(DIST, '..');
export const CRANE = join(DIST, 'cli', 'crane.js');
export const CRANEADM = join(DIST, 'cli', 'craneadm.js');

process.env.CRANE_LOG_LEVEL ??= 'silent';

// ---- statistics ------------------------------------------------------------------------------

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}
export const median = (xs: number[]) => percentile(xs, 50);
export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export const fmt = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const nowMs = () => performance.now();

/** The machine-readable summary line of one benchmark (bench/run-all.ts parses it). */
export function result(name: string, fields: Record<string, unknown>): void {
  console.log(`RESULT ${JSON.stringify({ bench: name, ...fields })}`);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

// ---- HTTP over a unix socket ------------------------------------------------------------------

export interface HttpReply<T = any> {
  status: number;
  body: T;
}

/** A JSON client on one unix socket, with a keep-alive agent (maxSockets = concurrency). */
export class Api {
  readonly agent: Agent;
  token?: string;

  constructor(
    readonly socketPath: string,
    maxSockets = 32,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 1_000 });
  }

  request<T = any>(method: string, path: string, body?: unknown): Promise<HttpReply<T>> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (data) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(data.length);
    }
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            /* keep the text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(data);
    });
  }

  async ok<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.request<T>(method, path, body);
    if (r.status >= 400) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  close(): void {
    this.agent.destroy();
  }
}

export async function signin(api: Api, home: string): Promise<string> {
  const password = readFileSync(join(home, 'root-password'), 'utf8').trim();
  const { token } = await api.ok<{ token: string }>('POST', '/v1/auth/signin', { username: 'root', password });
  api.token = token;
  return token;
}

// ---- child processes --------------------------------------------------------------------------

export interface Ran {
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node <args>` to its end, asynchronously (never spawnSync: a cluster in this process would
 * then be frozen while the CLI waits for it). `ms` is the wall time from spawn to exit.
 */
export function runNode(args: string[], env: NodeJS.ProcessEnv = process.env, input = '', timeoutMs = 60_000): Promise<Ran> {
  return new Promise((res, rej) => {
    const t = nowMs();
    const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ ms: nowMs() - t, code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

// ---- clusters -----------------------------------------------------------------------------------

export interface Cluster {
  home: string;
  cliSocket: string;
  admSocket: string;
  busUrl: string;
  cluster: string;
  /** Environment of a user shell on this cluster: CRANE_HOME and its own XDG_CONFIG_HOME. */
  env: NodeJS.ProcessEnv;
  api: Api;
  token: string;
  /** The node process that runs the cluster. */
  pid: number;
  child: ChildProcess;
  /** Its nats-server child. */
  natsPid(): number | undefined;
  /** Stops the cluster (POST /v1/admin/stop, like `craneadm stop`) and removes its home. */
  stop(): Promise<void>;
}

/** Clusters still running: killed if the benchmark exits without stopping them (a crash). */
const live = new Set<{ child: ChildProcess; home: string; natsPid(): number | undefined }>();
process.on('exit', () => {
  for (const c of live) {
    const np = c.natsPid();
    c.child.kill('SIGKILL');
    if (np) killQuietly(np);
    rmSync(c.home, { recursive: true, force: true });
  }
});

/**
 * A standalone cluster in a child process, started as a user would: `node dist/cli/craneadm.js
 * standalone --gpus N` (foreground), with its own CRANE_HOME and XDG_CONFIG_HOME. The benchmark's
 * own work (HTTP client, timing) then never shares the cluster's event loop. `nodeArgs` go to that
 * node (e.g. --cpu-prof). `args` replaces the craneadm arguments (e.g. `['pseudocluster', '--nodes',
 * '3']`, also foreground: its component processes are then children of `pid`).
 */
export async function startCluster(o: { gpus?: string; nodeArgs?: string[]; env?: NodeJS.ProcessEnv; args?: string[]; readyTimeoutMs?: number } = {}): Promise<Cluster> {
  const home = tempDir('crane-bench-');
  const xdg = join(home, 'xdg');
  mkdirSync(xdg);
  const env: NodeJS.ProcessEnv = { ...process.env, CRANE_HOME: home, XDG_CONFIG_HOME: xdg, NO_COLOR: '1', ...o.env };
  delete env.CRANE_SOCKET;
  delete env.CRANE_ADM_SOCKET;
  delete env.CRANE_TOKEN;
  const args = o.args ?? ['standalone', '--gpus', o.gpus ?? '8'];
  const what = `craneadm ${args[0]}`;
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), CRANEADM, ...args], {
    cwd: home,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  child.stdout!.resume();
  let exited = false;
  const exitP = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  const cliSocket = join(home, 'crane-cli.sock');
  const admSocket = join(home, 'crane-adm.sock');
  const infoFile = join(home, 'cluster.json');
  const readyMs = o.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + readyMs;
  const natsPid = () => childPids(child.pid!).find((p) => procName(p) === 'nats-server');
  const cleanupFailed = async (why: string): Promise<never> => {
    const np = natsPid();
    child.kill('SIGKILL');
    if (np) killQuietly(np);
    await exitP;
    rmSync(home, { recursive: true, force: true });
    throw new Error(`${why}\n${stderr.slice(-2000)}`);
  };
  // cluster.json is written once both sockets listen.
  while (!existsSync(infoFile)) {
    if (exited) return cleanupFailed(`${what} exited before it was ready`);
    if (Date.now() > deadline) return cleanupFailed(`${what} was not ready within ${readyMs / 1000} s`);
    await sleep(25);
  }
  const info = JSON.parse(readFileSync(infoFile, 'utf8')) as { busUrl: string; cluster: string };
  // Remember the nats-server now: if the cluster dies, its child is re-parented and lost to a scan.
  const np0 = natsPid();
  const handle = { child, home, natsPid: () => (np0 && procName(np0) === 'nats-server' ? np0 : undefined) };
  live.add(handle);
  const api = new Api(cliSocket);
  const token = await signin(api, home);
  return {
    home,
    cliSocket,
    admSocket,
    busUrl: info.busUrl,
    cluster: info.cluster ?? 'local',
    env,
    api,
    token,
    pid: child.pid!,
    child,
    natsPid: handle.natsPid,
    async stop() {
      live.delete(handle);
      api.close();
      const np = handle.natsPid();
      if (!exited) {
        const adm = new Api(admSocket, 1);
        await adm.request('POST', '/v1/admin/stop').catch(() => undefined);
        adm.close();
        const t1 = setTimeout(() => child.kill('SIGTERM'), 10_000);
        const t2 = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exitP;
        clearTimeout(t1);
        clearTimeout(t2);
      }
      if (np && procName(np) === 'nats-server') killQuietly(np);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

// ---- /proc ----------------------------------------------------------------------------------------

export function procName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Direct children of a process (scans /proc/<pid>/stat). */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === ppid) out.push(Number(e));
    } catch {
      /* raced away */
    }
  }
  return out;
}

/** VmRSS (and VmHWM, the peak) in KiB from /proc/<pid>/status. */
export function rssKiB(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

/** utime+stime of a process in ms (for CPU accounting of a phase). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]); // fields 14, 15 of stat
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

// ---- jobs -------------------------------------------------------------------------------------------

export interface JobSpecLite {
  name?: string;
  tags: string[];
  resources: { app: number; min: number; max: number };
  am: { image: string; cmd: string };
}

export const hostJob = (cmd: string, gpus: number, name?: string): JobSpecLite => ({
  ...(name ? { name } : {}),
  tags: ['bench'],
  resources: { app: gpus, min: gpus, max: gpus },
  am: { image: 'host', cmd },
});

/**
 * Submits n jobs with at most `inFlight` requests outstanding (one client, keep-alive). Returns
 * their ids in order, when the first request was sent and when the last answer came.
 */
export async function submitMany(api: Api, n: number, spec: (i: number) => JobSpecLite, inFlight = 8): Promise<{ ids: string[]; firstAt: number; lastAt: number }> {
  const ids = new Array<string>(n);
  let next = 0;
  let firstAt = NaN;
  let lastAt = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      if (Number.isNaN(firstAt)) firstAt = nowMs();
      const r = await api.request<{ id: string }>('POST', '/v1/jobs', spec(i));
      if (r.status !== 201) throw new Error(`POST /v1/jobs: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      ids[i] = r.body.id;
      lastAt = nowMs();
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, worker));
  return { ids, firstAt, lastAt };
}

export interface JobEvent {
  id: string;
  state: string;
  /** performance.now() when the event reached this process. */
  seenAt: number;
  exitCode?: number;
}

const TERMINAL = new Set(['DONE', 'ERROR', 'INVALID']);

/**
 * Watches the job state events the cluster manager publishes anyway (crane.<cluster>.evt.job.*)
 * on its own bus connection: the exact time of every RUNNING and DONE, with no polling load on the
 * cluster.
 */
export class JobWatcher {
  readonly started = new Map<string, number>();
  readonly ended = new Map<string, JobEvent>();
  /** When each job's first output line reached this process (its container ran, wherever it ran). */
  readonly output = new Map<string, number>();
  private waiters: Array<() => void> = [];

  private constructor(private readonly nc: NatsConnection) {}

  /** `auth`: a member host's bus credentials (a standalone's bus takes none). */
  static async open(busUrl: string, cluster: string, auth?: { user: string; pass: string }): Promise<JobWatcher> {
    const nc = await connect({ servers: busUrl, name: 'bench-watcher', ...auth });
    const w = new JobWatcher(nc);
    nc.subscribe(subjects(cluster).jobEvents, {
      callback: (err, m) => {
        if (err) return;
        const seenAt = nowMs();
        const b = decode<{ id: string; state: string; exitCode?: number }>(m.data);
        if (b.state === 'RUNNING') w.started.set(b.id, seenAt);
        else if (TERMINAL.has(b.state)) w.ended.set(b.id, { id: b.id, state: b.state, seenAt, exitCode: b.exitCode });
        const ws = w.waiters;
        w.waiters = [];
        for (const f of ws) f();
      },
    });
    nc.subscribe(subjects(cluster).logAll, {
      callback: (err, m) => {
        if (err) return;
        const job = m.subject.split('.')[3]!;
        if (!w.output.has(job)) w.output.set(job, nowMs());
      },
    });
    await nc.flush();
    return w;
  }

  /** Resolves once every job of `ids` has ended; returns when the last one did. */
  async allEnded(ids: string[], timeoutMs = 120_000): Promise<{ lastAt: number; events: JobEvent[] }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const events = ids.map((id) => this.ended.get(id));
      if (events.every((e) => e)) {
        const evs = events as JobEvent[];
        return { lastAt: Math.max(...evs.map((e) => e.seenAt)), events: evs };
      }
      if (Date.now() > deadline) throw new Error(`only ${events.filter(Boolean).length} of ${ids.length} jobs ended within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 250);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }

  /** Resolves with the time this process saw job `id` RUNNING (or ended, if it never ran). */
  async whenStarted(id: string, timeoutMs = 60_000): Promise<number> {
    const at = () => this.started.get(id) ?? this.ended.get(id)?.seenAt;
    return this.until(at, `job ${id} did not start within ${timeoutMs} ms`, timeoutMs);
  }

  /** Resolves with the end event of job `id`. */
  async whenEnded(id: string, timeoutMs = 60_000): Promise<JobEvent> {
    return this.until(() => this.ended.get(id), `job ${id} did not end within ${timeoutMs} ms`, timeoutMs);
  }

  private async until<T>(get: () => T | undefined, why: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = get();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(why);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 250);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}

/** One-line complaint if some jobs did not end DONE. */
export function checkAllDone(events: JobEvent[]): string | undefined {
  const bad = events.filter((e) => e.state !== 'DONE');
  if (bad.length === 0) return undefined;
  return `${bad.length} jobs did not end DONE, e.g. ${bad[0]!.id} ${bad[0]!.state} exit ${bad[0]!.exitCode}`;
}

/** Submits n jobs and waits until all ended; returns ids, submit window and the end time. */
export async function runJobs(c: Cluster, w: JobWatcher, n: number, spec: (i: number) => JobSpecLite, inFlight = 8) {
  const sub = await submitMany(c.api, n, spec, inFlight);
  const end = await w.allEnded(sub.ids);
  return { ids: sub.ids, firstAt: sub.firstAt, submittedAt: sub.lastAt, lastAt: end.lastAt, events: end.events };
}

/**
 * job add → RUNNING latency on any cluster: an API client on `socketPath` (signed in with `token`)
 * submits `jobs` host jobs `cmd` (1 GPU) one at a time, after `warmup` uncounted ones; each is
 * timed from just before its POST /v1/jobs to its RUNNING event on the bus at `busUrl`, and the
 * next one goes only once this one ended, so the cluster never has more than one job (never
 * saturated, no queueing). Returns the latencies and the POST → 201 times, in ms.
 */
export async function addToRunning(
  socketPath: string,
  busUrl: string,
  token: string,
  o: { jobs?: number; warmup?: number; cmd?: string; cluster?: string; auth?: { user: string; pass: string } } = {},
): Promise<{ runningMs: number[]; replyMs: number[]; notDone: number; outputMs: number[] }> {
  const api = new Api(socketPath, 1);
  api.token = token;
  const w = await JobWatcher.open(busUrl, o.cluster ?? 'local', o.auth);
  const runningMs: number[] = [];
  const replyMs: number[] = [];
  const outputMs: number[] = [];
  let notDone = 0;
  try {
    const n = (o.warmup ?? 5) + (o.jobs ?? 200);
    for (let i = 0; i < n; i++) {
      const t0 = nowMs();
      const r = await api.request<{ id: string }>('POST', '/v1/jobs', hostJob(o.cmd ?? 'sleep 0.2', 1));
      const t1 = nowMs();
      if (r.status !== 201) throw new Error(`POST /v1/jobs: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      const started = await w.whenStarted(r.body.id);
      const end = await w.whenEnded(r.body.id);
      if (i < (o.warmup ?? 5)) continue;
      if (end.state !== 'DONE') notDone++;
      runningMs.push(started - t0);
      replyMs.push(t1 - t0);
      const out = w.output.get(r.body.id);
      if (out !== undefined) outputMs.push(out - t0);
    }
  } finally {
    await w.close();
    api.close();
  }
  return { runningMs, replyMs, notDone, outputMs };
}

// ---- direct baselines -----------------------------------------------------------------------------

/**
 * Baseline of the host-process runtime: runs `sh -c <cmd>` n times straight from node with at most
 * `concurrency` at once, spawned exactly as actors/node-manager/process-runtime.ts does (detached,
 * stdout/stderr piped and read, the parent's environment), each awaited to its 'close'.
 * Returns the wall time in ms.
 */
export async function spawnMany(n: number, cmd: string, concurrency: number): Promise<number> {
  const t0 = nowMs();
  let next = 0;
  const one = () =>
    new Promise<void>((res, rej) => {
      const child = spawn('sh', ['-c', cmd], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
      child.stdout!.resume();
      child.stderr!.resume();
      child.once('error', rej);
      child.once('close', () => res());
    });
  const worker = async () => {
    while (next < n) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return nowMs() - t0;
}

/** Runs `main` and exits: 0 on success, 1 with the error on stderr (a figure never fails a bench). */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err instanceof Error ? err.stack : err);
      process.exit(1);
    },
  );
}
