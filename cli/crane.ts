#!/usr/bin/env node
/** `crane`: the user CLI (reference §4). */
import { existsSync } from 'node:fs';
import { cac } from 'cac';
import { ACTIVE_STATES, CRANE_VERSION, TERMINAL_STATES } from '../actors/protocol.js';
import type { JobSpec, JobUsage, JobView, LogLine, ResourceSummary, UsageReport, UserInfo } from '../actors/protocol.js';
import { ExitError, main, out, printJson, runCli, trimHelp, UsageError, warn } from './app.js';
import { registerCargoCommands } from './crane-cargo.js';
import { ApiError, Client, withQuery } from './client.js';
import { loadConfig, resolveTarget, resolveToken, saveConfig, validateEndpoint, type CraneConfig, type Target } from './config.js';
import { colorEnabled, jobRows, localIso, palette, sortNewestFirst, table, toYaml } from './format.js';
import { parseEnvs, parseMount, parsePort, parseResource, parseShmSize, parseSince, parsePriority } from './parse.js';
import { jobUsageText, resourceUsageText } from './usage-format.js';

type Opts = Record<string, unknown> & { socketPath?: string; useLocalCrane?: boolean };

/** One string from an option (the last one if repeated); undefined when absent. */
const str = (v: unknown): string | undefined =>
  v === undefined || v === null || typeof v === 'boolean' ? undefined : Array.isArray(v) ? str(v.at(-1)) : String(v);
/** All values of a repeatable option. */
const strs = (v: unknown): string[] => (v === undefined || v === null ? [] : (Array.isArray(v) ? v : [v]).map(String));
const enc = encodeURIComponent;

interface Session {
  client: Client;
  target: Target;
  cfg: CraneConfig;
}

function connect(o: Opts, auth = true): Session {
  const cfg = loadConfig();
  const target = resolveTarget('cli', { socketPath: str(o.socketPath), useLocalCrane: !!o.useLocalCrane }, cfg);
  if (!auth) return { client: new Client(target), target, cfg };
  const token = resolveToken(target, cfg);
  if (!token) {
    // No cluster there at all says more than "not signed in".
    if (target.socketPath && !existsSync(target.socketPath)) throw new Error(`cannot reach the cluster at ${target.address}: start it with craneadm standalone`);
    throw new Error(`not signed in to ${target.address}: run crane user signin -u NAME`);
  }
  const stored = cfg.tokens[target.key];
  if (!process.env.CRANE_TOKEN && stored && Date.parse(stored.expiresAt) < Date.now()) {
    throw new Error(`the session of ${stored.username} expired: run crane user signin -u ${stored.username}`);
  }
  return { client: new Client(target, token), target, cfg };
}

/** Wraps an action: a 401 from the server gets a hint to sign in again. */
function act<A extends unknown[]>(fn: (...args: A) => Promise<void>) {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && !/sign ?in/.test(e.message)) throw new Error(`${e.message} (sign in with: crane user signin -u NAME)`);
      throw e;
    }
  };
}

async function listJobs(client: Client, q: { q?: string; tags?: string[]; states?: readonly string[] }): Promise<JobView[]> {
  const path = withQuery('/v1/jobs', { q: q.q || undefined, tag: q.tags, state: q.states ? [...q.states] : undefined });
  return (await client.request<{ jobs: JobView[] }>('GET', path)).jobs;
}

async function readPassword(fromStdin: boolean): Promise<string> {
  const { promptHidden, readStdin } = await import('./prompt.js');
  const pw = !fromStdin && process.stdin.isTTY ? await promptHidden('Password: ') : await readStdin();
  if (!pw) throw new Error('empty password');
  return pw;
}

const cli = cac('crane');
cli.option('--socket-path <path>', 'Connect to this unix socket (env CRANE_SOCKET)');
cli.option('--use-local-crane', 'Connect to the local cluster in $CRANE_HOME (default ~/.crane)');
cli.example('  $ crane user signin -u alice');
cli.example('  $ crane job add pytorch/pytorch 1:2:4 -c "python train.py" -n train');
cli.example('  $ crane job list');
cli.example('  $ crane job log -f train');

