#!/usr/bin/env node
/** `craneadm`: the admin CLI (users, cluster status, stop, trace, standalone). */
import { cac } from 'cac';
import type { StandaloneInfo } from '../actors/admin/standalone.js';
import { CRANE_VERSION, type NodeInfo, type UsageReport, type UserInfo } from '../actors/protocol.js';
import { ExitError, main, out, printJson, runCli, trimHelp, UsageError, warn } from './app.js';
import { ApiError, Client } from './client.js';
import { loadConfig, parseListen, resolveTarget, resolveToken, saveConfig, validateEndpoint } from './config.js';
import { age, localIso, table } from './format.js';
import { craneHome, localSockets } from './paths.js';

type Opts = Record<string, unknown> & { socketPath?: string; useLocalCrane?: boolean };

const str = (v: unknown): string | undefined =>
  v === undefined || v === null || typeof v === 'boolean' ? undefined : Array.isArray(v) ? str(v.at(-1)) : String(v);

interface Status extends StandaloneInfo {
  nodes: NodeInfo[];
  /** The active cluster manager (lease holder). */
  manager?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function admin(o: Opts): Client {
  const cfg = loadConfig();
  const target = resolveTarget('adm', { socketPath: str(o.socketPath), useLocalCrane: !!o.useLocalCrane }, cfg);
  // A socket is its own credential; over TCP craneadm shows the token signed in on that endpoint.
  return new Client(target, target.socketPath ? undefined : resolveToken(target, cfg));
}

function getStatus(client: Client, timeoutMs?: number): Promise<Status> {
  return client.request<Status>('GET', '/v1/admin/status', undefined, { timeoutMs });
}

function printInfo(info: StandaloneInfo, headline: string): void {
  out(`${headline} (pid ${info.pid})`);
  out(`  cli socket: ${info.sockets.cli}`);
  out(`  adm socket: ${info.sockets.adm}`);
  out(`  bus: ${info.busUrl}`);
  out(`  root password: ${info.home}/root-password`);
}

const cli = cac('craneadm');
cli.option('--socket-path <path>', 'Connect to this admin unix socket (env CRANE_ADM_SOCKET)');
cli.option('--use-local-crane', 'Connect to the local cluster in $CRANE_HOME (default ~/.crane)');
cli.example('  $ craneadm standalone --detach');
cli.example('  $ craneadm user add alice');
cli.example('  $ craneadm status');

// ---- users ------------------------------------------------------------------------------------

cli
  .command('user add <NAME>', 'Add a user; prints the generated password unless --password-stdin')
  .option('--password-stdin', 'Read the password from stdin')
  .option('--admin', 'Make the user an administrator')
  .example('  $ craneadm user add alice')
  .example('  $ printf %s "$PASSWORD" | craneadm user add bob --password-stdin --admin')
  .action(async (name: string, o: Opts) => {
    let password: string | undefined;
    if (o.passwordStdin) {
      const { readStdin } = await import('./prompt.js');
      password = await readStdin();
      if (!password) throw new Error('empty password');
    }
    const r = await admin(o).request<{ user: UserInfo; password?: string }>('POST', '/v1/admin/users', {
      username: name,
      password,
      admin: !!o.admin,
    });
    out(r.password ? `password: ${r.password}` : `user ${r.user.username} added`);
  });

cli
  .command('user ls', 'List users')
  .alias('user list')
  .option('--json', 'Print JSON')
  .action(async (o: Opts) => {
    const { users } = await admin(o).request<{ users: UserInfo[] }>('GET', '/v1/admin/users');
    if (o.json) return printJson(users);
    out(table(['username', 'id', 'admin', 'quota', 'weight'], users.map((u) => [u.username, u.id, u.isAdmin ? 'yes' : '', String(u.quotaGpus ?? '-'), String(u.weight ?? 1)])));
  });

cli
  .command('user quota <NAME>', "Set a user's GPU quota and fair-share weight")
  .option('--gpus <n>', 'Most GPUs the user may hold at once ("none": no limit)')
  .option('--weight <w>', 'Fair-share weight (default 1: a user of weight 2 is entitled to twice the GPUs)')
  .option('--json', 'Print JSON')
  .example('  $ craneadm user quota alice --gpus 8 --weight 2')
  .example('  $ craneadm user quota alice --gpus none')
  .action(async (name: string, o: Opts) => {
    const g = str(o.gpus);
    const w = str(o.weight);
    if (g === undefined && w === undefined) throw new UsageError('give --gpus N (or none) and/or --weight W');
    const gpus = g === undefined ? undefined : g === 'none' ? null : Number(g);
    if (gpus !== undefined && gpus !== null && !(Number.isInteger(gpus) && gpus >= 0)) throw new Error(`invalid --gpus '${g}': expected a whole number ≥ 0, or none`);
    const weight = w === undefined ? undefined : Number(w);
    if (weight !== undefined && !(weight > 0 && weight <= 1000)) throw new Error(`invalid --weight '${w}': expected a number above 0, at most 1000`);
    const u = await admin(o).request<UserInfo>('POST', `/v1/admin/users/${encodeURIComponent(name)}/quota`, { gpus, weight });
    if (o.json) return printJson(u);
    out(`${u.username}: quota ${u.quotaGpus ?? 'none'} GPUs, weight ${u.weight ?? 1}`);
  });

cli
  .command('user rm <NAME>', 'Remove a user')
  .alias('user remove')
  .action(async (name: string, o: Opts) => {
    await admin(o).request('DELETE', `/v1/admin/users/${encodeURIComponent(name)}`);
    out(`user ${name} removed`);
  });

// ---- cluster ----------------------------------------------------------------------------------

cli
  .command('status', 'Show the cluster: mode, bus, sockets and nodes')
  .option('--json', 'Print JSON')
  .action(async (o: Opts) => {
    const s = await getStatus(admin(o));
    if (o.json) return printJson(s);
    const rows: Array<[string, string]> = [
      ['mode', s.mode],
      ['cluster', s.cluster],
      ['bus', s.busUrl],
      ['cli socket', s.sockets.cli],
      ['adm socket', s.sockets.adm],
      ...(s.tcp ? ([['tcp', s.tcp]] as Array<[string, string]>) : []),
      ['pid', String(s.pid)],
      ['home', s.home],
      ['started', `${localIso(new Date(s.startedAt))} (${age(s.startedAt)} ago)`],
      ...(s.manager ? ([['manager', `${s.manager} (active)`]] as Array<[string, string]>) : []),
      ...(s.role ? ([['this host', `${s.node} (${s.role}${s.seed ? `, joined ${s.seed}` : ''})`]] as Array<[string, string]>) : []),
      ...(s.stateReplicas ? ([['state', `${s.stateReplicas} replica${s.stateReplicas > 1 ? 's' : ''} (one per manager host, up to 3)`]] as Array<[string, string]>) : []),
      ...(s.leaders?.state ? ([['leaders', `state ${s.leaders.state}, meta ${s.leaders.meta ?? '(electing)'} (JetStream servers)`]] as Array<[string, string]>) : []),
    ];
    out(rows.map(([k, v]) => `${`${k}:`.padEnd(12)}${v}`).join('\n'));
    out();
    // A multi-host cluster also shows each host's role (manager hosts hold the state).
    const member = s.mode === 'member';
    const nodes = s.nodes.map((n) => [n.name, String(n.pid ?? ''), n.gpus.join(',') || '-', n.free.join(',') || '-', `${n.free.length}/${n.gpus.length}`, n.state, ...(member ? [n.manager ? 'manager' : 'worker'] : [])]);
    out(table(['node', 'pid', 'gpus', 'free', 'free/total', 'state', ...(member ? ['role'] : [])], nodes));
    if (s.join) {
      out();
      out(`join other hosts with:\n  ${s.join}`);
    }
    if (s.processes?.length) {
      out();
      const procs = s.processes.map((p) => [p.name, String(p.pid ?? '-'), p.state, String(p.restarts)]);
      out(table(['process', 'pid', 'state', 'restarts'], procs));
    }
  });

cli
  .command('report', "Every user's GPU-time (GPU-hours), jobs and share of the cluster's GPU-time since a time")
  .option('--since <time>', 'From an ISO date/time or a duration ago (10m, 2h, 7d); default: since the first job')
  .option('-v, --verbose', 'Also a row per job')
  .option('--json', 'Print JSON')
  .example('  $ craneadm report --since 7d')
  .example('  $ craneadm report --since 2024-05-01T00:00 --json')
  .action(async (o: Opts) => {
    const { parseSince } = await import('./parse.js');
    const { withQuery } = await import('./client.js');
    const { reportText } = await import('./usage-format.js');
    const sinceArg = str(o.since);
    const since = sinceArg === undefined ? undefined : parseSince(sinceArg);
    const r = await admin(o).request<UsageReport>('GET', withQuery('/v1/admin/report', { since }));
    if (o.json) return printJson(r);
    out(reportText(r, !!o.verbose));
  });

cli.command('stop', 'Stop the cluster and wait until it is gone (at most 15 s)').action(async (o: Opts) => {
  const client = admin(o);
  await client.request('POST', '/v1/admin/stop');
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      await getStatus(client, 1000);
    } catch (e) {
      if (e instanceof ApiError && e.status === 0 && e.code === 'unavailable') {
        out('stopped');
        return;
      }
    }
    await sleep(100);
  }
  throw new Error(`the cluster still answers on ${client.target.address} after 15 s`);
});

