/** Parsers for the CLI's input syntaxes (reference §9); each throws an Error with one clear line. */
import { resolve } from 'node:path';
import type { Mount, ResourceSpec } from '../actors/protocol.js';

const COUNT_RE = /^\d+$/;

/**
 * `APP[:MIN[:MAX]]` GPU counts: `A` = A/A/A, `A:M` = A/M/M, `A:m:M`. APP ≤ MIN ≤ MAX, MAX ≥ 1, and
 * MIN ≥ 1 (so APP may be 0 only when MIN ≥ 1). Unlike the reference, empty fields are rejected.
 */
export function parseResource(s: string): ResourceSpec {
  const bad = (why: string) => new Error(`invalid resource '${s}': ${why}`);
  if (!s.trim()) throw bad('expected APP[:MIN[:MAX]] GPU counts, e.g. 1, 1:4 or 1:2:8');
  const parts = s.split(':');
  if (parts.length > 3) throw bad(`expected at most 3 fields APP[:MIN[:MAX]], got ${parts.length}`);
  const n = parts.map((p) => {
    if (p === '') throw bad('empty field; expected APP[:MIN[:MAX]], e.g. 1, 1:4 or 1:2:8');
    if (!COUNT_RE.test(p) || !Number.isSafeInteger(Number(p))) throw bad(`'${p}' is not a whole number of GPUs ≥ 0`);
    return Number(p);
  });
  const app = n[0]!;
  const min = n.length === 1 ? app : n[1]!;
  const max = n.length === 3 ? n[2]! : min;
  if (app > min) throw bad(`APP ≤ MIN ≤ MAX must hold (got app ${app} > min ${min})`);
  if (min > max) throw bad(`APP ≤ MIN ≤ MAX must hold (got min ${min} > max ${max})`);
  if (max === 0) throw bad('MAX must be at least 1 GPU');
  if (min === 0) throw bad('MIN must be at least 1 GPU (APP may be 0 only when MIN ≥ 1)');
  return { app, min, max };
}

/** `KEY=VALUE` (the value may contain '='). */
export function parseEnv(s: string): [string, string] {
  const i = s.indexOf('=');
  if (i <= 0) throw new Error(`invalid -e '${s}': expected KEY=VALUE`);
  return [s.slice(0, i), s.slice(i + 1)];
}

/** Several `-e` values into a record (a later key wins). */
export function parseEnvs(list: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of list) {
    const [k, v] = parseEnv(s);
    env[k] = v;
  }
  return env;
}

/** `HOST_DIR:CONTAINER_DIR[:ro|rw]`; the host dir is made absolute against `cwd`, the container dir must be absolute. */
export function parseMount(s: string, cwd = process.cwd()): Mount {
  const bad = (why: string) => new Error(`invalid -m '${s}': ${why}`);
  const parts = s.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw bad('expected HOST_DIR:CONTAINER_DIR[:ro|rw]');
  }
  const [host, container, mode = 'rw'] = parts as [string, string, string?];
  if (!container.startsWith('/')) throw bad('container path must be absolute');
  if (mode !== 'ro' && mode !== 'rw') throw bad(`mode must be ro or rw (got '${mode}')`);
  return { hostDir: resolve(cwd, host), containerDir: container, mode };
}

/** A TCP port 1-65535. */
export function parsePort(s: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw new Error(`invalid -p '${s}': expected a port number 1-65535`);
  return Number(s);
}

const SHM_UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `/dev/shm` size: a number with an optional unit b|k|m|g (1024-based; no unit = bytes) → bytes. */
export function parseShmSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?|\.\d+)([bkmg]?)$/i.exec(s.trim());
  if (!m) throw new Error(`invalid --shm-size '${s}': expected a number with an optional unit b, k, m or g (e.g. 64m, 1.5g)`);
  const bytes = Math.trunc(Number(m[1]) * SHM_UNITS[(m[2] || 'b').toLowerCase()]!);
  if (bytes < 1) throw new Error(`invalid --shm-size '${s}': must be at least 1 byte`);
  if (!Number.isSafeInteger(bytes)) throw new Error(`invalid --shm-size '${s}': too large`);
  return bytes;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** A duration such as 30s, 10m, 2h, 1d or 1h30m in ms; undefined when `s` is not one. */
function durationMs(s: string): number | undefined {
  if (!/^(\d+(ms|[smhd]))+$/.test(s)) return undefined;
  let ms = 0;
  for (const [, n, u] of s.matchAll(/(\d+)(ms|[smhd])/g)) ms += Number(n) * DURATION_UNITS[u!]!;
  return ms;
}

/** A positive duration option (`--token-ttl 12h`) in ms. */
export function parseDuration(s: string, option: string): number {
  const ms = durationMs(s.trim());
  if (!ms) throw new Error(`invalid ${option} '${s}': expected a duration like 30s, 10m, 2h, 1d or 1h30m`);
  return ms;
}

/**
 * `--since`: an ISO date or date-time (local time unless it has a zone), or a duration back from
 * `now` such as 30s, 10m, 2h, 1d or 1h30m. Returns an ISO-8601 UTC string.
 */
export function parseSince(s: string, now: number = Date.now()): string {
  const bad = () =>
    new Error(`invalid --since '${s}': expected a date/time (2024-05-01, 2024-05-01T12:00:00) or a duration like 30s, 10m, 2h, 1d`);
  const v = s.trim();
  const ago = durationMs(v);
  if (ago !== undefined) return new Date(now - ago).toISOString();
  const m = ISO_RE.exec(v);
  if (!m) throw bad();
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', zone] = m;
  const ms = frac ? Math.trunc(Number(frac) * 1000) : 0;
  let date: Date;
  if (zone) {
    const z = zone.toUpperCase() === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
    date = new Date(`${y}-${mo}-${d}T${h.padStart(2, '0')}:${mi}:${sec.padStart(2, '0')}.${String(ms).padStart(3, '0')}${z}`);
  } else {
    date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec), ms);
  }
  // Reject out-of-range fields (month 13, 25:00, Feb 30) that Date would silently roll over.
  const fieldsOk = Number(mo) >= 1 && Number(mo) <= 12 && Number(d) >= 1 && Number(d) <= daysIn(Number(y), Number(mo)) &&
    Number(h) <= 23 && Number(mi) <= 59 && Number(sec) <= 59;
  if (!fieldsOk || Number.isNaN(date.getTime())) throw bad();
  return date.toISOString();
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** `--priority N`: a whole number from -1000 to 1000 (default 0). */
export function parsePriority(s: string | undefined): number {
  if (s === undefined) return 0;
  const n = Number(s);
  if (!/^-?\d+$/.test(s.trim()) || n < -1000 || n > 1000) throw new Error(`invalid --priority '${s}': expected a whole number from -1000 to 1000`);
  return n;
}
