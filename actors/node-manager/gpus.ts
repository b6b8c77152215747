import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { CraneError } from '../../bus/errors.js';

const MAX_GPUS = 1024;

/**
 * Parses a `--gpus` value: "4" is a count (indices 0..3), "0,2,5" lists indices, "all" or "" means
 * detect (see detectGpus). Throws CraneError('invalid') on anything else.
 */
export function parseGpuList(s: string): number[] {
  const v = s.trim();
  if (detectsGpus(v)) return detectGpus();
  const bad = (why: string) => new CraneError('invalid', `invalid GPU list '${s}': ${why} (use a count like 4, indices like 0,2,5, or all)`);
  const parts = v.split(',').map((p) => p.trim());
  for (const p of parts) {
    if (!/^\d+$/.test(p)) throw bad(`'${p}' is not a non-negative integer`);
  }
  const nums = parts.map(Number);
  if (nums.some((n) => n > MAX_GPUS)) throw bad(`more than ${MAX_GPUS}`);
  if (parts.length === 1) return Array.from({ length: nums[0]! }, (_, i) => i);
  if (new Set(nums).size !== nums.length) throw bad('an index is repeated');
  return nums;
}

/** True when a `--gpus` value (or its absence) means "detect this host's GPUs" rather than declare them. */
export function detectsGpus(arg: string | undefined): boolean {
  const v = (arg ?? '').trim().toLowerCase();
  return v === '' || v === 'all';
}

/** GPU indices of this host: nvidia-smi, else /proc/driver/nvidia/gpus, else none. */
export function detectGpus(): number[] {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=index', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 5_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const idx = out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
    if (idx.length > 0) return idx;
  } catch {
    /* no nvidia-smi: fall through */
  }
  try {
    return readdirSync('/proc/driver/nvidia/gpus').map((_, i) => i);
  } catch {
    return [];
  }
}