cli
  .command('trace [SUBJECT]', 'Print the messages on the bus (all Crane subjects, or SUBJECT)')
  .option('--nats <url>', 'NATS URL (default: the bus of the running cluster)')
  .option('--json', 'One JSON object per message')
  .example('  $ craneadm trace')
  .example("  $ craneadm trace 'crane.*.job.>'")
  .action(async (subject: string | undefined, o: Opts) => {
    const natsUrl = str(o.nats) ?? (await getStatus(admin(o))).busUrl;
    const { runTrace } = await import('./trace.js');
    await runTrace({ subject, natsUrl, json: !!o.json });
  });

type Command = ReturnType<typeof cli.command>;

/** The options both local cluster modes take. */
function clusterOptions(cmd: Command): Command {
  return cmd
    .option('--detach', 'Start in the background and return once it is ready')
    .option('--state-dir <dir>', 'Where the cluster keeps its state (default $CRANE_HOME/state)')
    .option('--nats <url>', 'Use this NATS server instead of starting one')
    .option('--no-host-jobs', 'Refuse jobs that run as host processes (image "host")')
    .option('--cluster <name>', 'Cluster name (bus subject prefix)', { default: 'local' })
    .option('--token-ttl <duration>', 'How long a sign-in lasts: 30s, 10m, 2h, 1d (default 30d)')
    .option('--listen <ip:port>', 'Also serve the API on TCP (tokens required; admin routes need an admin token)')
    .option('--node-timeout <duration>', 'A node silent this long is lost and its jobs requeued (default 5s)')
    .option('--shrink-deadline <duration>', 'How long a job\'s AM has to give GPUs back when asked to shrink (default 30s)');
}

