#!/usr/bin/env node
/** `craneadm`: the admin CLI (users, cluster status, stop, trace, standalone). */
import { cac } from 'cac';
import type { StandaloneInfo } from '../actors/admin/standalone.js';
import { CRANE_VERSION, type NodeInfo, type UserInfo } from '../actors/protocol.js';
import { ExitError, main, out, printJson, runCli, trimHelp, warn } from './app.js';
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
    out(table(['username', 'id', 'admin'], users.map((u) => [u.username, u.id, u.isAdmin ? 'yes' : ''])));
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
    ];
    out(rows.map(([k, v]) => `${`${k}:`.padEnd(12)}${v}`).join('\n'));
    out();
    const nodes = s.nodes.map((n) => [n.name, String(n.pid ?? ''), n.gpus.join(',') || '-', n.free.join(',') || '-', `${n.free.length}/${n.gpus.length}`, n.state]);
    out(table(['node', 'pid', 'gpus', 'free', 'free/total', 'state'], nodes));
    if (s.processes?.length) {
      out();
      const procs = s.processes.map((p) => [p.name, String(p.pid ?? '-'), p.state, String(p.restarts)]);
      out(table(['process', 'pid', 'state', 'restarts'], procs));
    }
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
    .option('--node-timeout <duration>', 'A node silent this long is lost and its jobs requeued (default 5s)');
}

async function commonOptions(o: Opts) {
  const { resolve } = await import('node:path');
  const { parseDuration } = await import('./parse.js');
  const stateDir = str(o.stateDir);
  const tokenTtl = str(o.tokenTtl);
  const nodeTimeout = str(o.nodeTimeout);
  const listen = str(o.listen);
  return {
    home: craneHome(),
    stateDir: stateDir === undefined ? undefined : resolve(stateDir),
    natsUrl: str(o.nats),
    hostJobs: o.hostJobs !== false,
    cluster: str(o.cluster),
    tokenTtlMs: tokenTtl === undefined ? undefined : parseDuration(tokenTtl, '--token-ttl'),
    nodeTimeoutMs: nodeTimeout === undefined ? undefined : parseDuration(nodeTimeout, '--node-timeout'),
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
    if (o.detach) return detach(common.home, 'pseudocluster');
    const { runPseudocluster } = await import('../actors/admin/pseudocluster.js');
    const { info, stopped } = await runPseudocluster({ ...common, nodes, gpusPerNode, managers });
    printInfo(info, 'Crane pseudocluster is ready');
    await stopped;
  });

/** Starts this same command in the background (without --detach) and waits until it answers. */
async function detach(home: string, mode: string): Promise<void> {
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

  const deadline = Date.now() + 60_000;
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
  throw new Error(`the cluster (pid ${child.pid}) did not answer within 60 s; log: ${logPath}`);
}

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
