/** Arithmetic on grants (node -> GPU indices), as the reference's PhysicalCluster (§7.1). */
import type { Grant } from '../protocol.js';

export function gpuCount(g: Grant): number {
  let n = 0;
  for (const k in g) n += g[k]!.length;
  return n;
}

/** `a` plus `b` (indices sorted, no node left empty). */
export function plus(a: Grant, b: Grant): Grant {
  const out: Grant = {};
  for (const src of [a, b]) for (const [n, xs] of Object.entries(src)) out[n] = [...new Set([...(out[n] ?? []), ...xs])].sort((x, y) => x - y);
  return prune(out);
}

/** `a` without the GPUs of `b`. */
export function minus(a: Grant, b: Grant): Grant {
  const out: Grant = {};
  for (const [n, xs] of Object.entries(a)) {
    const drop = new Set(b[n] ?? []);
    out[n] = xs.filter((x) => !drop.has(x));
  }
  return prune(out);
}

/** The GPUs in both. */
export function both(a: Grant, b: Grant): Grant {
  const out: Grant = {};
  for (const [n, xs] of Object.entries(a)) {
    const keep = new Set(b[n] ?? []);
    out[n] = xs.filter((x) => keep.has(x));
  }
  return prune(out);
}

export function prune(g: Grant): Grant {
  const out: Grant = {};
  for (const [n, xs] of Object.entries(g)) if (xs.length) out[n] = xs;
  return out;
}

/** `node:0,1 other:3` — how grants are shown in reasons and events. */
export const showGrant = (g: Grant): string =>
  Object.entries(g)
    .map(([n, xs]) => `${n}:${xs.join(',')}`)
    .join(' ') || 'none';