// ---- user -------------------------------------------------------------------------------------

cli
  .command('user signin', 'Sign in and keep the session token for this endpoint')
  .option('-u, --username <name>', 'User name')
  .option('--password-stdin', 'Read the password from stdin')
  .example('  $ crane user signin -u alice')
  .example('  $ printf %s "$PASSWORD" | crane user signin -u alice --password-stdin')
  .action(async (o: Opts) => {
      const username = str(o.username);
      if (!username) throw new UsageError('missing -u NAME');
      const password = await readPassword(!!o.passwordStdin);
      const { client, target, cfg } = connect(o, false);
      const r = await client.request<{ token: string; expiresAt: string; user: UserInfo }>('POST', '/v1/auth/signin', {
        username,
        password,
      });
      cfg.tokens[target.key] = { token: r.token, username: r.user.username, expiresAt: r.expiresAt };
      saveConfig(cfg);
      out(`Signed in as ${r.user.username}`);
    });

cli
  .command('user signout', 'Sign out: revoke the session and forget its token')
  .action(async (o: Opts) => {
    const { client, target, cfg } = connect(o, false);
    const stored = cfg.tokens[target.key];
    if (!stored) {
      out('Not signed in.');
      return;
    }
    const authed = new Client(client.target, stored.token);
    await authed.request('POST', '/v1/auth/signout', undefined, { timeoutMs: 3000 }).catch(() => undefined);
    delete cfg.tokens[target.key];
    saveConfig(cfg);
    out(`Signed out ${stored.username}.`);
  });

cli
  .command('user whoami', 'Show the signed-in user')
  .option('--json', 'Print JSON')
  .action(
    act(async (o: Opts) => {
      const me = await connect(o).client.request<UserInfo>('GET', '/v1/me');
      if (o.json) return printJson(me);
      out(`id: ${me.id}\nusername: ${me.username}${me.isAdmin ? `\t${palette(colorEnabled()).brightRed('[ADMIN]')}` : ''}`);
    }),
  );

// ---- resource ---------------------------------------------------------------------------------

cli
  .command('resource all', 'Show free and busy GPUs')
  .option('-v, --verbose', 'List every GPU with its state and owner job')
  .option('--json', 'Print JSON')
  .example('  $ crane resource all -v')
  .action(
    act(async (o: Opts) => {
      const r = await connect(o).client.request<ResourceSummary>('GET', '/v1/resources');
      if (o.json) return printJson(r);
      out(`Free: ${r.free} / Busy: ${r.busy}`);
      if (!o.verbose) return;
      const rows = r.nodes.flatMap((n) =>
        n.gpus.map((g) => [
          n.name,
          String(g),
          n.state === 'LOST' ? 'lost' : n.free.includes(g) ? 'free' : 'busy',
          n.ownerLabels?.[g] ?? n.owners[g]?.slice(0, 8) ?? '',
        ]),
      );
      out();
      out(table(['node', 'gpu', 'state', 'owner'], rows));
    }),
  );

cli
  .command('resource usage', 'Show your GPU-time (GPU-hours) since a time; an admin sees every user')
  .option('--since <time>', 'From an ISO date/time or a duration ago (10m, 2h, 7d); default: since the first job')
  .option('-v, --verbose', 'Also a row per job')
  .option('--json', 'Print JSON')
  .example('  $ crane resource usage --since 7d')
  .example('  $ crane resource usage --since 2024-05-01 -v')
  .action(
    act(async (o: Opts) => {
      const sinceArg = str(o.since);
      const since = sinceArg === undefined ? undefined : parseSince(sinceArg);
      const r = await connect(o).client.request<UsageReport>('GET', withQuery('/v1/usage', { since }));
      if (o.json) return printJson(r);
      out(resourceUsageText(r, !!o.verbose));
    }),
  );