async function commonOptions(o: Opts) {
  const { resolve } = await import('node:path');
  const { parseDuration } = await import('./parse.js');
  const stateDir = str(o.stateDir);
  const tokenTtl = str(o.tokenTtl);
  const nodeTimeout = str(o.nodeTimeout);
  const shrinkDeadline = str(o.shrinkDeadline);
  const listen = str(o.listen);
  return {
    home: craneHome(),
    stateDir: stateDir === undefined ? undefined : resolve(stateDir),
    natsUrl: str(o.nats),
    hostJobs: o.hostJobs !== false,
    cluster: str(o.cluster),
    tokenTtlMs: tokenTtl === undefined ? undefined : parseDuration(tokenTtl, '--token-ttl'),
    nodeTimeoutMs: nodeTimeout === undefined ? undefined : parseDuration(nodeTimeout, '--node-timeout'),
    shrinkDeadlineMs: shrinkDeadline === undefined ? undefined : parseDuration(shrinkDeadline, '--shrink-deadline'),
    listen: listen === undefined ? undefined : parseListen(listen),
  };
}

clusterOptions(cli.command('standalone', 'Run a whole cluster in this process (foreground unless --detach)'))
  .option('--gpus <list>', 'GPUs to manage: a count (4) or indices (0,2,5); default: detected')
  .example('  $ craneadm standalone --detach --gpus 4')
  .example('  $ craneadm standalone --gpus 0,1 --state-dir /srv/crane')
  .action(async (o: Opts) => {
    const common = await commonOptions(o);
    if (o.detach) return detach(common.home, 'standalone');
    const { runStandalone } = await import('../actors/admin/standalone.js');
    const { info, stopped } = await runStandalone({ ...common, gpus: str(o.gpus) });
    printInfo(info, 'Crane standalone is ready');
    await stopped;
  });

