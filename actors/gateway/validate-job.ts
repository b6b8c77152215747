import { CraneError } from '../../bus/errors.js';
import type { ContainerConfig, JobSpec } from '../protocol.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

const bad = (m: string) => new CraneError('invalid', m);
const isCount = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0;

/** Checks a job spec from an API client and fills defaults; throws one clear line on bad input. */
export function validateJobSpec(raw: unknown): JobSpec {
  if (!raw || typeof raw !== 'object') throw bad('the job spec must be a JSON object');
  const s = raw as Partial<JobSpec>;
  const r = s.resources;
  if (!r || !isCount(r.app) || !isCount(r.min) || !isCount(r.max)) {
    throw bad('resources must be whole GPU counts {app, min, max} ≥ 0');
  }
  if (!(r.app <= r.min && r.min <= r.max)) throw bad(`resources must satisfy APP ≤ MIN ≤ MAX (got ${r.app}:${r.min}:${r.max})`);
  if (r.max === 0) throw bad('resources: MAX must be at least 1 GPU');
  if (s.name !== undefined && s.name !== null && !NAME_RE.test(s.name)) {
    throw bad(`invalid job name '${s.name}': use letters, digits, '_', '.', '-' (at most 63, starting with a letter or digit)`);
  }
  const tags = s.tags ?? [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string' && t.length > 0 && t.length <= 63)) {
    throw bad('tags must be non-empty strings of at most 63 characters');
  }
  const priority = s.priority ?? 0;
  if (!Number.isInteger(priority) || priority < -1000 || priority > 1000) throw bad(`priority must be a whole number from -1000 to 1000 (got ${s.priority})`);
  return { name: s.name ?? undefined, tags: [...new Set(tags)], resources: { app: r.app, min: r.min, max: r.max }, priority, am: validateContainer(s.am) };
}

export function validateContainer(raw: unknown): ContainerConfig {
  if (!raw || typeof raw !== 'object') throw bad('the container config must be an object');
  const c = raw as Partial<ContainerConfig>;
  if (typeof c.image !== 'string' || !c.image.trim() || /\s/.test(c.image)) throw bad('an image name is required (or "host" for a host process)');
  if (c.cmd !== undefined && c.cmd !== null && typeof c.cmd !== 'string') throw bad('cmd must be a string');
  if (c.image === 'host' && !c.cmd) throw bad('a host job needs a command: -c "..."');
  const env = c.env ?? {};
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_KEY_RE.test(k)) throw bad(`invalid environment variable name '${k}'`);
    if (typeof v !== 'string') throw bad(`environment variable ${k} must be a string`);
  }
  const mounts = c.mounts ?? [];
  for (const m of mounts) {
    if (!m?.hostDir?.startsWith('/') || !m.containerDir?.startsWith('/')) throw bad('mount paths must be absolute');
    if (!['ro', 'rw'].includes(m.mode)) throw bad(`mount mode must be ro or rw (got '${m.mode}')`);
  }
  const ports = c.ports ?? [];
  if (!ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) throw bad('ports must be between 1 and 65535');
  const shmSize = c.shmSize ?? 64 * 1024 * 1024;
  if (!Number.isInteger(shmSize) || shmSize <= 0) throw bad('shm size must be a positive number of bytes');
  return { image: c.image, cmd: c.cmd ?? undefined, shell: !!c.shell, init: c.init ?? true, env, mounts, ports, shmSize };
}
