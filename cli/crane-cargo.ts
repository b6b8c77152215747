/**
 * `crane cargo ...` and the AM's job verbs (`job events`, `job pause`, `job resume`, `job
 * release`): the API an app manager uses from inside its container, where CRANE_JOB_ID,
 * CRANE_SOCKET and CRANE_TOKEN name its job, the cluster and its own token.
 */
import type { CAC } from 'cac';
import type { CargoContainerSpec, CargoView, ContainerConfig, Grant, JobEvent, JobView, LogLine } from '../actors/protocol.js';
import { out, printJson, UsageError, warn } from './app.js';
import type { Client } from './client.js';
import { withQuery } from './client.js';
import { age, colorEnabled, palette, table, toYaml } from './format.js';
import { parseEnvs } from './parse.js';

type Opts = Record<string, unknown>;

export interface CargoCliDeps {
  connect(o: Opts): { client: Client };
  act<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void>;
}

const str = (v: unknown): string | undefined =>
  v === undefined || v === null || typeof v === 'boolean' ? undefined : Array.isArray(v) ? str(v.at(-1)) : String(v);
const strs = (v: unknown): string[] => (v === undefined || v === null ? [] : (Array.isArray(v) ? v : [v]).map(String));
const enc = encodeURIComponent;

/** The job a cargo command is about: --job, else the AM's own (CRANE_JOB_ID). */
function jobRef(o: Opts): string {
  const ref = str(o.job) ?? process.env.CRANE_JOB_ID;
  if (!ref) throw new UsageError('name the job: --job JOB (inside an app manager, CRANE_JOB_ID names it)');
  return ref;
}

function count(v: string | undefined, flag: string, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > 256) throw new UsageError(`invalid ${flag} '${v}': expected a whole number ${min}-256`);
  return n;
}

/** `node:0,1` (repeatable) -> { node: [0, 1] }. */
export function parseGrant(list: readonly string[]): Grant {
  const g: Grant = {};
  for (const s of list) {
    const m = /^([A-Za-z0-9_.-]+):(\d+(?:,\d+)*)$/.exec(s);
    if (!m) throw new UsageError(`invalid GPUs '${s}': expected NODE:INDEX[,INDEX...], e.g. node-1:0,1`);
    g[m[1]!] = [...new Set([...(g[m[1]!] ?? []), ...m[2]!.split(',').map(Number)])];
  }
  return g;
}

const showGrant = (g: Grant) =>
  Object.entries(g)
    .map(([n, xs]) => `${n}:${xs.join(',')}`)
    .join(' ') || '-';

function cargoRows(cargos: CargoView[], now: number): string[][] {
  return cargos.map((c) => [c.name, c.state, String(c.containers.length), String(c.containers.reduce((a, x) => a + x.gpus.length, 0)), age(c.createdAt, now)]);
}

/** One line per event: `12:00:01 grant.grown +node-1:2,3 -> node-1:0,1,2,3`. */
export function eventLine(e: JobEvent): string {
  const t = e.at.slice(11, 19);
  const f = e as Record<string, unknown>;
  switch (e.type) {
    case 'hello':
      return `${t} hello ${f.state} grant ${showGrant(f.grant as Grant)}`;
    case 'grant.grown':
      return `${t} grant.grown +${showGrant(f.added as Grant)} -> ${showGrant(f.grant as Grant)}`;
    case 'grant.shrunk':
      return `${t} grant.shrunk -${showGrant(f.removed as Grant)} -> ${showGrant(f.grant as Grant)}`;
    case 'shrink.requested':
      return `${t} shrink.requested ${showGrant(f.gpus as Grant)} by ${String(f.deadline).slice(11, 19)}: ${f.reason}`;
    case 'container.exited':
      return `${t} container.exited ${f.cargo}/${f.container} on ${f.node} exit ${f.exitCode}${f.reason ? ` (${f.reason})` : ''}`;
    case 'cargo.started':
    case 'cargo.ended': {
      const c = f.cargo as CargoView;
      return `${t} ${e.type} ${c.name} ${c.state} ${c.containers.map((x) => `${x.name}@${x.node}:${x.gpus.join(',') || '-'}`).join(' ')}`;
    }
    case 'pause.requested':
      return `${t} pause.requested: ${f.reason}`;
    case 'kill.requested':
      return `${t} kill.requested${f.force ? ' (force)' : ''}`;
    case 'job.state':
      return `${t} job.state ${f.state}${f.reason ? ` (${f.reason})` : ''}`;
    default:
      return `${t} ${e.type}`;
  }
}