clusterOptions(
  cli.command('pseudocluster', 'Run the gateway, the cluster manager and N node managers as separate processes'),
)
  .option('--nodes <n>', 'Number of node managers (node-1 ... node-N)', { default: 2 })
  .option('--gpus-per-node <g>', 'GPUs each node declares (indices 0..G-1)', { default: 2 })
  .option('--managers <m>', 'Cluster-manager processes: one active (it holds the lease), the others on standby', { default: 1 })
  .example('  $ craneadm pseudocluster --nodes 3 --gpus-per-node 2 --detach')
  .action(async (o: Opts) => {
    const count = (v: unknown, flag: string, min: number) => {
      const n = Number(str(v));
      if (!Number.isInteger(n) || n < min || n > 1000) throw new Error(`invalid ${flag} '${str(v)}': expected a whole number ${min}-1000`);
      return n;
    };
    const nodes = count(o.nodes, '--nodes', 1);
    const gpusPerNode = count(o.gpusPerNode, '--gpus-per-node', 0);
    const managers = count(o.managers, '--managers', 1);
    const common = await commonOptions(o);
    if (o.detach) return detach(common.home, 'pseudocluster', 60_000 + nodes * 500);
    const { runPseudocluster } = await import('../actors/admin/pseudocluster.js');
    const { info, stopped } = await runPseudocluster({ ...common, nodes, gpusPerNode, managers });
    printInfo(info, 'Crane pseudocluster is ready');
    await stopped;
  });

/** Starts this same command in the background (without --detach) and waits until it answers. */
async function detach(home: string, mode: string, timeoutMs = 60_000): Promise<void> {
  const fs = await import('node:fs');
  const { join } = await import('node:path');
  const { spawn } = await import('node:child_process');
  const adm = localSockets().adm;
  const client = new Client({ socketPath: adm, address: adm });
  const running = await getStatus(client, 2000).catch(() => undefined);
  if (running) return printInfo(running, `Crane ${running.mode} is already running`);

  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  const logPath = join(home, `${mode}.log`);
  const offset = fs.existsSync(logPath) ? fs.statSync(logPath).size : 0;
  const fd = fs.openSync(logPath, 'a', 0o600);
  const args = process.argv.slice(2).filter((a) => a !== '--detach' && !a.startsWith('--detach='));
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, CRANE_HOME: home },
  });
  fs.closeSync(fd);
  let exit: string | undefined;
  child.on('exit', (code, signal) => (exit = signal ? `signal ${signal}` : `code ${code}`));
  child.on('error', (e) => (exit = e.message));
  child.unref();

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exit !== undefined) {
      const log = fs.readFileSync(logPath).subarray(offset).toString('utf8').trimEnd().split('\n').slice(-20);
      if (log.join('').trim()) warn(log.join('\n'));
      throw new ExitError(1, `the cluster exited (${exit}) before it was ready; log: ${logPath}`);
    }
    const s = await getStatus(client, 1000).catch(() => undefined);
    if (s) return printInfo(s, `Crane ${s.mode} is ready`);
    await sleep(50);
  }
  throw new Error(`the cluster (pid ${child.pid}) did not answer within ${Math.round(timeoutMs / 1000)} s; log: ${logPath}`);
}

// ---- multi-host: init / join / leave -----------------------------------------------------------

async function memberPaths() {
  const { memberStateDir, runDir } = await import('./paths.js');
  return { runDir: runDir(), stateDir: memberStateDir() };
}

