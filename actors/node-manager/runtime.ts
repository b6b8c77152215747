import type { ImageCheck, LogLine, RunRequest } from '../protocol.js';

export interface RuntimeHooks {
  onLine(l: LogLine): void;
  /** Called once, after the output is drained; never called when start() rejected. */
  onExit(code: number, signal?: string): void;
}

/** Runs containers (docker) or host processes for the node manager. */
export interface ContainerRuntime {
  /** Resolves once the container runs; rejects with a CraneError if it could not start. */
  start(req: RunRequest, hooks: RuntimeHooks): Promise<void>;
  /** Resolves once the kill was delivered (docker: once stopped). Unknown containers are ignored. */
  kill(container: string, force: boolean, graceMs: number): Promise<void>;
  canRun(image: string): Promise<ImageCheck>;
  /** Ids of the containers still running. */
  running(): string[];
  /**
   * Kills what an earlier process of this same node left running (it died without stopping its
   * containers), so their GPUs are really free before the node registers. Returns how many.
   */
  reapOrphans(): Promise<number>;
}

/** The environment of one container: its config's env plus the Crane and GPU variables. */
export function containerEnv(req: RunRequest, node: string): Record<string, string> {
  const gpus = req.gpus.join(',');
  return {
    ...req.config.env,
    CUDA_VISIBLE_DEVICES: gpus,
    NVIDIA_VISIBLE_DEVICES: gpus === '' ? 'void' : gpus,
    CRANE_JOB_ID: req.job,
    CRANE_JOB_NAME: req.jobName,
    CRANE_CONTAINER_ID: req.container,
    CRANE_GPUS: gpus,
    CRANE_NODE: node,
    CRANE_USER: req.user,
  };
}
