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

/** The sockets of a system-wide installation. */
export const STANDARD_SOCKETS: Readonly<Sockets> = {
  cli: '/var/run/crane/crane-cli.sock',
  adm: '/var/run/crane/crane-adm.sock',
};

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