/** Refuses to init or join a host that already belongs to a cluster. */
async function assertNotMember(paths: { runDir: string; stateDir: string }): Promise<void> {
  const { readMember } = await import('../actors/admin/member-host.js');
  const m = readMember(paths);
  if (m) throw new Error(`this host is already a member of cluster '${m.cluster}' as ${m.role} ${m.node} (craneadm status; craneadm leave)`);
}

/** Starts crane-admind in the background and waits until its admin socket answers. */
async function startDaemon(paths: { runDir: string; stateDir: string }): Promise<Status> {
  const fs = await import('node:fs');
  const { join } = await import('node:path');
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const { standardSockets } = await import('./paths.js');
  const adm = standardSockets().adm;
  const logPath = join(paths.stateDir, 'admind.log');
  const offset = fs.existsSync(logPath) ? fs.statSync(logPath).size : 0;
  const fd = fs.openSync(logPath, 'a', 0o600);
  const child = spawn(process.execPath, [fileURLToPath(new URL('./crane-admind.js', import.meta.url))], { detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  let exit: string | undefined;
  child.on('exit', (code, signal) => (exit = signal ? `signal ${signal}` : `code ${code}`));
  child.unref();
  const client = new Client({ socketPath: adm, address: adm });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exit !== undefined) {
      const lines = fs.readFileSync(logPath).subarray(offset).toString('utf8').trimEnd().split('\n');
      const why = lines.reverse().find((l) => l.startsWith('error: '));
      throw new Error(why ? why.slice(7) : `crane-admind exited (${exit}); log: ${logPath}`);
    }
    const s = await getStatus(client, 1000).catch(() => undefined);
    if (s) return s;
    await sleep(100);
  }
  child.kill();
  throw new Error(`crane-admind did not answer within 60 s; log: ${logPath}`);
}

function nodeOptions(cmd: Command): Command {
  return cmd
    .option('--gpus <list>', 'GPUs this host gives the cluster: a count (4) or indices (0,2,5); default: detected')
    .option('--name <node>', 'This node\'s name (default: the host name)')
    .option('--no-host-jobs', 'Refuse jobs that run as host processes (image "host")');
}

async function nodeFields(o: Opts) {
  const { parseGpuList, detectsGpus } = await import('../actors/node-manager/gpus.js');
  const { hostNodeName } = await import('../actors/admin/standalone.js');
  const node = str(o.name) ?? hostNodeName();
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(node)) throw new Error(`invalid --name '${node}': letters, digits, '_' and '-'`);
  const gpusArg = str(o.gpus);
  return { node, gpus: parseGpuList(gpusArg ?? ''), gpusDetected: detectsGpus(gpusArg), hostJobs: o.hostJobs !== false };
}

function port(v: unknown, flag: string, dflt: number): number {
  const n = Number(str(v) ?? dflt);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`invalid ${flag} '${str(v)}': expected a port 1-65535`);
  return n;
}


nodeOptions(cli.command('init', 'Make this host the first node (and manager) of a new multi-host cluster'))
  .option('--advertise <ip>', 'Address the other hosts reach this one at (default: the first non-loopback IPv4)')
  .option('--leaf-port <port>', 'Port the other hosts connect to', { default: 7422 })
  .option('--cluster <name>', 'Cluster name (bus subject prefix)', { default: 'crane' })
  .option('--ha', 'Up to three manager hosts (join --manager) share a replicated JetStream: the cluster survives a manager host')
  .option('--route-port <port>', 'With --ha: the port manager hosts route to each other on', { default: 6222 })
  .example('  $ craneadm init --advertise 10.0.0.5 --gpus 0,1,2,3')
  .example('  $ craneadm init --ha --advertise 10.0.0.5      # then: craneadm join --manager ... on two more hosts')
  .action(async (o: Opts) => {
    const { isIP } = await import('node:net');
    const { DEFAULT_LEAF_PORT, DEFAULT_ROUTE_PORT, defaultAdvertise, joinCommand, newSecret } = await import('../actors/admin/membership.js');
    const { forgetMember, writeMember } = await import('../actors/admin/member-host.js');
    const paths = await memberPaths();
    await assertNotMember(paths);
    const advertise = str(o.advertise) ?? defaultAdvertise();
    if (!isIP(advertise)) throw new Error(`invalid --advertise '${advertise}': expected an IP address`);
    const leafPort = port(o.leafPort, '--leaf-port', DEFAULT_LEAF_PORT);
    const cluster = str(o.cluster) ?? 'crane';
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(cluster)) throw new Error(`invalid --cluster '${cluster}': letters, digits, '_' and '-'`);
    const ha = !!o.ha;
    const routePort = ha ? port(o.routePort, '--route-port', DEFAULT_ROUTE_PORT) : undefined;
    const m = { cluster, ...(await nodeFields(o)), role: 'manager' as const, user: 'crane', secret: newSecret(), leafPort, advertise, ha, routePort, version: CRANE_VERSION, joinedAt: new Date().toISOString() };
    writeMember(paths, m);
    try {
      await startDaemon(paths);
    } catch (err) {
      forgetMember(paths, false);
      throw err;
    }
    out(`Crane cluster '${cluster}' initialised: ${m.node} is its manager (${m.gpus.length} GPUs)`);
    if (ha) out('HA: the state is kept in memory until a second manager joins (craneadm join --manager), then replicated');
    out(`root password: ${paths.stateDir}/root-password`);
    out('Join other hosts with:');
    out(`  ${joinCommand(m)}`);
  });