// ---- job --------------------------------------------------------------------------------------

cli
  .command('job add <IMAGE> <RESOURCE>', 'Launch a job: IMAGE (or "host") with RESOURCE = APP[:MIN[:MAX]] GPUs')
  .option('-c, --cmd <cmd>', 'Command to run (default: the image command)')
  .option('-e, --env <KEY=VALUE>', 'Environment variable (repeatable)')
  .option('-m, --mount <HOST:CONTAINER[:ro|rw]>', 'Bind mount (repeatable)')
  .option('-p, --port <port>', 'Container port to open (repeatable)')
  .option('--shm-size <size>', '/dev/shm size: number with unit b, k, m or g', { default: '64m' })
  .option('-n, --name <name>', 'Job name, unique per user (default: generated)')
  .option('-t, --tag <tag>', 'Tag (repeatable)')
  .option('--priority <n>', 'Order among your own queued jobs: higher first (-1000..1000, default 0)')
  .option('--shell', 'Run the command through sh -c')
  .option('--no-init', 'Do not run an init process in the container')
  .option('--json', 'Print JSON')
  .example('  $ crane job add pytorch/pytorch 1 -c "python train.py" -m .:/work -e EPOCHS=10')
  .example('  $ crane job add my/image 1:2:8 -n elastic -t exp1     # AM 1 GPU, min 2, max 8')
  .example('  $ crane job add host 0:1 -c "nvidia-smi; sleep 60" --shell')
  .action(
    act(async (image: string, resource: string, o: Opts) => {
      const spec: JobSpec = {
        name: str(o.name),
        tags: strs(o.tag),
        resources: parseResource(resource),
        priority: parsePriority(str(o.priority)),
        am: {
          image,
          cmd: str(o.cmd),
          shell: !!o.shell,
          init: o.init !== false,
          env: parseEnvs(strs(o.env)),
          mounts: strs(o.mount).map((m) => parseMount(m)),
          ports: strs(o.port).map(parsePort),
          shmSize: parseShmSize(str(o.shmSize) ?? '64m'),
        },
      };
      const r = await connect(o).client.request<{ id: string; name: string; addedAt: string }>('POST', '/v1/jobs', spec);
      if (o.json) return printJson(r);
      out(`Job ID:   ${r.id}\nJob name: ${r.name}\nAdd time: ${localIso(new Date(r.addedAt))}`);
    }),
  );

cli
  .command('job list [ID_OR_NAME]', 'List jobs (active ones unless --all), newest first')
  .alias('job ls')
  .option('-t, --tag <tag>', 'Only jobs with this tag (repeatable: all must match)')
  .option('-a, --all', 'Jobs in any state')
  .option('-q, --quiet', 'Print job ids only')
  .option('--json', 'Print JSON')
  .example('  $ crane job list -a -t exp1')
  .action(
    act(async (ref: string | undefined, o: Opts) => {
      const jobs = sortNewestFirst(
        await listJobs(connect(o).client, { q: ref, tags: strs(o.tag), states: o.all ? undefined : ACTIVE_STATES }),
      );
      if (o.json) return printJson(jobs);
      if (!jobs.length) return warn('No jobs found.');
      if (o.quiet) return out(jobs.map((j) => j.id).join('\n'));
      out(table(['name', 'tags', 'created', 'status', 'gpu'], jobRows(jobs, Date.now(), palette(colorEnabled()))));
    }),
  );

cli
  .command('job inspect <ID_OR_NAME>', 'Show everything about one job (YAML)')
  .option('--json', 'Print JSON')
  .action(
    act(async (ref: string, o: Opts) => {
      const job = await connect(o).client.request<JobView>('GET', `/v1/jobs/${enc(ref)}`);
      if (o.json) return printJson(job);
      process.stdout.write(await toYaml(job));
    }),
  );