export function registerCargoCommands(cli: CAC, d: CargoCliDeps): void {
  const { connect, act } = d;

  cli
    .command('job events [ID_OR_NAME]', "Follow a job's events (what its app manager reacts to) until it ends")
    .option('--json', 'One JSON object per event')
    .example('  $ crane job events train')
    .example('  $ crane job events --json      # inside an app manager: its own job')
    .action(
      act(async (ref: string | undefined, o: Opts) => {
        const job = ref ?? jobRef(o);
        for await (const e of connect(o).client.stream<JobEvent>('GET', `/v1/jobs/${enc(job)}/events`)) {
          out(o.json ? JSON.stringify(e) : eventLine(e));
        }
      }),
    );

  cli
    .command('job pause <ID_OR_NAME>', 'Pause a running job: its containers stop and its GPUs go back until you resume it')
    .example('  $ crane job pause train && crane job resume train')
    .action(
      act(async (ref: string, o: Opts) => {
        const r = await connect(o).client.request<{ state: string }>('POST', `/v1/jobs/${enc(ref)}/pause`, {});
        out(r.state === 'PAUSED' ? `${ref} is paused` : `pausing ${ref}: its containers are stopping`);
      }),
    );

  cli
    .command('job resume <ID_OR_NAME>', 'Queue a paused job again: it runs once its MIN GPUs are free')
    .action(
      act(async (ref: string, o: Opts) => {
        await connect(o).client.request('POST', `/v1/jobs/${enc(ref)}/resume`, {});
        out(`${ref} is queued to resume`);
      }),
    );

  cli
    .command('job release [ID_OR_NAME]', 'Give GPUs of a running job back (default: every idle one above MIN)')
    .option('--gpus <node:idx,...>', 'Just these GPUs (repeatable), e.g. node-1:2,3')
    .option('--json', 'Print JSON')
    .example('  $ crane job release --gpus node-1:3     # inside an app manager')
    .action(
      act(async (ref: string | undefined, o: Opts) => {
        const gpus = strs(o.gpus).length ? parseGrant(strs(o.gpus)) : undefined;
        const r = await connect(o).client.request<{ released: Grant; grant: Grant }>('POST', `/v1/jobs/${enc(ref ?? jobRef(o))}/release`, { gpus });
        if (o.json) return printJson(r);
        out(`released ${showGrant(r.released)}; the job holds ${showGrant(r.grant)}`);
      }),
    );

  const jobOption = (c: ReturnType<CAC['command']>) => c.option('--job <ID_OR_NAME>', 'The job (default: $CRANE_JOB_ID, the app manager\'s own)');

  jobOption(cli.command('cargo create', "Start a cargo: containers started all or nothing in the job's GPUs"))
    .option('-n, --name <name>', 'Cargo name, unique in the job (default cargo-N)')
    .option('--replicas <k>', 'How many identical containers (default 1)')
    .option('--gpus <n>', 'GPUs per container, on one node (default 1)')
    .option('--image <image>', "Image, or host (default: the job's own image)")
    .option('-c, --cmd <cmd>', 'Command to run')
    .option('-e, --env <KEY=VALUE>', 'Environment variable (repeatable)')
    .option('--shell', 'Run the command through sh -c')
    .option('-f, --file <path>', 'The cargo as JSON ({name, containers: [{name, gpus, config}]}); - reads stdin')
    .option('--json', 'Print JSON')
    .example('  $ crane cargo create -n trial1 --replicas 2 --gpus 2 -c "python train.py" --shell')
    .example('  $ crane cargo create -f cargo.json --job train')
    .action(
      act(async (o: Opts) => {
        const { client } = connect(o);
        const ref = jobRef(o);
        let body: unknown;
        const file = str(o.file);
        if (file) {
          const { readFileSync } = await import('node:fs');
          const text = file === '-' ? (await import('./prompt.js')).readStdin() : Promise.resolve(readFileSync(file, 'utf8'));
          try {
            body = JSON.parse(await text);
          } catch (e) {
            throw new Error(`${file === '-' ? 'stdin' : file} is not JSON: ${(e as Error).message}`);
          }
        } else {
          const replicas = count(str(o.replicas), '--replicas', 1, 1);
          const gpus = count(str(o.gpus), '--gpus', 1);
          const image = str(o.image) ?? (await client.request<JobView>('GET', `/v1/jobs/${enc(ref)}`)).spec.am.image;
          const config: Partial<ContainerConfig> = { image, cmd: str(o.cmd), shell: !!o.shell, env: parseEnvs(strs(o.env)) };
          const containers: CargoContainerSpec[] = Array.from({ length: replicas }, () => ({ gpus, config: config as ContainerConfig }));
          body = { name: str(o.name), containers };
        }
        const c = await client.request<CargoView>('POST', `/v1/jobs/${enc(ref)}/cargos`, body);
        if (o.json) return printJson(c);
        out(`cargo ${c.name} ${c.state}: ${c.containers.map((x) => `${x.name}@${x.node}:${x.gpus.join(',') || '-'}`).join(' ')}`);
      }),
    );

  jobOption(cli.command('cargo list', "List a job's cargos"))
    .alias('cargo ls')
    .option('--json', 'Print JSON')
    .action(
      act(async (o: Opts) => {
        const { cargos } = await connect(o).client.request<{ cargos: CargoView[] }>('GET', `/v1/jobs/${enc(jobRef(o))}/cargos`);
        if (o.json) return printJson(cargos);
        if (!cargos.length) return warn('No cargos.');
        out(table(['name', 'state', 'containers', 'gpus', 'created'], cargoRows(cargos, Date.now())));
      }),
    );

  jobOption(cli.command('cargo inspect <CARGO>', 'Show a cargo and its containers (YAML)'))
    .option('--json', 'Print JSON')
    .action(
      act(async (name: string, o: Opts) => {
        const c = await connect(o).client.request<CargoView>('GET', `/v1/jobs/${enc(jobRef(o))}/cargos/${enc(name)}`);
        if (o.json) return printJson(c);
        process.stdout.write(await toYaml(c));
      }),
    );

  jobOption(cli.command('cargo kill <CARGO>', 'Stop every container of a cargo (SIGTERM, then SIGKILL after the grace period)'))
    .option('--force', 'SIGKILL at once')
    .action(
      act(async (name: string, o: Opts) => {
        const c = await connect(o).client.request<CargoView>('POST', withQuery(`/v1/jobs/${enc(jobRef(o))}/cargos/${enc(name)}/kill`, { force: String(!!o.force) }), {});
        out(`cargo ${c.name} ${c.state}`);
      }),
    );

  jobOption(cli.command('cargo resize <CARGO>', 'Add or remove containers of a running cargo; the others keep running'))
    .option('--add <k>', 'Add K containers like the first one (or with --gpus / --cmd)')
    .option('--gpus <n>', 'GPUs of each added container')
    .option('-c, --cmd <cmd>', 'Command of each added container (default: the first container\'s)')
    .option('--remove <names>', 'Container names to stop, comma-separated')
    .option('--json', 'Print JSON')
    .example('  $ crane cargo resize trial1 --add 2')
    .example('  $ crane cargo resize trial1 --remove 3,4')
    .action(
      act(async (name: string, o: Opts) => {
        const { client } = connect(o);
        const ref = jobRef(o);
        const add = count(str(o.add), '--add', 0);
        const remove = (str(o.remove) ?? '').split(',').filter(Boolean);
        if (!add && !remove.length) throw new UsageError('say what changes: --add K and/or --remove NAMES');
        const gpus = str(o.gpus) === undefined ? undefined : count(str(o.gpus), '--gpus', 0);
        let config: ContainerConfig | undefined;
        if (str(o.cmd) !== undefined) {
          const job = await client.request<JobView>('GET', `/v1/jobs/${enc(ref)}`);
          const image = job.cargos?.find((c) => c.name === name)?.containers[0]?.image ?? job.spec.am.image;
          config = { image, cmd: str(o.cmd), shell: true } as ContainerConfig;
        }
        const adds = Array.from({ length: add }, () => ({ ...(gpus !== undefined ? { gpus } : {}), ...(config ? { config } : {}) }));
        const c = await client.request<CargoView>('POST', `/v1/jobs/${enc(ref)}/cargos/${enc(name)}/resize`, { add: adds, remove });
        if (o.json) return printJson(c);
        const live = c.containers.filter((x) => x.state === 'RUNNING' || x.state === 'STARTING');
        out(`cargo ${c.name} ${c.state}: ${live.map((x) => `${x.name}@${x.node}:${x.gpus.join(',') || '-'}`).join(' ')}`);
      }),
    );

  jobOption(cli.command('cargo log <CARGO>', "Print a cargo's output (every container, prefixed with its name)"))
    .alias('cargo logs')
    .option('-f, --follow', 'Keep printing until every container of the cargo has exited')
    .action(
      act(async (name: string, o: Opts) => {
        const path = withQuery(`/v1/jobs/${enc(jobRef(o))}/cargos/${enc(name)}/logs`, { follow: String(!!o.follow) });
        const color = colorEnabled();
        const { red } = palette(color);
        for await (const l of connect(o).client.stream<LogLine>('GET', path)) {
          const text = l.src === 'stderr' ? (color ? red(l.line) : `[stderr] ${l.line}`) : l.line;
          out(`${l.container ?? ''} | ${text}`);
        }
      }),
    );
}