nodeOptions(cli.command('join <TOKEN> <HOST:PORT>', 'Make this host a node of the cluster whose manager printed TOKEN'))
  .option('--manager', 'Join as a manager host (an --ha cluster): it holds a JetStream replica and can take over the cluster manager')
  .option('--advertise <ip>', 'With --manager (or for a later promote): the address the other hosts reach this one at')
  .option('--leaf-port <port>', 'With --manager (or for a later promote): the port worker hosts may connect to', { default: 7422 })
  .option('--route-port <port>', 'With --manager (or for a later promote): the port manager hosts route to each other on', { default: 6222 })
  .example('  $ craneadm join crane1.eyJ2Ijoi... 10.0.0.5:7422 --gpus 2')
  .example('  $ craneadm join --manager crane1.eyJ2Ijoi... 10.0.0.5:7422')
  .action(async (token: string, seed: string, o: Opts) => {
    const { checkVersion, decodeToken, defaultAdvertise, parseSeed, DEFAULT_LEAF_PORT, DEFAULT_ROUTE_PORT } = await import('../actors/admin/membership.js');
    const { forgetMember, writeMember } = await import('../actors/admin/member-host.js');
    const t = decodeToken(token);
    checkVersion(t);
    parseSeed(seed);
    const paths = await memberPaths();
    await assertNotMember(paths);
    const fields = await nodeFields(o);
    const common = { cluster: t.cluster, ...fields, user: t.user, secret: t.secret, seed, version: CRANE_VERSION, joinedAt: new Date().toISOString() };
    const { isIP } = await import('node:net');
    const advertiseArg = str(o.advertise);
    if (advertiseArg !== undefined && !isIP(advertiseArg)) throw new Error(`invalid --advertise '${advertiseArg}': expected an IP address`);
    const leafPort = port(o.leafPort, '--leaf-port', DEFAULT_LEAF_PORT);
    const routePort = port(o.routePort, '--route-port', DEFAULT_ROUTE_PORT);
    if (o.manager) {
      if (!t.route) throw new Error('this cluster has one manager host (it was not started with craneadm init --ha): join without --manager');
      const advertise = advertiseArg ?? defaultAdvertise();
      writeMember(paths, { ...common, role: 'manager', ha: true, advertise, leafPort, routePort, seedRoute: t.route });
    } else if (t.route) {
      // A worker of an HA cluster: what `craneadm promote` needs later (the route its token carried).
      writeMember(paths, { ...common, role: 'worker', ha: true, seedRoute: t.route, advertise: advertiseArg, leafPort, routePort });
    } else {
      writeMember(paths, { ...common, role: 'worker', leafPort: 0 });
    }
    try {
      await startDaemon(paths);
    } catch (err) {
      forgetMember(paths, false);
      throw err;
    }
    out(`${fields.node} joined cluster '${t.cluster}'${o.manager ? ' as a manager' : ''} (${fields.gpus.length} GPUs)`);
  });

