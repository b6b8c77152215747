import { CraneError } from '../../bus/errors.js';
import type { CargoContainerSpec, CargoResize, CargoSpec } from '../protocol.js';
import { validateContainer } from './validate-job.js';

/** Cargo and container names end up in container ids and Docker names: keep them short and plain. */
export const CARGO_NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,30}$/;
const MAX_CONTAINERS = 256;

const bad = (m: string) => new CraneError('invalid', m);

/** With `fromCargo`, gpus and config may be left out: the cargo's first container gives them. */
function validateContainers(raw: unknown, what: string, fromCargo = false): CargoContainerSpec[] {
  if (!Array.isArray(raw)) throw bad(`${what} must be a list of containers`);
  if (raw.length > MAX_CONTAINERS) throw bad(`${what}: at most ${MAX_CONTAINERS} containers`);
  const names = new Set<string>();
  return raw.map((c, k) => {
    if (!c || typeof c !== 'object') throw bad(`${what}: container ${k} must be an object`);
    const { name, gpus, config } = c as Partial<CargoContainerSpec>;
    if (name !== undefined && (typeof name !== 'string' || !CARGO_NAME_RE.test(name))) {
      throw bad(`invalid container name '${name}': lowercase letters, digits, '_', '.', '-' (at most 31)`);
    }
    if (name !== undefined && names.has(name)) throw bad(`${what}: two containers named '${name}'`);
    if (name !== undefined) names.add(name);
    if (!(fromCargo && gpus === undefined) && (!Number.isInteger(gpus) || (gpus as number) < 0)) {
      throw bad(`${what}: container ${name ?? k} needs a whole GPU count ≥ 0 (got ${gpus})`);
    }
    return {
      ...(name !== undefined ? { name } : {}),
      gpus: gpus as number,
      config: fromCargo && config === undefined ? (undefined as never) : validateContainer(config),
    };
  });
}

/** Checks a cargo from the AM; throws one clear line on bad input. */
export function validateCargoSpec(raw: unknown): CargoSpec {
  if (!raw || typeof raw !== 'object') throw bad('the cargo must be a JSON object {name?, containers: [...]}');
  const { name, containers } = raw as Partial<CargoSpec>;
  if (name !== undefined && (typeof name !== 'string' || !CARGO_NAME_RE.test(name))) {
    throw bad(`invalid cargo name '${name}': lowercase letters, digits, '_', '.', '-' (at most 31, starting with a letter or digit)`);
  }
  const list = validateContainers(containers, 'a cargo');
  if (list.length === 0) throw bad('a cargo cannot be empty: give at least one container');
  return { ...(name !== undefined ? { name } : {}), containers: list };
}

export function validateCargoResize(raw: unknown): CargoResize {
  if (!raw || typeof raw !== 'object') throw bad('a resize must be a JSON object {add?: [...], remove?: [...]}');
  const { add, remove } = raw as Partial<CargoResize>;
  const adds = add === undefined ? [] : validateContainers(add, 'add', true);
  if (remove !== undefined && !(Array.isArray(remove) && remove.every((x) => typeof x === 'string'))) throw bad('remove must be a list of container names');
  if (adds.length === 0 && !remove?.length) throw bad('a resize adds or removes at least one container');
  return { add: adds, remove: remove ?? [] };
}
