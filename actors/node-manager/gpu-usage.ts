/**
 * Per-GPU utilisation and memory of a node. Sources, in order:
 *   1. a file named by the node option `usageFile` or `CRANE_GPU_USAGE_FILE` (tests inject values
 *      there), JSON `{ "0": { "util": 87, "memUsedMiB": 1200, "memTotalMiB": 16384 } }`, read again
 *      at every sample;
 *   2. `nvidia-smi`, when the node's GPUs were detected (not declared) and it is on PATH;
 *   3. zeros: declared GPUs have nothing to measure.
 * Parsing is pure (tested alone); the sampler only reads the file or runs the command.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { GpuSample } from '../protocol.js';

export const USAGE_FILE_ENV = 'CRANE_GPU_USAGE_FILE';

export type GpuReading = Omit<GpuSample, 'gpu'>;

export const NVIDIA_SMI_ARGS = ['--query-gpu=index,utilization.gpu,memory.used,memory.total', '--format=csv,noheader,nounits'];

/** A number ≥ 0 from a field ("[N/A]", "[Not Supported]" and the like count as 0). */
function field(s: string | undefined): number {
  const n = Number((s ?? '').trim());
  return Number.isFinite(n) && n > 0 ? n : 0;
}

const clampUtil = (n: number) => Math.min(100, Math.max(0, n));

/**
 * `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total
 * --format=csv,noheader,nounits` output, e.g. `0, 87, 1200, 16384`, by GPU index. Lines without an
 * index (blank lines, warnings) are skipped; fields a GPU does not support read as 0.
 */
export function parseNvidiaSmi(csv: string): Map<number, GpuReading> {
  const out = new Map<number, GpuReading>();
  for (const line of csv.split('\n')) {
    const cols = line.split(',').map((c) => c.trim());
    if (cols.length < 4 || !/^\d+$/.test(cols[0]!)) continue;
    out.set(Number(cols[0]), { util: clampUtil(field(cols[1])), memUsedMiB: field(cols[2]), memTotalMiB: field(cols[3]) });
  }
  return out;
}

/**
 * The injected-values file: `{ "<gpu index>": { "util"?, "memUsedMiB"?, "memTotalMiB"? } }`.
 * Missing fields read as 0, util is clamped to 0-100. Throws an Error with one clear line if the
 * text is not such an object.
 */
export function parseInjected(text: string): Map<number, GpuReading> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`GPU usage file is not JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('GPU usage file must hold an object keyed by GPU index');
  const out = new Map<number, GpuReading>();
  for (const [k, r] of Object.entries(v as Record<string, unknown>)) {
    if (!/^\d+$/.test(k)) throw new Error(`GPU usage file: '${k}' is not a GPU index`);
    if (!r || typeof r !== 'object') throw new Error(`GPU usage file: GPU ${k} must be an object {util, memUsedMiB, memTotalMiB}`);
    const x = r as Record<string, unknown>;
    const num = (n: unknown) => (typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0);
    out.set(Number(k), { util: clampUtil(num(x.util)), memUsedMiB: num(x.memUsedMiB), memTotalMiB: num(x.memTotalMiB) });
  }
  return out;
}

/** A sample of each of the node's GPUs, in the node's order; a GPU without a reading reports zeros. */
export function samplesFor(gpus: readonly number[], readings: ReadonlyMap<number, GpuReading> = new Map()): GpuSample[] {
  return gpus.map((gpu) => ({ gpu, ...(readings.get(gpu) ?? { util: 0, memUsedMiB: 0, memTotalMiB: 0 }) }));
}

export function sameSamples(a: readonly GpuSample[] | undefined, b: readonly GpuSample[] | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    return x.gpu === y.gpu && x.util === y.util && x.memUsedMiB === y.memUsedMiB && x.memTotalMiB === y.memTotalMiB;
  });
}

export interface SamplerOptions {
  gpus: readonly number[];
  /** The GPUs were detected on this host (not declared): nvidia-smi describes them. */
  detected: boolean;
  /** Injected values (a test): read at every sample. */
  file?: string;
  log: { warn(o: object, m: string): void };
}

/** Takes samples of a node's GPUs; never throws (a failing source reports zeros and logs once). */
export class GpuUsageSampler {
  private smi: boolean;
  private lastProblem?: string;

  constructor(private readonly o: SamplerOptions) {
    this.smi = o.detected && o.gpus.length > 0;
  }

  async sample(): Promise<GpuSample[]> {
    try {
      const readings = this.o.file ? parseInjected(await readFile(this.o.file, 'utf8')) : this.smi ? await this.nvidiaSmi() : undefined;
      this.lastProblem = undefined;
      return samplesFor(this.o.gpus, readings);
    } catch (err) {
      const problem = (err as Error).message;
      if (problem !== this.lastProblem) this.o.log.warn({ err: problem, file: this.o.file }, 'cannot sample GPU usage: reporting zeros');
      this.lastProblem = problem;
      return samplesFor(this.o.gpus);
    }
  }

  private nvidiaSmi(): Promise<Map<number, GpuReading>> {
    return new Promise((resolve, reject) => {
      execFile('nvidia-smi', NVIDIA_SMI_ARGS, { timeout: 5_000, encoding: 'utf8' }, (err, stdout) => {
        if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
          this.smi = false; // not on PATH (GPUs found in /proc): nothing to ask, ever
          return resolve(new Map());
        }
        if (err) return reject(new Error(`nvidia-smi failed: ${err.message.split('\n')[0]}`));
        resolve(parseNvidiaSmi(stdout));
      });
    });
  }
}
