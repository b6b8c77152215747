import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { configPath, localSockets, standardSockets, writeFileAtomic, type SocketKind } from './paths.js';

type Env = NodeJS.ProcessEnv;

export interface StoredToken {
  token: string;
  username: string;
  expiresAt: string;
}

export interface CraneConfig {
  /** Where `crane` connects: 'standard' | 'local' | 'IP:PORT'. */
  endpoint?: string;
  /** Where `craneadm` connects: same syntax. */
  admEndpoint?: string;
  /** Session tokens by endpoint key (see Target.key). */
  tokens: Record<string, StoredToken>;
}

/** Where a CLI connects. */
export interface Target {
  socketPath?: string;
  host?: string;
  port?: number;
  /** The socket path or IP:PORT, for messages. */
  address: string;
  /** Key of the stored token: `unix:<path>` or `tcp:<ip>:<port>`. */
  key: string;
  /** What decided it (flag, env variable, config, default). */
  source: string;
}

export interface TargetFlags {
  socketPath?: string;
  useLocalCrane?: boolean;
}

export function loadConfig(path = configPath()): CraneConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { tokens: {} };
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`invalid config file ${path}: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`invalid config file ${path}: not a JSON object`);
  const c = raw as Partial<CraneConfig>;
  const tokens = c.tokens && typeof c.tokens === 'object' ? c.tokens : {};
  return { ...c, tokens };
}

export function saveConfig(cfg: CraneConfig, path = configPath()): void {
  writeFileAtomic(path, JSON.stringify(cfg, null, 2) + '\n', 0o600);
}

/** Checks an endpoint value (`standard`, `local` or `IP:PORT`); returns it normalised or throws. */
export function validateEndpoint(value: string): string {
  if (value === 'standard' || value === 'local') return value;
  const hp = splitHostPort(value);
  if (!hp) throw new Error(`invalid endpoint '${value}': expected standard, local or IP:PORT (e.g. 10.0.0.5:7070, [::1]:7070)`);
  return value;
}

/** `--listen IP:PORT` (port 0: any free port). */
export function parseListen(value: string): { host: string; port: number } {
  const hp = splitHostPort(value, true);
  if (!hp) throw new Error(`invalid --listen '${value}': expected IP:PORT (e.g. 0.0.0.0:7070, 127.0.0.1:0)`);
  return hp;
}

function splitHostPort(value: string, anyPort = false): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (!isIP(host) || (m[1] !== undefined && isIP(host) !== 6) || port < (anyPort ? 0 : 1) || port > 65535) return undefined;
  return { host, port };
}

function socketTarget(path: string, source: string): Target {
  const p = resolve(path);
  return { socketPath: p, address: p, key: `unix:${p}`, source };
}

function endpointTarget(kind: SocketKind, endpoint: string, env: Env, source: string): Target {
  if (endpoint === 'local') return socketTarget(localSockets(env)[kind], source);
  if (endpoint === 'standard') return socketTarget(standardSockets(env)[kind], source);
  const hp = splitHostPort(endpoint);
  if (!hp) throw new Error(`invalid endpoint '${endpoint}' in the config file: expected standard, local or IP:PORT`);
  return { host: hp.host, port: hp.port, address: endpoint, key: `tcp:${endpoint}`, source };
}

/**
 * Where to connect: --socket-path > env (CRANE_SOCKET / CRANE_ADM_SOCKET) > --use-local-crane >
 * the config endpoint > the local socket if it exists > the standard socket if it exists > the
 * local socket (so "cannot reach" names the socket `craneadm standalone` would create).
 */
export function resolveTarget(kind: SocketKind, flags: TargetFlags, cfg: CraneConfig, env: Env = process.env): Target {
  const envVar = kind === 'cli' ? 'CRANE_SOCKET' : 'CRANE_ADM_SOCKET';
  if (flags.socketPath) return socketTarget(flags.socketPath, '--socket-path');
  if (env[envVar]) return socketTarget(env[envVar]!, envVar);
  if (flags.useLocalCrane) return socketTarget(localSockets(env)[kind], '--use-local-crane');
  const configured = kind === 'cli' ? cfg.endpoint : cfg.admEndpoint;
  if (configured) return endpointTarget(kind, configured, env, `config endpoint '${configured}'`);
  const local = localSockets(env)[kind];
  if (existsSync(local)) return socketTarget(local, 'default: the local socket exists');
  const standard = standardSockets(env)[kind];
  if (existsSync(standard)) return socketTarget(standard, 'default: the standard socket exists');
  return socketTarget(local, 'default: no socket exists yet');
}

/** The session token: env CRANE_TOKEN > the one stored for this endpoint. */
export function resolveToken(target: Target, cfg: CraneConfig, env: Env = process.env): string | undefined {
  return env.CRANE_TOKEN || cfg.tokens[target.key]?.token;
}
