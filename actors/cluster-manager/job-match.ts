import { CraneError } from '../../bus/errors.js';
import type { JobState, JobView } from '../protocol.js';

export interface JobFilter {
  /** id or name, or a prefix of either. */
  q?: string;
  /** every tag must be present (AND). */
  tags?: string[];
  /** empty = any state. */
  states?: JobState[];
}

export function matches(job: JobView, f: JobFilter): boolean {
  if (f.q && !job.id.startsWith(f.q) && !job.name.startsWith(f.q)) return false;
  if (f.tags?.length && !f.tags.every((t) => job.tags.includes(t))) return false;
  if (f.states?.length && !f.states.includes(job.state)) return false;
  return true;
}

/**
 * One job from a reference: an exact id, an exact name, or a prefix of exactly one id or name.
 * A job the caller may not see must look exactly like one that does not exist.
 */
export function resolveOne(jobs: Iterable<JobView>, ref: string): JobView {
  if (!ref) throw new CraneError('invalid', 'name a job: its id, its name, or a prefix of either');
  const prefixed: JobView[] = [];
  for (const j of jobs) {
    if (j.id === ref || j.name === ref) return j;
    if (j.id.startsWith(ref) || j.name.startsWith(ref)) prefixed.push(j);
  }
  if (prefixed.length === 1) return prefixed[0]!;
  if (prefixed.length === 0) throw new CraneError('not-found', `no job matches '${ref}'`);
  const names = prefixed.slice(0, 5).map((j) => `${j.name} (${j.id.slice(0, 8)})`);
  throw new CraneError(
    'invalid',
    `'${ref}' matches ${prefixed.length} jobs: ${names.join(', ')}${prefixed.length > 5 ? ', ...' : ''}; give more of the id or name`,
  );
}