cli
  .command('job kill [ID_OR_NAME]', 'Kill active jobs (no filter: all your active jobs)')
  .option('-t, --tag <tag>', 'Only jobs with this tag (repeatable)')
  .option('--force', 'SIGKILL at once instead of SIGTERM then SIGKILL')
  .option('-y, --yes', 'Do not ask for confirmation')
  .example('  $ crane job kill train')
  .example('  $ crane job kill -t exp1 -y')
  .action(
    act(async (ref: string | undefined, o: Opts) => {
      const { client } = connect(o);
      let jobs = await listJobs(client, { q: ref, tags: strs(o.tag), states: ACTIVE_STATES });
      const exact = jobs.filter((j) => j.id === ref || j.name === ref);
      if (exact.length) jobs = exact;
      if (!jobs.length) {
        if (ref) {
          // Killing a job that already ended is not an error: say so (the lookup gives not-found or ambiguity).
          const job = await client.request<JobView>('GET', `/v1/jobs/${enc(ref)}`);
          return out(`Job ${job.name} already ended (${job.state}); nothing to kill.`);
        }
        return warn('No active jobs found.');
      }
      if (!o.yes) {
        if (!process.stdin.isTTY) throw new Error('refusing to kill without confirmation: pass -y');
        warn('The following jobs will be killed:');
        for (const j of jobs) warn(`  ${j.id}  ${j.name}  ${j.state}`);
        const { confirm } = await import('./prompt.js');
        if (!(await confirm(`Kill ${jobs.length} job(s)? [y/N] `))) throw new ExitError(1, 'aborted');
      }
      let killed = 0;
      for (const j of jobs) {
        try {
          await client.request('POST', withQuery(`/v1/jobs/${enc(j.id)}/kill`, { force: String(!!o.force) }));
          killed++;
        } catch (e) {
          warn(`error: ${j.name}: ${(e as Error).message}`);
        }
      }
      out(`Killed ${killed} job(s).`);
      if (killed < jobs.length) throw new ExitError(1);
    }),
  );

cli
  .command('job rm [...ID_OR_NAME]', 'Remove finished jobs and their logs (--force: running ones too)')
  .alias('job remove')
  .option('-t, --tag <tag>', 'Remove the jobs with this tag (repeatable: all must match)')
  .option('--force', 'Kill the job first if it is still active')
  .example('  $ crane job rm train eval')
  .example('  $ crane job rm -t exp1 --force')
  .action(
    act(async (refs: string[], o: Opts) => {
      const tags = strs(o.tag);
      if (!refs.length && !tags.length) throw new UsageError('name the jobs to remove: ID_OR_NAME... or -t TAG');
      const { client } = connect(o);
      let targets = refs;
      if (tags.length) {
        const found = new Set<string>();
        for (const q of refs.length ? refs : [undefined]) for (const j of await listJobs(client, { q, tags })) found.add(j.id);
        targets = [...found];
        if (!targets.length) return warn('No jobs found.');
      }
      let failed = 0;
      for (const ref of targets) {
        try {
          const r = await client.request<{ id: string }>('DELETE', withQuery(`/v1/jobs/${enc(ref)}`, { force: String(!!o.force) }));
          out(r.id);
        } catch (e) {
          warn(`error: ${(e as Error).message}`);
          failed++;
        }
      }
      if (failed) throw new ExitError(1);
    }),
  );

