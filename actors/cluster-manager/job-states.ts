import { CraneError } from '../../bus/errors.js';
import { TERMINAL_STATES, type JobState, type JobView } from '../protocol.js';

/** Allowed job transitions (reference §8.1). Terminal states have no row. */
const ALLOWED: Partial<Record<JobState, readonly JobState[]>> = {
  QUEUED: ['RUNNING', 'ERROR'],
  RUNNING: ['QUEUED', 'PAUSED', 'INVALID', 'DONE', 'ERROR'],
  PAUSED: ['RUNNING', 'ERROR'],
};

export function canTransition(from: JobState, to: JobState): boolean {
  return ALLOWED[from]?.includes(to) ?? false;
}

export function isTerminal(s: JobState): boolean {
  return TERMINAL_STATES.includes(s);
}

/** Moves a job to `to`, appending to its history; throws on a transition the table forbids. */
export function transition(job: JobView, to: JobState, at: Date, reason?: string): void {
  if (!canTransition(job.state, to)) {
    throw new CraneError('conflict', `job ${job.name} cannot go from ${job.state} to ${to}`);
  }
  job.state = to;
  job.history.push(reason ? { state: to, at: at.toISOString(), reason } : { state: to, at: at.toISOString() });
  // The reason always describes the current state: a job running again has none.
  if (reason) job.reason = reason;
  else delete job.reason;
}