cli
  .command('leave', 'Take this host out of its cluster (its running jobs are requeued with --force)')
  .option('--force', 'Requeue the jobs running here; needed on the manager host, which stops the cluster')
  .option('--persist', 'Keep this host\'s cluster state and logs on disk')
  .action(async (o: Opts) => {
    const paths = await memberPaths();
    const { readMember } = await import('../actors/admin/member-host.js');
    const m = readMember(paths);
    if (!m) throw new Error('this host is not a member of a cluster');
    const { standardSockets } = await import('./paths.js');
    const adm = standardSockets().adm;
    const client = new Client({ socketPath: adm, address: adm });
    const r = await client.request<{ requeued?: string[] }>('POST', '/v1/admin/leave', { force: !!o.force, persist: !!o.persist });
    const { socketAnswers } = await import('../actors/admin/local-cluster.js');
    for (let i = 0; i < 300 && (await socketAnswers(adm, 500)); i++) await sleep(100);
    const requeued = r?.requeued ?? [];
    out(`${m.node} left cluster '${m.cluster}'${requeued.length ? `; requeued: ${requeued.join(', ')}` : ''}`);
  });

for (const verb of ['promote', 'demote'] as const) {
  const role = verb === 'promote' ? 'manager' : 'worker';
  cli
    .command(
      `${verb} <NODE>`,
      verb === 'promote'
        ? 'Make NODE a manager host of an --ha cluster (a JetStream replica, a cluster-manager candidate)'
        : 'Make manager host NODE a worker (the lease and its state replica move to the other managers)',
    )
    .option('--force', 'Requeue the jobs running on NODE (its node manager restarts, which would kill them)')
    .option('--json', 'Print JSON')
    .example(`  $ craneadm ${verb} host2`)
    .action(async (node: string, o: Opts) => {
      const client = admin(o);
      const r = await client.request<{ requeued: string[] }>('POST', `/v1/admin/nodes/${encodeURIComponent(node)}/${verb}`, { force: !!o.force }, { timeoutMs: 150_000 });
      // The host restarts its bus and components in the new role: wait until it is READY again.
      const deadline = Date.now() + 60_000;
      let s: Status | undefined;
      for (;;) {
        s = await getStatus(client, 5_000).catch(() => undefined);
        const n = s?.nodes.find((x) => x.name === node);
        if (n?.state === 'READY' && !!n.manager === (role === 'manager')) break;
        if (Date.now() > deadline) throw new Error(`${node} did not come back as a ${role} host within 60 s: craneadm status, and its $CRANE_STATE_DIR/admind.log`);
        await sleep(250);
      }
      if (o.json) return printJson({ node, role, requeued: r.requeued, stateReplicas: s?.stateReplicas });
      const requeued = r.requeued.length ? `; requeued: ${r.requeued.join(', ')}` : '';
      out(`${node} is a ${role} host now${requeued}`);
    });
}

cli.command('daemon', 'Run crane-admind (this host\'s member of a multi-host cluster) in the foreground').action(async () => {
  const { runMember } = await import('../actors/admin/member-host.js');
  const h = await runMember(await memberPaths());
  out(`crane-admind ready: ${h.info.role} ${h.info.node} of cluster ${h.info.cluster}`);
  await h.stopped;
});

// ---- endpoint ---------------------------------------------------------------------------------

cli.command('endpoint get', 'Show where craneadm connects').action((o: Opts) => {
  const cfg = loadConfig();
  const t = resolveTarget('adm', { socketPath: str(o.socketPath), useLocalCrane: !!o.useLocalCrane }, cfg);
  out(`endpoint: ${cfg.admEndpoint ?? 'default'}\naddress:  ${t.address} (${t.source})`);
});

cli
  .command('endpoint set <ENDPOINT>', 'Set where craneadm connects: standard, local, IP:PORT (or default)')
  .action((endpoint: string) => {
    const cfg = loadConfig();
    if (endpoint === 'default') delete cfg.admEndpoint;
    else cfg.admEndpoint = validateEndpoint(endpoint);
    saveConfig(cfg);
    out(`endpoint set to ${endpoint}`);
  });

cli.help(trimHelp);
cli.version(CRANE_VERSION);

main(() => runCli(cli, process.argv.slice(2), ['--socket-path']));