cli
  .command('job log <ID_OR_NAME>', "Print a job's output")
  .alias('job logs')
  .option('-f, --follow', 'Keep printing new lines until the job ends')
  .option('--stdout', 'Only the standard output')
  .option('--stderr', 'Only the standard error')
  .option('--timestamp', 'Prefix each line with its time (ISO-8601)')
  .option('--since <time>', 'Lines since an ISO date/time or a duration ago (30s, 10m, 2h, 1d)')
  .example('  $ crane job log -f train')
  .example('  $ crane job log train --stderr --since 10m')
  .action(
    act(async (ref: string, o: Opts) => {
      if (o.stdout && o.stderr) throw new UsageError('use either --stdout or --stderr, not both');
      const sinceArg = str(o.since);
      const since = sinceArg === undefined ? undefined : parseSince(sinceArg);
      const { client } = connect(o);
      const job = await client.request<JobView>('GET', `/v1/jobs/${enc(ref)}`);
      if (job.state === 'QUEUED' && !o.follow) warn(`job ${job.name} is queued: no output yet`);
      const path = withQuery(`/v1/jobs/${enc(job.id)}/logs`, {
        follow: String(!!o.follow),
        since,
        source: o.stdout ? 'stdout' : o.stderr ? 'stderr' : undefined,
      });
      const color = colorEnabled();
      const { red } = palette(color);
      const seen = new Set<string>();
      for await (const l of client.stream<LogLine>('GET', path)) {
        if (l.container) seen.add(l.container);
        const multi = !!l.container && (seen.size > 1 || (!!job.am && l.container !== job.am.container));
        const text = l.src === 'stderr' ? (color ? red(l.line) : `[stderr] ${l.line}`) : l.line;
        out(`${o.timestamp ? `${new Date(l.t).toISOString()} ` : ''}${multi ? `${l.container} | ` : ''}${text}`);
      }
    }),
  );

cli
  .command('job wait <ID_OR_NAME>', "Wait for a job to end; exit with the job's exit code")
  .option('--json', 'Print the final job as JSON')
  .example('  $ crane job wait train && echo trained')
  .action(
    act(async (ref: string, o: Opts) => {
      let last: JobView | undefined;
      for await (const item of connect(o).client.stream<JobView>('GET', `/v1/jobs/${enc(ref)}/wait`)) last = item;
      if (!last?.state || !TERMINAL_STATES.includes(last.state)) throw new Error('the wait stream ended before the job finished');
      if (o.json) printJson(last);
      const exit = last.exitCode !== undefined ? ` exit ${last.exitCode}` : '';
      warn(`${last.name} ${last.state}${exit}${last.reason && last.state !== 'DONE' ? ` (${last.reason})` : ''}`);
      const code = last.state === 'DONE' ? 0 : last.state === 'ERROR' && last.exitCode! > 0 && last.exitCode! < 256 ? last.exitCode! : 1;
      if (code) throw new ExitError(code);
    }),
  );

cli
  .command('job usage <ID_OR_NAME>', "Show a job's GPUs with their utilisation and memory, and its GPU-seconds")
  .option('--json', 'Print JSON')
  .example('  $ crane job usage train')
  .example('  $ crane job usage train --json | jq .gpuSeconds')
  .action(
    act(async (ref: string, o: Opts) => {
      const u = await connect(o).client.request<JobUsage>('GET', `/v1/jobs/${enc(ref)}/usage`);
      if (o.json) return printJson(u);
      out(jobUsageText(u));
    }),
  );

// ---- an app manager's API: cargos, events, pause / resume, release -------------------------------

registerCargoCommands(cli, { connect, act });

// ---- endpoint ---------------------------------------------------------------------------------

cli.command('endpoint get', 'Show where crane connects').action((o: Opts) => {
  const cfg = loadConfig();
  const t = resolveTarget('cli', { socketPath: str(o.socketPath), useLocalCrane: !!o.useLocalCrane }, cfg);
  out(`endpoint: ${cfg.endpoint ?? 'default'}\naddress:  ${t.address} (${t.source})`);
});

cli
  .command('endpoint set <ENDPOINT>', 'Set where crane connects: standard, local, IP:PORT (or default)')
  .example('  $ crane endpoint set local')
  .example('  $ crane endpoint set 10.0.0.5:7070')
  .action((endpoint: string) => {
    const cfg = loadConfig();
    if (endpoint === 'default') delete cfg.endpoint;
    else cfg.endpoint = validateEndpoint(endpoint);
    saveConfig(cfg);
    out(`endpoint set to ${endpoint}`);
  });

cli.help(trimHelp);
cli.version(CRANE_VERSION);

main(() => runCli(cli, process.argv.slice(2), ['--socket-path']));
