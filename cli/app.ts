/** Shared runner for the `crane` and `craneadm` binaries: two-word commands on cac, exit codes, output. */
import type { CAC } from 'cac';

/** A usage error: exit code 2. */
export class UsageError extends Error {}

/** Ends the command with an exit code; the message (if any) is printed as `error: ...`. */
export class ExitError extends Error {
  constructor(
    readonly exitCode: number,
    message = '',
  ) {
    super(message);
  }
}

export function out(s = ''): void {
  process.stdout.write(s + '\n');
}

export function warn(s: string): void {
  process.stderr.write(s + '\n');
}

export function printJson(v: unknown): void {
  out(JSON.stringify(v, null, 2));
}

/** Marks a token so that cac's parser (mri) keeps it a string instead of turning it into a number. */
const RAW = '\u0000';
const numberLike = (s: string) => Number.isFinite(+s);

/**
 * Prepares argv for cac: joins `<group> <sub>` into one token (cac only matches one-word command
 * names) and protects number-like values (`-n 007`, `-c ""`) from becoming numbers.
 * `valueOptions` are the global options that take a value (so their value is not taken as the group).
 */
export function prepareArgv(
  argv: readonly string[],
  commandNames: readonly string[],
  valueOptions: readonly string[] = [],
  rename: ReadonlyMap<string, string> = new Map(),
): { args: string[]; group?: string } {
  const groups = new Map<string, Set<string>>();
  for (const n of commandNames) {
    const [g, sub] = n.split(' ');
    if (sub) groups.set(g!, (groups.get(g!) ?? new Set()).add(sub));
  }
  const args = [...argv];
  let group: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (valueOptions.includes(a)) i++;
      continue;
    }
    if (groups.has(a)) {
      const sub = args[i + 1];
      if (sub !== undefined && groups.get(a)!.has(sub)) args.splice(i, 2, `${a} ${sub}`);
      else group = a;
    }
    break;
  }
  const protect = args.map((a) => {
    if (rename.has(a)) return rename.get(a)!;
    // A negative number (`job add host -1`) is a value, not a short option.
    if (/^-\d/.test(a)) return RAW + a;
    if (!a.startsWith('-')) return numberLike(a) ? RAW + a : a;
    const eq = a.indexOf('=');
    return eq > 0 && numberLike(a.slice(eq + 1)) ? `${a.slice(0, eq + 1)}${RAW}${a.slice(eq + 1)}` : a;
  });
  return { args: protect, group };
}

/**
 * cac tells mri its boolean options by their camelCase name, so mri takes `--use-local-crane job`
 * as a value. Passing such flags camelCased (`--useLocalCrane`) makes mri see them as booleans.
 */
function kebabFlags(cli: CAC): Map<string, string> {
  const map = new Map<string, string>();
  for (const o of [cli.globalCommand, ...cli.commands].flatMap((c) => c.options)) {
    if (!o.isBoolean || o.negated) continue;
    for (const raw of o.rawName.split(',').map((r) => r.trim())) {
      if (/^--[a-z0-9]+(-[a-z0-9]+)+$/.test(raw)) map.set(raw, `--${o.names.find((n) => n.length > 1) ?? raw.slice(2)}`);
    }
  }
  return map;
}

/** Undoes prepareArgv's protection in parsed values. */
export function unprotect<T>(v: T): T {
  if (typeof v === 'string') return (v.startsWith(RAW) ? v.slice(1) : v) as T;
  if (Array.isArray(v)) return v.map(unprotect) as T;
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unprotect(x)])) as T;
  }
  return v;
}

/** cac help callback: no trailing blanks. */
export function trimHelp(sections: Array<{ title?: string; body: string }>) {
  return sections.map((s) => ({ ...s, body: s.body.replace(/ +$/gm, '') }));
}

function groupHelp(cli: CAC, group: string): string {
  const cmds = cli.commands.filter((c) => c.name.startsWith(`${group} `));
  const width = Math.max(...cmds.map((c) => c.rawName.length));
  return [
    `Usage:\n  $ ${cli.name} ${group} <command> [options]`,
    `Commands:\n${cmds.map((c) => `  ${c.rawName.padEnd(width)}  ${c.description}`).join('\n')}`,
    `For more info, run any command with the \`--help\` flag:\n${cmds.map((c) => `  $ ${cli.name} ${c.name} --help`).join('\n')}`,
  ].join('\n\n');
}

/**
 * Parses argv (without node and the script) and runs the matched command.
 * Resolves to the exit code: 0 ok, 1 error, 2 usage; ExitError carries its own.
 */
export async function runCli(cli: CAC, argv: readonly string[], valueOptions: readonly string[] = []): Promise<number> {
  const names = cli.commands.flatMap((c) => [c.name, ...c.aliasNames]);
  const { args, group } = prepareArgv(argv, names, valueOptions, kebabFlags(cli));
  const usage = (message: string, cmd?: string) => {
    warn(`error: ${message}`);
    warn(`see '${cli.name}${cmd ? ` ${cmd}` : ''} --help'`);
    return 2;
  };
  try {
    cli.parse(['node', cli.name, ...args], { run: false });
  } catch (e) {
    return usage((e as Error).message);
  }
  cli.args = unprotect([...cli.args]);
  cli.options = unprotect(cli.options);
  const wantsHelp = !!cli.options.help;
  if (wantsHelp && !cli.matchedCommand && group) {
    out(groupHelp(cli, group));
    return 0;
  }
  if (wantsHelp || (cli.options.version && !cli.matchedCommandName)) return 0; // cac printed it
  if (!cli.matchedCommand) {
    const unknown = Object.keys(cli.options).find((k) => k !== '--' && !cli.globalCommand.hasOption(k));
    if (unknown) return usage(`Unknown option \`${unknown.length > 1 ? '--' : '-'}${unknown}\``, group);
    if (group && cli.args.length <= 1) {
      out(groupHelp(cli, group));
      return 0;
    }
    if (cli.args.length) return usage(`unknown command '${cli.args.slice(0, group ? 2 : 1).join(' ')}'`, group);
    cli.outputHelp();
    return 0;
  }
  const cmdName = cli.matchedCommand.name;
  try {
    await cli.runMatchedCommand();
    return 0;
  } catch (e) {
    const err = e as Error;
    if (err instanceof ExitError) {
      if (err.message) warn(`error: ${err.message}`);
      return err.exitCode;
    }
    if (err instanceof UsageError || err.name === 'CACError') return usage(err.message, cmdName);
    warn(`error: ${err.message}`);
    if (process.env.CRANE_DEBUG && err.stack) warn(err.stack);
    return 1;
  }
}

/** Runs a binary: handles EPIPE on stdout and exits once stdout is flushed. */
export function main(run: () => Promise<number>): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  run().then(
    (code) => process.stdout.write('', () => process.exit(code)),
    (e: unknown) => {
      warn(`error: ${(e as Error)?.message ?? e}`);
      process.exit(1);
    },
  );
}
