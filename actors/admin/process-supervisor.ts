import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';

export interface ProcessInfo {
  name: string;
  pid?: number;
  state: 'running' | 'restarting' | 'stopped';
  restarts: number;
  startedAt?: string;
}

interface Child {
  name: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  proc?: ChildProcess;
  info: ProcessInfo;
  backoffMs: number;
  timer?: NodeJS.Timeout;
}

const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;
/** A child that ran this long before dying starts again at the first back-off. */
const STABLE_MS = 30_000;
const STOP_GRACE_MS = 5_000;

/**
 * Runs Node scripts as child processes and restarts the ones that die, with back-off (one for one,
 * like an actor supervisor). Each child's stdout and stderr go to `<logDir>/<name>.log`.
 */
export class ProcessSupervisor {
  private readonly children = new Map<string, Child>();
  private stopping = false;

  constructor(
    private readonly logDir: string,
    private readonly log: Logger,
  ) {
    mkdirSync(logDir, { recursive: true, mode: 0o700 });
  }

  add(name: string, args: string[], env: NodeJS.ProcessEnv = {}): void {
    const child: Child = { name, args, env, info: { name, state: 'stopped', restarts: 0 }, backoffMs: FIRST_BACKOFF_MS };
    this.children.set(name, child);
    this.start(child);
  }

  list(): ProcessInfo[] {
    return [...this.children.values()].map((c) => ({ ...c.info }));
  }

  private start(c: Child): void {
    const fd = openSync(join(this.logDir, `${c.name}.log`), 'a', 0o600);
    const proc = spawn(process.execPath, c.args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...c.env } });
    closeSync(fd);
    const startedAt = Date.now();
    c.proc = proc;
    c.info = { ...c.info, pid: proc.pid, state: 'running', startedAt: new Date(startedAt).toISOString() };
    proc.once('exit', (code, signal) => {
      c.proc = undefined;
      if (this.stopping) {
        c.info = { ...c.info, state: 'stopped', pid: undefined };
        return;
      }
      if (Date.now() - startedAt > STABLE_MS) c.backoffMs = FIRST_BACKOFF_MS;
      this.log.warn({ process: c.name, code, signal, restartInMs: c.backoffMs }, 'process died; restarting');
      c.info = { ...c.info, state: 'restarting', pid: undefined, restarts: c.info.restarts + 1 };
      c.timer = setTimeout(() => this.start(c), c.backoffMs);
      c.backoffMs = Math.min(c.backoffMs * 2, MAX_BACKOFF_MS);
    });
  }

  /** SIGTERM to every child, SIGKILL to those still there after the grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    const running = [...this.children.values()].filter((c) => {
      clearTimeout(c.timer);
      return c.proc;
    });
    await Promise.all(
      running.map(
        (c) =>
          new Promise<void>((resolve) => {
            const proc = c.proc!;
            const kill = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
            proc.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            proc.kill('SIGTERM');
          }),
      ),
    );
  }
}
