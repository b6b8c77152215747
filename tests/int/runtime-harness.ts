import { randomUUID } from 'node:crypto';
import type { LogLine, RunRequest, ContainerConfig } from '../../actors/protocol.js';
import type { ContainerRuntime } from '../../actors/node-manager/runtime.js';

export interface Exit {
  code: number;
  signal?: string;
}

export interface Started {
  container: string;
  lines: LogLine[];
  exited: Promise<Exit>;
  /** Resolves once a line satisfying pred has arrived. */
  waitLine(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

export function runRequest(config: Partial<ContainerConfig> & { image: string }, gpus: number[] = []): RunRequest {
  const id = randomUUID().slice(0, 8);
  return {
    job: `job-${id}`,
    container: `ctr-${id}`,
    jobName: 'test',
    user: 'tester',
    gpus,
    config: { shell: false, init: false, env: {}, mounts: [], ports: [], shmSize: 0, ...config },
  };
}

/** Starts a container and collects its lines and exit. */
export async function startCollecting(rt: ContainerRuntime, req: RunRequest): Promise<Started> {
  const lines: LogLine[] = [];
  const waiters: Array<() => void> = [];
  let onExit!: (e: Exit) => void;
  const exited = new Promise<Exit>((r) => (onExit = r));
  await rt.start(req, {
    onLine(l) {
      lines.push(l);
      for (const w of waiters.splice(0)) w();
    },
    onExit(code, signal) {
      onExit(signal ? { code, signal } : { code });
    },
  });
  const waitLine = (pred: (l: LogLine) => boolean, timeoutMs = 10_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching line within ${timeoutMs} ms; got ${JSON.stringify(lines)}`)), timeoutMs);
      const check = () => {
        const l = lines.find(pred);
        if (l) {
          clearTimeout(timer);
          resolve(l);
        } else waiters.push(check);
      };
      check();
    });
  return { container: req.container, lines, exited, waitLine };
}

export const texts = (lines: LogLine[]) => lines.map((l) => `${l.src}:${l.line}`);
