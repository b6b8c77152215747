import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export type SocketKind = 'cli' | 'adm';
export type Sockets = Record<SocketKind, string>;

type Env = NodeJS.ProcessEnv;

/** `$CRANE_HOME`, default `~/.crane` (always absolute). */
export function craneHome(env: Env = process.env): string {
  return resolve(env.CRANE_HOME || join(homedir(), '.crane'));
}

/** The sockets of a local (standalone) cluster: `$CRANE_HOME/crane-{cli,adm}.sock`. */
export function localSockets(env: Env = process.env): Sockets {
  const home = craneHome(env);
  return { cli: join(home, 'crane-cli.sock'), adm: join(home, 'crane-adm.sock') };
}

/** Where a member host (crane-admind) keeps its sockets: `/var/run/crane`, or `$CRANE_RUN_DIR`. */
export function runDir(env: Env = process.env): string {
  return resolve(env.CRANE_RUN_DIR || '/var/run/crane');
}

/** Where a member host keeps its state: `/var/lib/crane`, or `$CRANE_STATE_DIR`. */
export function memberStateDir(env: Env = process.env): string {
  return resolve(env.CRANE_STATE_DIR || '/var/lib/crane');
}

/** The sockets of a system-wide installation (a member host of a multi-host cluster). */
export function standardSockets(env: Env = process.env): Sockets {
  const dir = runDir(env);
  return { cli: join(dir, 'crane-cli.sock'), adm: join(dir, 'crane-adm.sock') };
}

/** The standard sockets where CRANE_RUN_DIR is not set. */
export const STANDARD_SOCKETS: Readonly<Sockets> = standardSockets({});

/** `${XDG_CONFIG_HOME:-~/.config}/crane/config.json`. */
export function configPath(env: Env = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return resolve(base, 'crane', 'config.json');
}

/** Writes a file atomically (temp file + rename), creating its directory; mode 0600 by default. */
export function writeFileAtomic(path: string, data: string, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString('hex')}`;
  try {
    writeFileSync(tmp, data, { mode });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
